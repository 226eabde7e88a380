"""File and folder names with glob characters (`[`, `*`, `?`). DuckDB reads every path it is
given as a pattern: `report[1].csv` read `report1.csv` instead, another file's rows, without a
word (ingest loaded report1.csv's rows twice, once under each name). Every path logroll hands
DuckDB is escaped (quote.path_literal, quote.own_pattern)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from conftest import tree_bytes

NAMES = ["report[1].csv", "report1.csv", "a*b.csv", "a?b.csv", "ab.csv", "x[!a].csv"]

PIPELINE = """
pipelines:
  sales:
    input: {format: FORMAT}
    columns:
      - {name: id, type: integer}
      - {name: ts, type: timestamp}
      - {name: amount, type: integer}
    event_time: ts
    key: [id]
    outputs:
      - name: daily
        sql: SELECT count(*) AS n, sum(amount) AS amount, min(id) AS lo, max(id) AS hi FROM rows
        path: "daily/{date:%Y-%m-%d}.csv"
"""


def rows_of(i: int) -> list[tuple[int, str, int]]:
    """File i's rows: ids of its own, so a file read in place of another shows; as many rows in
    every file, so that the record count alone cannot tell one file from another."""
    return [(i * 100 + j, f"2024-03-01 10:{j:02d}:00", i + 1) for j in range(2)]


def write(folder: Path, name: str, rows: list[tuple[int, str, int]], fmt: str) -> None:
    if fmt == "csv":
        with open(folder / name, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", "ts", "amount"])
            w.writerows(rows)
    else:
        text = "".join(json.dumps({"id": a, "ts": b, "amount": c}) + "\n" for a, b, c in rows)
        (folder / name.replace(".csv", ".json")).write_text(text)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_glob_characters_in_file_and_folder_names_read_each_file_itself(cli, tmp_path, fmt):
    conf = tmp_path / "logroll.yaml"
    conf.write_text(PIPELINE.replace("FORMAT", fmt))
    outputs = {}
    for label, src, dest in (
        ("hostile", tmp_path / "src [2024]", tmp_path / "out [prod]?"),
        ("plain", tmp_path / "src", tmp_path / "out"),
    ):
        day = src / "2024" / "03" / "01"
        day.mkdir(parents=True)
        for i, name in enumerate(NAMES):
            write(day, name if label == "hostile" else f"f{i}.csv", rows_of(i), fmt)
        res = cli("run", "sales", "--config", str(conf), "--source", str(src), "--dest", str(dest), "--json")
        assert res.code == 0, res.err
        report = res.json()
        total = sum(len(rows_of(i)) for i in range(len(NAMES)))
        assert (report["rows_read"], report["rows_valid"], report["rows_unique"]) == (total, total, total)
        outputs[label] = {k: v for k, v in tree_bytes(dest).items() if k.startswith("daily/")}
        again = cli("run", "sales", "--config", str(conf), "--source", str(src), "--dest", str(dest))
        assert again.code == 0 and "nothing to do" in again.out, again.err
    assert outputs["hostile"] == outputs["plain"] != {}
    n, amount, lo, hi = (outputs["plain"]["daily/2024-03-01.csv"].decode().splitlines()[1]).split(",")
    assert (int(n), int(amount), int(lo), int(hi)) == (12, 42, 0, 501)


def test_a_passthrough_build_under_a_destination_named_with_brackets(cli, tmp_path):
    """consolidate reads its parts' columns by pattern (passthrough): a destination folder
    named `[prod]` gives the same bytes as a plain one."""
    from logroll import demo

    raw = tmp_path / "raw"
    demo.GENERATORS["consolidate"](raw, days=1, rows=2000)
    got = {}
    for dest in (tmp_path / "out", tmp_path / "[prod] out"):
        res = cli("run", "consolidate", "--source", str(raw), "--dest", str(dest))
        assert res.code == 0, res.err
        got[dest.name] = {k: v for k, v in tree_bytes(dest).items() if not k.startswith("_logroll")}
    assert got["out"] == got["[prod] out"] != {}


def test_ingest_loads_each_file_under_its_own_name(cli, tmp_path):
    src = tmp_path / "drops"  # a plain folder: the file names alone must be read as they are
    src.mkdir()
    for i, name in enumerate(NAMES):
        write(src, name, rows_of(i), "csv")
    dest = tmp_path / "t.duckdb"
    res = cli("run", "ingest", "--source", str(src), "--dest", f"duckdb:///{dest}#t", "--json")
    assert res.code == 0, res.err
    with duckdb.connect(str(dest), read_only=True) as con:
        got = con.execute("SELECT _source_file, list(id ORDER BY id) FROM t GROUP BY 1").fetchall()
    assert {Path(f).name: ids for f, ids in got} == {
        name: [r[0] for r in rows_of(i)] for i, name in enumerate(NAMES)
    }


def test_ingest_quarantine_names_are_safe_and_unique(cli, tmp_path):
    """A bad row of a file named with a newline, an escape sequence and a space is quarantined
    under a name of plain characters, one per file version."""
    src = tmp_path / "drops"
    src.mkdir()
    for name in ("line\nbreak.csv", "\x1b[31mred.csv", "line_break.csv"):
        (src / name).write_text("id,name\n1,x\noops,y\n")
    (tmp_path / "logroll.yaml").write_text(
        "ingest:\n  columns:\n    - {name: id, type: integer}\n    - {name: name, type: string}\n"
    )
    dest = tmp_path / "t.duckdb"
    res = cli("run", "ingest", "--source", str(src), "--dest", f"duckdb:///{dest}#t", "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    quarantine = res.json()["work"]["quarantine"]
    names = [Path(q).name for q in quarantine]
    assert len(set(names)) == 3, names
    assert all(n.isascii() and n.isprintable() and " " not in n for n in names), names
