"""Issue 14's `input:` keys and the timestamp directives of issues 13/14: each file read through a
dialect key gives the same outputs as the plain UTF-8 comma file with a header, and `validate`
refuses only what cannot work."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
from pathlib import Path

import pytest
import zstandard

import logroll
from logroll import config as config_mod

ROWS = [[f"id{i}", f"2021-01-30 {i % 24:02d}:{i % 60:02d}:00", str(i % 7), f"n é{i}"] for i in range(300)]
HEADER = ["id", "ts", "amount", "name"]

PIPELINE = """
pipelines:
  events:
    input: {{format: csv{input}}}
    columns:
      - {{name: id}}
      - {{name: ts, type: timestamp{formats}}}
      - {{name: amount, type: integer, required: false}}
      - {{name: name, required: false}}
    event_time: {event_time}
    key: [id{key}]
{extra}    outputs:
      - name: daily
        sql: SELECT id, ts, amount, name FROM rows
        path: "events_{{date:%Y%m%d}}.csv"
        order_by: [id]
"""


def text(rows: list[list[str]], delimiter: str = ",", quotechar: str = '"', header: bool = True) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, quotechar=quotechar, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if header:
        w.writerow(HEADER)
    w.writerows(rows)
    return out.getvalue()


def run(
    tmp_path: Path, name: str, data: bytes, input_keys: str = "", **kw: str
) -> tuple[logroll.RunReport, dict]:
    base = tmp_path / name
    path = base / "raw" / "2021/01/30" / kw.pop("file", "a.csv")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    decl = PIPELINE.format(
        input=input_keys,
        formats=kw.get("formats", ""),
        event_time=kw.get("event_time", "ts"),
        key=kw.get("key", ", ts"),
        extra=kw.get("extra", ""),
    )
    (base / "logroll.yaml").write_text(decl)
    pipe = config_mod.load(base / "logroll.yaml").pipeline("events")
    report = logroll.run(pipe, source=str(base / "raw"), dest=str(base / "out"))
    outputs = {p.name: p.read_bytes() for p in sorted((base / "out").glob("events_*.csv"))}
    return report, outputs


@pytest.fixture
def plain(tmp_path):
    report, outputs = run(tmp_path, "plain", text(ROWS).encode())
    assert report.status == "ok" and report.rows_valid == 300 and outputs
    return outputs


@pytest.mark.parametrize(
    "name,data,keys",
    [
        ("gzip", gzip.compress(text(ROWS).encode()), "a.csv.gz"),
        ("zstd", zstandard.ZstdCompressor().compress(text(ROWS).encode()), "a.csv.zst"),
        ("bz2", bz2.compress(text(ROWS).encode()), "a.csv.bz2"),
    ],
)
def test_compressed_suffixes_read_like_the_plain_file(tmp_path, plain, name, data, keys):
    report, outputs = run(tmp_path, name, data, file=keys)
    assert report.status == "ok" and outputs == plain


def test_compression_key_overrides_the_suffix(tmp_path, plain):
    report, outputs = run(
        tmp_path, "over", gzip.compress(text(ROWS).encode()), ", compression: gzip", file="a.csv"
    )
    assert report.status == "ok" and outputs == plain


@pytest.mark.parametrize(
    "name,data,keys",
    [
        ("quote", text(ROWS, quotechar="'").encode(), ", quote: \"'\""),
        ("semicolon_latin1", text(ROWS, ";").encode("latin-1"), ", delimiter: ';', encoding: latin-1"),
        ("cp1252", text(ROWS).encode("cp1252"), ", encoding: cp1252"),
        ("utf16_bom", text(ROWS).encode("utf-16"), ""),
        ("utf8_bom", b"\xef\xbb\xbf" + text(ROWS).encode(), ""),
        ("no_header", text(ROWS, header=False).encode(), ", header: false"),
        ("skip_rows", b"report of the day\nexported by tool\n" + text(ROWS).encode(), ", skip_rows: 2"),
        ("comment", ("# exported\n" + text(ROWS[:150]) + "# page 2\n" + text(ROWS[150:], header=False)).encode(), ", comment: '#'"),
    ],
)  # fmt: skip
def test_dialect_keys_read_like_the_plain_file(tmp_path, plain, name, data, keys):
    report, outputs = run(tmp_path, name, data, keys)
    assert report.status == "ok", report.files_failed or report.files_rejected
    assert report.rows_valid == 300 and report.rows_rejected == 0
    assert outputs == plain


def test_backslash_escape_and_quote_none(tmp_path):
    data = b'id,ts,amount,name\n1,"2021-01-30 01:00:00",1,"a \\"b\\", c"\n'
    report, outputs = run(tmp_path, "esc", data, ", escape: '\\'")
    assert report.rows_valid == 1
    assert b'"a ""b"", c"' in outputs["events_20210130.csv"]
    data = b'id,ts,amount,name\n1,2021-01-30 01:00:00,1,"x\n'
    report, outputs = run(tmp_path, "none", data, ", quote: none")
    assert report.rows_valid == 1 and b'"""x"' in outputs["events_20210130.csv"]


