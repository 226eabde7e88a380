"""Sample drops for the `ingest` pipeline: hourly credit CSVs shaped like seed 004's data
(Kaggle's "Give Me Some Credit": an unnamed row-number column first, `NA` for missing values),
with a few bad rows so the quarantine has something to show."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

HEADER = (
    "",
    "SeriousDlqin2yrs",
    "RevolvingUtilizationOfUnsecuredLines",
    "age",
    "NumberOfTime30-59DaysPastDueNotWorse",
    "DebtRatio",
    "MonthlyIncome",
    "NumberOfOpenCreditLinesAndLoans",
    "NumberOfTimes90DaysLate",
    "NumberRealEstateLoansOrLines",
    "NumberOfTime60-89DaysPastDueNotWorse",
    "NumberOfDependents",
)


def credit_row(rng: random.Random, n: int) -> str:
    income = "NA" if rng.random() < 0.2 else str(rng.randrange(0, 25000))
    dependents = "NA" if rng.random() < 0.03 else str(rng.randrange(0, 6))
    return (
        f"{n},{int(rng.random() < 0.07)},{rng.random():.6f},{rng.randrange(21, 95)},{rng.randrange(0, 4)},"
        f"{rng.random() * 2:.6f},{income},{rng.randrange(0, 30)},{rng.randrange(0, 3)},{rng.randrange(0, 5)},"
        f"{rng.randrange(0, 3)},{dependents}"
    )


def credit(
    directory: str | Path,
    *,
    days: int = 1,
    rows: int = 30_000,
    start: str = "2021-01-29",
    seed: int = 7,
    files_per_day: int = 24,
    bad_rows: bool = True,
    first_row: int = 1,
    name: str = "credit",
) -> list[Path]:
    """`files_per_day` hourly drops per day (NAME_YYYYMMDD_HH.csv), `rows` rows in all, numbered
    from `first_row` (unique across files). With `bad_rows`, each file but the first gets one
    bad row (age 'unknown')."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    first = dt.date.fromisoformat(start)
    total = max(1, days * files_per_day)
    per_file = max(1, rows // total)
    written = []
    n = first_row - 1
    for i in range(total):
        day = first + dt.timedelta(days=i // files_per_day)
        hour = i % files_per_day
        lines = [",".join(HEADER)]
        for _ in range(per_file):
            n += 1
            lines.append(credit_row(rng, n))
        if bad_rows and i > 0:
            lines.insert(len(lines) // 2, f"{900_000_000 + i},0,0.5,unknown,0,0.1,100,1,0,0,0,0")
        path = out / f"{name}_{day:%Y%m%d}_{hour:02d}.csv"
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)  # a scanner never sees half a file
        written.append(path)
    return written
