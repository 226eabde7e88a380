"""The impressions contract of issue 3, checked from outside through the real CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

import logroll

from conftest import source_files, source_text, tree_bytes, tree_mtimes

HEADER = "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n"


def expected_daily(raw: Path, day: str) -> list[list[str]]:
    """An independent reference: plain Python over every file, the rules of the contract."""
    seen: set[tuple[str, str]] = set()
    counts: Counter[tuple[int, int]] = Counter()
    for path in source_files(raw):
        with io.StringIO(source_text(path), newline="") as fh:
            for row in csv.DictReader(fh):
                if None in row or any(v is None for v in row.values()):
                    continue
                iid, ts, camp = row["IMPRESSION_ID"], row["IMPRESSION_DATETIME"], row["CAMPAIGN_ID"]
                try:
                    when = dt.datetime.strptime(ts.strip(), "%Y-%m-%d %H:%M:%S")
                    campaign = int(camp.strip())
                except (ValueError, AttributeError):
                    continue
                if not iid.strip() or "." in camp or when.date().isoformat() != day:
                    continue
                if (iid, ts) in seen:
                    continue
                seen.add((iid, ts))
                counts[(campaign, when.hour)] += 1
    return [[str(c), str(h), str(n)] for (c, h), n in sorted(counts.items())]


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def out_path(dest: Path, day: str, initials: str = "Guy_Fawkes") -> Path:
    d = dt.date.fromisoformat(day)
    return dest / f"{d:%Y/%m/%d}/daily_agg_{d:%Y%m%d}_{initials}.csv"


def test_output_matches_an_independent_computation(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    res = cli("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest))
    assert res.code == 0, res.err
    rows = read_rows(out_path(dest, "2021-01-30"))
    assert rows[0] == ["CAMPAIGN_ID", "HOUR", "IMPRESSION_COUNT"]
    assert rows[1:] == expected_daily(impressions_raw, "2021-01-30")
    assert out_path(dest, "2021-01-30").read_bytes().count(b"\r") == 0


def test_json_report_is_one_object_and_counts_add_up(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    res = cli(
        "run",
        "impressions",
        "2021-01-29",
        "--to",
        "2021-01-31",
        "--source",
        str(impressions_raw),
        "--dest",
        str(dest),
        "--initials",
        "GF",
        "--json",
    )
    assert res.code == 0, res.err
    report = json.loads(res.out)  # stdout is exactly one JSON object
    for key in (
        "rows_read",
        "rows_rejected",
        "duplicates",
        "rows_out",
        "files_staged",
        "partitions_built",
        "outputs",
    ):
        assert key in report
    assert report["partitions_built"] == ["2021-01-29", "2021-01-30", "2021-01-31"]
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    assert report["rows_in"] == report["rows_unique"] + report["duplicates"]
    # the demo writes 8 bad rows a day, and a Latin-1 export whose non-ASCII rows are not UTF-8
    latin1 = sum(p.read_bytes().count(b"\xe9") for p in impressions_raw.rglob("*_latin1.csv"))
    assert latin1 > 0 and report["rows_rejected"] == 3 * 8 + latin1
    assert report["duplicates"] > 0
    assert all(Path(o).exists() and o.endswith("_GF.csv") for o in report["outputs"])
    assert "staged" in res.err  # logs go to stderr


@pytest.mark.parametrize("spelling", ["2021-01-30", "20210130", "2021/01/30", "01/30/2021"])
def test_every_date_spelling(cli, impressions_raw, tmp_path, spelling):
    dest = tmp_path / "results"
    res = cli("run", "impressions", spelling, "--source", str(impressions_raw), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    assert res.json()["partitions_built"] == ["2021-01-30"]


def test_user_errors_are_one_line_with_exit_codes(cli, impressions_raw, tmp_path):
    dest = str(tmp_path / "results")
    cases = [
        (
            ("run", "impresions", "2021-01-30", "--source", str(impressions_raw), "--dest", dest),
            2,
            "did you mean",
        ),
        (
            ("run", "impressions", "2021-13-45", "--source", str(impressions_raw), "--dest", dest),
            2,
            "bad date",
        ),
        (
            ("run", "impressions", "2021-01-30", "--source", str(tmp_path / "nope"), "--dest", dest),
            2,
            "does not exist",
        ),
        (
            (
                "run",
                "impressions",
                "2021-01-30",
                "--to",
                "2021-01-01",
                "--source",
                str(impressions_raw),
                "--dest",
                dest,
            ),
            2,
            "before",
        ),
        (
            ("run", "impressions", "2022-06-01", "--source", str(impressions_raw), "--dest", dest),
            1,
            "no input files for 2022-06-01",
        ),
    ]
    for args, code, text in cases:
        res = cli(*args)
        assert res.code == code, (args, res.err)
        lines = [line for line in res.err.splitlines() if "error" in line]
        assert len(lines) == 1 and text in lines[0], res.err
        assert "Traceback" not in res.err


def test_file_missing_a_required_column_is_rejected_and_the_rest_processed(cli, impressions_raw, tmp_path):
    bad = impressions_raw / "2021/01/30/no_campaign.csv"
    bad.write_text("IMPRESSION_ID,IMPRESSION_DATETIME\nx,2021-01-30 10:00:00\n")
    dest = tmp_path / "results"
    res = cli(
        "run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest), "--json"
    )
    assert res.code == 1
    report = res.json()
    assert [f["uri"] for f in report["files_rejected"]] == [str(bad)]
    assert "CAMPAIGN_ID" in report["files_rejected"][0]["reason"]
    assert report["partitions_built"] == ["2021-01-30"]
    assert out_path(dest, "2021-01-30").exists()


def test_late_rows_rebuild_the_day_they_belong_to(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    assert (
        cli("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest)).code
        == 0
    )
    before = read_rows(out_path(dest, "2021-01-30"))
    late = impressions_raw / "2021/01/31/late.csv"
    late.write_text(HEADER + "late-1,2021-01-30 05:00:00,999,u,tv\nlate-2,2021-01-30 05:30:00,999,u,tv\n")
    res = cli(
        "run", "impressions", "2021-01-31", "--source", str(impressions_raw), "--dest", str(dest), "--json"
    )
    assert res.code == 0, res.err
    assert res.json()["partitions_built"] == ["2021-01-30", "2021-01-31"]
    after = read_rows(out_path(dest, "2021-01-30"))
    assert after[1:] == sorted(before[1:] + [["999", "5", "2"]], key=lambda r: (int(r[0]), int(r[1])))
    assert after[1:] == expected_daily(impressions_raw, "2021-01-30")


def test_changed_file_replaces_its_old_contribution(cli, tmp_path):
    raw, dest = tmp_path / "raw", tmp_path / "results"
    f = raw / "2021/01/30/a.csv"
    f.parent.mkdir(parents=True)
    f.write_text(HEADER + "a,2021-01-30 01:00:00,1,u,tv\nb,2021-01-30 01:00:00,1,u,tv\n")
    assert cli("run", "impressions", "2021-01-30", "--source", str(raw), "--dest", str(dest)).code == 0
    time.sleep(0.01)
    f.write_text(HEADER + "a,2021-01-30 02:00:00,2,u,tv\n")
    res = cli("run", "impressions", "2021-01-30", "--source", str(raw), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    assert res.json()["files_staged"] == 1
    assert read_rows(out_path(dest, "2021-01-30"))[1:] == [["2", "2", "1"]]


def test_resent_file_under_a_new_name_counts_once(cli, tmp_path):
    raw, dest = tmp_path / "raw", tmp_path / "results"
    (raw / "2021/01/30").mkdir(parents=True)
    body = HEADER + "a,2021-01-30 01:00:00,1,u,tv\nb,2021-01-30 01:00:00,1,u,tv\n"
    (raw / "2021/01/30/a.csv").write_text(body)
    assert cli("run", "impressions", "2021-01-30", "--source", str(raw), "--dest", str(dest)).code == 0
    (raw / "2021/01/30/a_resent.csv").write_text(body)
    res = cli("run", "impressions", "2021-01-30", "--source", str(raw), "--dest", str(dest), "--json")
    assert res.json()["duplicates"] == 2
    assert read_rows(out_path(dest, "2021-01-30"))[1:] == [["1", "1", "2"]]


def test_force_restages_but_leaves_identical_bytes_alone(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    args = ("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest))
    assert cli(*args).code == 0
    before, mtimes = tree_bytes(dest), tree_mtimes(dest)
    res = cli(*args, "--force", "--json")
    assert res.code == 0
    assert res.json()["files_staged"] > 0 and res.json()["partitions_built"] == ["2021-01-30"]
    assert tree_bytes(dest) == before and tree_mtimes(dest) == mtimes


def test_catch_up_without_a_date_builds_every_dirty_day(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    res = cli("run", "impressions", "--source", str(impressions_raw), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    # 3 days of folders, plus the next day's early rows
    assert res.json()["partitions_built"] == ["2021-01-29", "2021-01-30", "2021-01-31", "2021-02-01"]
    again = cli("run", "impressions", "--source", str(impressions_raw), "--dest", str(dest))
    assert again.code == 0 and "nothing to do" in again.out


def test_deleted_output_is_rebuilt(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    args = ("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest))
    assert cli(*args).code == 0
    target = out_path(dest, "2021-01-30")
    content = target.read_bytes()
    target.unlink()
    assert cli(*args).code == 0
    assert target.read_bytes() == content


def test_python_api(impressions_raw, tmp_path):
    report = logroll.run("impressions", "2021-01-30", source=str(impressions_raw), dest=str(tmp_path / "r"))
    assert report.partitions_built == ["2021-01-30"]
    assert report.rows_out == len(expected_daily(impressions_raw, "2021-01-30"))
    info = logroll.status("impressions", dest=str(tmp_path / "r"))
    assert any(d["day"] == "2021-01-30" and d["status"] == "built" for d in info["days"])


def test_quarantine_lists_every_bad_row_with_line_and_reason(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    res = cli(
        "run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest), "--json"
    )
    qfiles = [Path(q) for q in res.json()["quarantine"]]
    rows = [r for q in qfiles for r in csv.DictReader(open(q, newline=""))]
    assert len(rows) == res.json()["rows_rejected"]
    for r in rows:
        raw = Path(r["source_file"]).read_bytes().splitlines()[int(r["line"]) - 1]
        # invalid bytes are shown escaped (\xe9), the rest as it is
        assert raw.decode("utf-8", "backslashreplace") == r["raw_line"]
        assert r["reason"]


def test_state_can_live_elsewhere(cli, impressions_raw, tmp_path):
    state = tmp_path / "elsewhere" / "state.sqlite"
    dest = tmp_path / "results"
    res = cli(
        "run",
        "impressions",
        "2021-01-30",
        "--source",
        str(impressions_raw),
        "--dest",
        str(dest),
        "--state",
        str(state),
        "--json",
    )
    assert res.code == 0 and state.exists()
    assert res.json()["state"] == str(state.resolve()) or res.json()["state"] == str(state)
    assert os.path.exists(out_path(dest, "2021-01-30"))


def test_other_initials_rebuild_only_what_is_asked_and_status_stays_built(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    common = ("--source", str(impressions_raw), "--dest", str(dest))
    assert cli("run", "impressions", "2021-01-29", "--to", "2021-01-31", *common).code == 0
    before = out_path(dest, "2021-01-30").read_bytes()
    res = cli("run", "impressions", "2021-01-30", *common, "--initials", "GF", "--json")
    assert res.code == 0, res.err
    assert res.json()["partitions_built"] == ["2021-01-30"]
    assert out_path(dest, "2021-01-30", "GF").read_bytes() == before
    # the day's outputs are the new initials' only: the old file would be read as a second result
    assert not out_path(dest, "2021-01-30").exists()
    assert out_path(dest, "2021-01-29").exists()
    status = cli("status", "impressions", "--dest", str(dest), "--json").json()
    assert {d["day"]: d["status"] for d in status["days"]}["2021-01-29"] == "built"
    assert {d["status"] for d in status["days"] if d["day"] <= "2021-01-31"} == {"built"}
