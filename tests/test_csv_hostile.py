"""Issue 13's CSV cases, each through the CLI: hostile files are read with every record accounted
for (records = header + skipped + blank + valid + rejected, in the report, the catalog and
`status`), bad records cost only themselves, and what cannot be trusted fails loudly."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import sqlite3
from pathlib import Path

import pytest

import logroll
from logroll import config as config_mod
from logroll.engines.duckdb_engine import DuckDBEngine

DAY = "2021/01/30"
HEADER = b"id,ts,amount,name\n"

PIPELINE = """
pipelines:
  events:
    input: {{format: csv{input}}}
    columns:
      - {{name: id}}
      - {{name: ts, type: timestamp{formats}}}
      - {{name: amount, type: integer, required: false}}
      - {{name: name, required: false}}
    event_time: ts
    key: [id, ts]
{extra}    outputs:
      - name: daily
        sql: SELECT id, ts, amount, name FROM rows
        path: "events_{{date:%Y%m%d}}.csv"
        order_by: [id]
"""


def declare(tmp_path: Path, input_keys: str = "", formats: str = "", extra: str = "") -> Path:
    path = tmp_path / "logroll.yaml"
    path.write_text(PIPELINE.format(input=input_keys, formats=formats, extra=extra))
    return path


def rows(n: int, start: int = 0) -> bytes:
    return b"".join(b"%d,2021-01-30 %02d:00:00,%d,n%d\n" % (i, i % 24, i, i) for i in range(start, start + n))


def put(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "raw" / DAY / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run(cli, tmp_path: Path, config: Path, *more: str):
    r = cli("run", "events", "--config", str(config), "--source", str(tmp_path / "raw"),
            "--dest", str(tmp_path / "out"), "--json", *more)  # fmt: skip
    assert r.out, r.err
    return r, json.loads(r.out)


def quarantine(report: dict) -> list[list[str]]:
    out = []
    for q in report["quarantine"]:
        with open(q, newline="") as fh:
            out += list(csv.reader(fh))[1:]
    return sorted(out, key=lambda r: int(r[1]))


def file_counts(tmp_path: Path) -> dict[str, dict]:
    con = sqlite3.connect(tmp_path / "out" / "_logroll" / "catalog.sqlite")
    con.row_factory = sqlite3.Row
    got = {Path(r["uri"]).name: dict(r) for r in con.execute("SELECT * FROM files")}
    con.close()
    return got


def accounted(f: dict) -> None:
    """The invariant, as recorded in the catalog."""
    assert f["records"] == (
        f["records_header"] + f["records_skipped"] + f["records_blank"] + f["rows_valid"] + f["rows_rejected"]
    ), f
    assert f["rows_read"] == f["rows_valid"] + f["rows_rejected"]


def test_a_line_over_the_limit_is_one_reject_and_reading_goes_on(cli, tmp_path):
    put(
        tmp_path,
        "a.csv",
        HEADER + rows(1) + b"1,2021-01-30 01:00:00,3," + b"x" * (5 << 20) + b"\n" + rows(1, 2),
    )
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert (rep["rows_read"], rep["rows_valid"], rep["rows_rejected"]) == (3, 2, 1)
    [(_, line, reason, raw)] = quarantine(rep)
    assert (
        line == "3"
        and reason.startswith("line too long (5,242,904 bytes")
        or reason.startswith("line too long (5242904 bytes")
    ), reason
    assert "byte offset" in reason and len(raw) <= 10_000
    accounted(file_counts(tmp_path)["a.csv"])


def test_a_stray_quote_costs_only_its_line(cli, tmp_path):
    put(tmp_path, "a.csv", HEADER + rows(2) + b'2,"2021-01-30 02:00:00,2,x\n' + rows(20_000, 3))
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert (rep["rows_read"], rep["rows_valid"], rep["rows_rejected"]) == (20_003, 20_002, 1)
    [(_, line, reason, _)] = quarantine(rep)
    assert line == "4" and "quot" in reason


def test_an_unterminated_quote_in_the_header_rejects_the_file(cli, tmp_path):
    put(tmp_path, "a.csv", b'id,ts,amount,"name\n' + rows(3))
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 1
    [rejected] = rep["files_rejected"]
    assert "header" in rejected["reason"] and "quote" in rejected["reason"]


def test_field_counts_are_strict_both_ways_empty_fields_included(cli, tmp_path):
    body = b"1,2021-01-30 10:00:00,5,Al\n2,2021-01-30 11:00:00,,Bob,\n3,2021-01-30 12:00:00,7\n4,2021-01-30 13:00:00,8,Di,,\n"
    put(tmp_path, "a.csv", HEADER + body)
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert [(q[1], q[2]) for q in quarantine(rep)] == [
        ("3", "too many columns (5, expected 4)"),
        ("4", "too few columns (3, expected 4)"),
        ("5", "too many columns (6, expected 4)"),
    ]
    out = (tmp_path / "out" / "events_20210130.csv").read_text()
    assert "Bob" not in out and out.count("\n") == 2


@pytest.mark.parametrize("ending", ["cr", "crlf", "mixed"])
def test_line_endings_read_alike(cli, tmp_path, ending):
    lines = (HEADER + rows(30)).split(b"\n")[:-1]
    if ending == "cr":
        data = b"\r".join(lines) + b"\r"
    elif ending == "crlf":
        data = b"\r\n".join(lines) + b"\r\n"
    else:
        data = b"".join(ln + (b"\r", b"\n", b"\r\n")[i % 3] for i, ln in enumerate(lines))
    put(tmp_path, "a.csv", data)
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert (rep["rows_read"], rep["rows_valid"]) == (30, 30)
    plain = tmp_path / "plain"
    put(plain, "a.csv", HEADER + rows(30))
    r2, _ = run(cli, plain, declare(plain))
    assert (tmp_path / "out/events_20210130.csv").read_bytes() == (
        plain / "out/events_20210130.csv"
    ).read_bytes()


def test_bom_nul_and_invalid_bytes_are_clean_rejects(cli, tmp_path):
    body = b"1,2021-01-30 01:00:00,1,a\x00b\n2,2021-01-30 02:00:00,2,\xff\xfe\n" + rows(2, 3)
    put(tmp_path, "a.csv", b"\xef\xbb\xbf" + HEADER + body)
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert [(q[1], q[2]) for q in quarantine(rep)] == [("2", "NUL byte"), ("3", "invalid UTF-8")]
    assert rep["rows_valid"] == 2
    accounted(file_counts(tmp_path)["a.csv"])


def test_blank_skipped_and_header_are_counted_apart_and_shown_in_status(cli, tmp_path):
    put(tmp_path, "a.csv", b"exported by x\n" + HEADER + rows(2) + b"\n\n" + rows(1, 5) + b"5,bad\n")
    config = declare(tmp_path, input_keys=", skip_rows: 1")
    r, rep = run(cli, tmp_path, config)
    assert r.code == 0, r.err
    f = file_counts(tmp_path)["a.csv"]
    assert (f["records"], f["records_header"], f["records_skipped"], f["records_blank"]) == (8, 1, 1, 2)
    assert (f["rows_valid"], f["rows_rejected"]) == (3, 1)
    accounted(f)
    s = cli("status", "events", "--config", str(config), "--dest", str(tmp_path / "out"), "--files")
    assert s.code == 0, s.err
    row = next(ln for ln in s.out.splitlines() if "a.csv" in ln)
    assert [c.strip() for c in row.split("│")[2:8]] == ["staged", "8", "1", "1", "2", "3"]


def test_quarantine_names_are_unique_per_file(cli, tmp_path):
    put(tmp_path, "a:b.csv", HEADER + rows(2) + b"x,bad\n")
    put(tmp_path, "a_b.csv", HEADER + rows(2) + b"y,bad\n")
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert len(rep["quarantine"]) == 2 and len(set(rep["quarantine"])) == 2
    assert sorted(q[3] for q in quarantine(rep)) == ["x,bad", "y,bad"]
    long_name = "x" * 240 + ".csv"
    put(tmp_path, long_name, HEADER + b"z,bad\n")
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert all(len(Path(q).name) < 200 for q in rep["quarantine"])


def test_a_million_column_header_is_read_linearly_and_reported_right(cli, tmp_path):
    names = [b"id", b"ts", b"amount", b"name"] + [b"c%d" % i for i in range(1_000_000)]
    put(
        tmp_path,
        "wide.csv",
        b",".join(names) + b"\n" + b"1,2021-01-30 01:00:00,1,a" + b",v" * 1_000_000 + b"\n",
    )
    # the old reader took minutes and then said the header repeated a column
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 0, r.err
    assert rep["rows_valid"] == 1 and not rep["files_rejected"]
    names[7] = b"c2"
    put(tmp_path, "wide.csv", b",".join(names) + b"\n1,2021-01-30 01:00:00,1,a" + b",v" * 1_000_000 + b"\n")
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 1
    assert rep["files_rejected"][0]["reason"] == "header repeats column(s) c2"


def test_header_text_in_messages_is_bounded_and_escaped(cli, tmp_path):
    evil = b"\x1b[31mred\x1b[0m " + b"y" * 5000
    put(tmp_path, "a.csv", b"id,x," + evil + b"\n1,2,3\n")
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 1
    reason = rep["files_rejected"][0]["reason"]
    assert "\x1b" not in reason and "\\x1b[31m" in reason and len(reason) < 800
    assert "\x1b" not in r.err and "\x1b" not in r.out


def test_a_truncated_archive_fails_the_file_with_what_was_read(cli, tmp_path):
    body = gzip.compress(HEADER + rows(20_000))
    put(tmp_path, "a.csv.gz", body[: len(body) // 2])
    r, rep = run(cli, tmp_path, declare(tmp_path))
    assert r.code == 1
    [failed] = rep["files_failed"]
    assert "truncated gzip archive" in failed["error"] and "records read before it" in failed["error"]
    assert not rep["partitions_built"] and not (tmp_path / "out" / "events_20210130.csv").exists()
    f = file_counts(tmp_path)["a.csv.gz"]
    assert f["status"] == "failed" and 0 < f["rows_valid"] < 20_000
    accounted(f)


def test_records_that_do_not_add_up_fail_the_file_with_both_numbers(tmp_path, monkeypatch):
    """A reader that silently loses a row (as DuckDB did with long lines) is caught by the
    independent count: the file fails, nothing of it is published, the run says why."""
    put(tmp_path, "a.csv", HEADER + rows(50))
    real = DuckDBEngine.stage_csv

    def lossy(self, source, header, pipeline, part_dir):
        shifted = dataclasses.replace(source, reader=f"(SELECT * FROM {source.reader} OFFSET 1)")
        return real(self, shifted, header, pipeline, part_dir)

    monkeypatch.setattr(DuckDBEngine, "stage_csv", lossy)
    config = declare(tmp_path)
    pipe = config_mod.load(config).pipeline("events")
    rep = logroll.run(pipe, source=str(tmp_path / "raw"), dest=str(tmp_path / "out"))
    assert rep.status == "failed"
    [failed] = rep.files_failed
    assert "records do not add up" in failed["error"] and "50 data records" in failed["error"]
    assert "49 rows" in failed["error"]
    assert not rep.partitions_built and not list((tmp_path / "out").glob("events_*.csv"))
