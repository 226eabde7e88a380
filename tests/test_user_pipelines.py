"""Pipelines declared in logroll.yaml run like the presets: the README's example (daily unique
users per device type over the impressions data) checked against an independent computation,
idempotent reruns, Parquet outputs, JSON-lines input, and settings taken from the file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from conftest import ROOT, SHARED, source_files, source_text, tree_bytes, tree_mtimes

EXAMPLE = ROOT / "examples" / "logroll.yaml"


def expected_device_users(raw: Path, day: str) -> list[list[str]]:
    """What the example declares, computed by hand from the CSVs: valid rows of `day`, one per
    (IMPRESSION_ID, IMPRESSION_DATETIME), distinct users and rows per device type."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for path in source_files(raw):
        with io.StringIO(source_text(path), newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                continue
            for fields in reader:
                if len(fields) != len(header):
                    continue  # too few or too many columns: quarantined
                row = dict(zip(header, fields, strict=True))
                iid, ts = row["IMPRESSION_ID"].strip(), row["IMPRESSION_DATETIME"].strip()
                user, device = row["USER_ID"], row["DEVICE_TYPE"]
                try:
                    when = dt.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S")
                except ValueError:
                    continue
                if not iid or not user.strip() or not device.strip() or when.date().isoformat() != day:
                    continue
                seen[(iid, when.isoformat())] = min(
                    seen.get((iid, when.isoformat()), (user, device)), (user, device)
                )
    users: dict[str, set[str]] = defaultdict(set)
    count: dict[str, int] = defaultdict(int)
    for user, device in seen.values():
        users[device].add(user)
        count[device] += 1
    return [["DEVICE_TYPE", "UNIQUE_USERS", "IMPRESSIONS"]] + [
        [d, str(len(users[d])), str(count[d])] for d in sorted(users)
    ]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_readme_example_runs_right_and_twice_is_idempotent(cli, impressions_raw, tmp_path):
    out = tmp_path / "results"
    args = ["run", "device_users", "2021-01-30", "--config", str(EXAMPLE), "--source", str(impressions_raw)]
    first = cli(*args, "--dest", str(out), "--json")
    assert first.code == 0, first.err
    report = first.json()
    assert report["partitions_built"] == ["2021-01-30"]
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    target = out / "device_users" / "2021" / "device_users_20210130.csv"
    assert report["outputs"] == [str(target)]
    assert read_csv(target) == expected_device_users(impressions_raw, "2021-01-30")

    before, mtimes = tree_bytes(out), tree_mtimes(out)
    again = cli(*args, "--dest", str(out))
    assert again.code == 0, again.err
    assert "nothing to do" in again.out
    assert tree_bytes(out) == before and tree_mtimes(out) == mtimes


def test_settings_and_pipelines_from_the_default_file(cli, impressions_raw, tmp_path):
    """./logroll.yaml is read when present; its relative paths are relative to it; an environment
    variable overrides the file and a flag overrides both."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(impressions_raw, project / "raw")
    text = EXAMPLE.read_text().replace("pipelines:", "source: raw\ndest: out-file\n\npipelines:", 1)
    (project / "logroll.yaml").write_text(text)
    r = cli("run", "device_users", "2021-01-30", cwd=project)
    assert r.code == 0, r.err
    assert (project / "out-file/device_users/2021/device_users_20210130.csv").exists()
    r = cli("run", "device_users", "2021-01-30", cwd=project, env={"LOGROLL_DEST": str(tmp_path / "out-env")})
    assert r.code == 0, r.err
    assert (tmp_path / "out-env/device_users/2021/device_users_20210130.csv").exists()
    r = cli(
        "run", "device_users", "2021-01-30", "--dest", str(tmp_path / "out-flag"), cwd=project,
        env={"LOGROLL_DEST": str(tmp_path / "out-env")},
    )  # fmt: skip
    assert r.code == 0, r.err
    assert (tmp_path / "out-flag/device_users/2021/device_users_20210130.csv").exists()
    # the status of a declared pipeline, found through the same file
    s = cli("status", "device_users", "--json", cwd=project)
    assert s.code == 0, s.err
    assert [d["day"] for d in s.json()["days"] if d["status"] == "built"] == ["2021-01-30"]


def test_parquet_output_and_a_changed_declaration(cli, impressions_raw, tmp_path):
    conf = tmp_path / "logroll.yaml"
    text = EXAMPLE.read_text().replace("format: csv            # or jsonl", "format: csv")
    conf.write_text(
        text.replace("        format: csv\n", "        format: parquet\n").replace('.csv"', '.parquet"')
    )
    out = tmp_path / "results"
    r = cli("run", "device_users", "2021-01-30", "--config", str(conf), "--source", str(impressions_raw),
            "--dest", str(out))  # fmt: skip
    assert r.code == 0, r.err
    table = pq.read_table(out / "device_users" / "2021" / "device_users_20210130.parquet")
    rows = [[str(v) for v in r.values()] for r in table.to_pylist()]
    assert [table.column_names, *rows] == expected_device_users(impressions_raw, "2021-01-30")
    # a declaration change (USER_ID no longer required) re-stages the files and rebuilds the day
    conf.write_text(
        conf.read_text().replace(
            "{name: USER_ID, type: string}", "{name: USER_ID, type: string, required: false}"
        )
    )
    r = cli("run", "device_users", "2021-01-30", "--config", str(conf), "--source", str(impressions_raw),
            "--dest", str(out), "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert r.json()["files_staged"] > 0 and r.json()["partitions_built"] == ["2021-01-30"]


JSONL_PIPELINE = """
pipelines:
  actions:
    input: {format: jsonl}
    columns:
      - {name: event_id, type: string}
      - {name: user_id, type: string, source: user.id}
      - {name: action, type: string}
      - {name: timestamp, type: timestamp}
    event_time: {column: timestamp, formats: ["%d/%m/%Y %H:%M:%S"]}
    key: [event_id]
    outputs:
      - name: actions
        sql: SELECT action, count(*) AS events, count(DISTINCT user_id) AS users FROM rows GROUP BY action
        path: "actions/{date:%Y-%m-%d}.csv"
        order_by: [action]
"""


def test_a_json_lines_pipeline_over_the_hipages_sample(cli, tmp_path):
    src = tmp_path / "events"
    src.mkdir()
    shutil.copy(SHARED / "data" / "hipages" / "source_event_data.json", src / "events.json")
    conf = tmp_path / "logroll.yaml"
    conf.write_text(JSONL_PIPELINE)
    assert cli("validate", "--config", str(conf)).code == 0
    out = tmp_path / "out"
    r = cli("run", "actions", "--config", str(conf), "--source", str(src), "--dest", str(out), "--json")
    report = r.json()
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    assert report["partitions_built"] and not report["partitions_failed"]
    total = 0
    for day in report["partitions_built"]:
        rows = read_csv(out / "actions" / f"{day}.csv")
        assert rows[0] == ["action", "events", "users"]
        assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
        total += sum(int(r[1]) for r in rows[1:])
    assert total == report["rows_unique"]
    before, mtimes = tree_bytes(out), tree_mtimes(out)
    again = cli("run", "actions", "--config", str(conf), "--source", str(src), "--dest", str(out))
    assert "nothing to do" in again.out
    assert tree_bytes(out) == before and tree_mtimes(out) == mtimes


SEMICOLON_PIPELINE = """
pipelines:
  orders:
    input: {delimiter: ";", layout: "%d.%m.%Y", null_values: ["", "n/a"]}
    columns:
      - {name: order_id, type: string}
      - {name: at, type: timestamp, formats: ["%d.%m.%Y %H:%M"]}
      - {name: amount, type: float}
      - {name: shop, type: string, required: false}
    event_time: at
    key: [order_id]
    checks: [{condition: "amount >= 0", reason: negative amount}]
    outputs:
      - name: revenue
        sql: SELECT coalesce(shop, '?') AS shop, sum(amount) AS revenue, count(*) AS orders FROM rows GROUP BY 1
        path: "revenue_{date:%Y%m%d}.csv"
        order_by: [shop]
"""


def test_input_options_delimiter_layout_null_values_and_checks(cli, tmp_path):
    src = tmp_path / "drops" / "30.01.2021"
    src.mkdir(parents=True)
    (src / "orders.csv").write_text(
        "order_id;at;amount;shop\n"
        "o1;30.01.2021 10:00;5.5;north\n"
        "o2;30.01.2021 11:00;-1;north\n"  # fails the check
        "o3;30.01.2021 12:00;2;n/a\n"  # n/a is empty
        "o1;30.01.2021 10:00;5.5;north\n"  # a duplicate key
        "o4;30.01.2021 13:00;x;south\n"  # not a number
    )
    conf = tmp_path / "logroll.yaml"
    conf.write_text(SEMICOLON_PIPELINE)
    out = tmp_path / "out"
    r = cli("run", "orders", "2021-01-30", "--config", str(conf), "--source", str(tmp_path / "drops"),
            "--dest", str(out), "--json")  # fmt: skip
    assert r.code == 0, r.err
    report = r.json()
    assert (report["rows_read"], report["rows_rejected"], report["duplicates"]) == (5, 2, 1)
    assert read_csv(out / "revenue_20210130.csv") == [
        ["shop", "revenue", "orders"],
        ["?", "2.0", "1"],
        ["north", "5.5", "1"],
    ]
    (quarantine,) = report["quarantine"]
    rejected = {row[1]: row[2] for row in read_csv(Path(quarantine))[1:]}
    assert rejected["3"] == "negative amount"
    assert rejected["6"].startswith("bad amount: expected a number")