@pytest.mark.parametrize(
    "fmt,value",
    [
        ("%d/%b/%Y:%H:%M:%S %z", "30/Jan/2021:10:00:00 +0000"),
        ("%a %b %d %H:%M:%S %z %Y", "Sat Jan 30 10:00:00 +0000 2021"),
        ("%Y-%j %I:%M:%S %p", "2021-030 10:00:00 AM"),
        ("%B %d, %Y %H:%M:%S", "January 30, 2021 10:00:00"),
    ],
)
def test_timestamp_directives_parse(tmp_path, fmt, value):
    data = f'id,ts,amount,name\n1,"{value}",1,a\n2,"not a time",2,b\n'.encode()
    report, outputs = run(tmp_path, "t", data, formats=f", formats: ['{fmt}']")
    assert (report.rows_valid, report.rows_rejected) == (1, 1)
    assert b"1,2021-01-30 10:00:00,1,a" in outputs["events_20210130.csv"]


def test_offsets_convert_to_utc_unless_a_timezone_is_declared(tmp_path):
    data = b'id,ts,amount,name\n1,"30/Jan/2021:00:30:00 +0100",1,a\n2,"30/Jan/2021:23:30:00 -0100",2,b\n'
    fmt = ", formats: ['%d/%b/%Y:%H:%M:%S %z']"
    report, outputs = run(tmp_path, "utc", data, formats=fmt)
    assert sorted(outputs) == ["events_20210129.csv", "events_20210131.csv"]
    assert b"1,2021-01-29 23:30:00,1,a" in outputs["events_20210129.csv"]
    report, outputs = run(tmp_path, "paris", data, formats=fmt, extra="    timezone: Europe/Paris\n")
    assert sorted(outputs) == ["events_20210130.csv", "events_20210131.csv"]
    assert b"1,2021-01-30 00:30:00,1,a" in outputs["events_20210130.csv"]


def test_event_time_arrival_is_the_folder_day(tmp_path):
    data = text([[r[0], "whenever", r[2], r[3]] for r in ROWS[:10]]).encode()
    decl_cols = ""  # ts is still declared (a string here would do); the day comes from the folder
    report, outputs = run(tmp_path, "arrival", data.replace(b"whenever", b"2020-05-05 00:00:00"), decl_cols,
                          event_time="arrival", key="")  # fmt: skip
    assert report.status == "ok" and list(outputs) == ["events_20210130.csv"]
    assert outputs["events_20210130.csv"].count(b"\n") == 11


def test_validate_refuses_only_what_cannot_work(tmp_path, cli):
    def validate(input_keys: str = "", formats: str = "", extra: str = "") -> tuple[int, str]:
        decl = PIPELINE.format(input=input_keys, formats=formats, event_time="ts", key=", ts", extra=extra)
        (tmp_path / "logroll.yaml").write_text(decl)
        r = cli("validate", "--config", str(tmp_path / "logroll.yaml"))
        return r.code, r.out + r.err

    assert validate(formats=", formats: ['%a %b %d %H:%M:%S %z %Y']")[0] == 0
    code, msg = validate(formats=", formats: ['%Y-%m-%d %Q']")
    assert code == 2 and "%Q" in msg
    for bad, what in [
        (", quote: ab", "one ASCII character"),
        (", escape: '\\n'", "one ASCII character"),
        (", encoding: klingon", "unknown encoding"),
        (", compression: lz4", "compression"),
        (", skip_rows: -1", "skip_rows"),
    ]:
        code, msg = validate(bad)
        assert code == 2 and what in msg, (bad, msg)
    code, msg = validate(extra="    timezone: Mars/Olympus\n")
    assert code == 2 and "unknown timezone" in msg
    assert (
        validate(", quote: none, header: false, comment: '#', encoding: latin-1, compression: zstd")[0] == 0
    )
