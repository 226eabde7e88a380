"""Issue 17, tried as a new user would: every silent no-op and raw exception is one line with an
exit code, --json always prints one object, and report/status work for every destination kind."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from logroll import demo

from conftest import tree_bytes


@pytest.fixture
def small_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=2, rows=1500)
    return raw


def one_error_line(r, code: int, *words: str) -> str:
    """The run ended with exactly one error line (log lines before it are fine), the last one."""
    lines = r.err.strip().splitlines()
    assert r.code == code, (r.code, r.err)
    errors = [ln for ln in lines if ln.startswith("logroll:")]
    assert errors == lines[-1:] and errors[0].startswith("logroll: error: "), r.err
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


# ---- silent no-ops and raw exceptions -------------------------------------------------------
def test_source_that_is_a_file(cli, small_raw, tmp_path):
    a_file = next(small_raw.rglob("*.csv"))
    r = cli("run", "impressions", "--source", str(a_file), "--dest", str(tmp_path / "out"))
    one_error_line(r, 2, "--source", "is a file, not a folder", str(a_file.parent))


def test_dest_that_is_a_file(cli, small_raw, tmp_path):
    (tmp_path / "taken").write_text("x")
    r = cli("run", "impressions", "--source", str(small_raw), "--dest", str(tmp_path / "taken"))
    one_error_line(r, 2, "--dest", "is a file, not a folder")
    assert "unexpected" not in r.err


@pytest.mark.parametrize("flag", ["--parallel", "--threads"])
def test_counts_below_one(cli, small_raw, tmp_path, flag):
    r = cli("run", "impressions", "--source", str(small_raw), "--dest", str(tmp_path / "o"), flag, "0")
    one_error_line(r, 2, f"{flag} 0", "1 or more")
    assert not (tmp_path / "o" / "2021").exists()


def test_corrupt_catalog_with_json(cli, small_raw, tmp_path):
    state = tmp_path / "out" / "_logroll" / "catalog.sqlite"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"this is not a database " * 100)
    r = cli("run", "impressions", "--source", str(small_raw), "--dest", str(tmp_path / "out"), "--json")
    one_error_line(r, 1, "not a readable catalog", "move it away")
    assert json.loads(r.out) == {
        "status": "error",
        "exit_code": 1,
        "error": r.err.strip()[len("logroll: error: ") :],
    }


def test_usage_errors_are_one_line_and_json(cli):
    r = cli("run", "impressions", "--sourc", "raw", "--json")
    one_error_line(r, 2, "No such option: --sourc", "logroll run --help")
    assert json.loads(r.out)["status"] == "error"
    r = cli("run", "impressions", "--parallel", "x")
    one_error_line(r, 2, "--parallel")


def test_json_error_object_when_a_run_stops_early(cli, tmp_path):
    r = cli("run", "impressions", "--source", str(tmp_path / "nope"), "--dest", str(tmp_path / "o"), "--json")
    assert r.code == 2
    out = json.loads(r.out)  # exactly one JSON object
    assert out["status"] == "error" and "does not exist" in out["error"]


def test_s3_without_s3fs_names_the_extra(cli, tmp_path):
    # A stand-in s3fs that fails to import, as on a core-only install.
    fake = tmp_path / "no_s3fs"
    fake.mkdir()
    (fake / "s3fs.py").write_text("raise ImportError('No module named s3fs', name='s3fs')\n")
    r = cli(
        "run", "impressions", "--source", "s3://bucket/raw", "--dest", str(tmp_path / "o"),
        env={"PYTHONPATH": str(fake)},
    )  # fmt: skip
    one_error_line(r, 2, "pip install 'logroll[s3]'")


# ---- prune-missing, changed initials ------------------------------------------------------------
def outputs_of(dest: Path) -> dict[str, bytes]:
    return tree_bytes(dest)


def test_deleted_file_rows_kept_by_default_and_retracted_with_prune_missing(cli, small_raw, tmp_path):
    dest = tmp_path / "out"
    assert cli("run", "impressions", "--source", str(small_raw), "--dest", str(dest)).code == 0
    before = outputs_of(dest)
    # A file with rows of its own (not the resent copy) goes away.
    gone = small_raw / "2021" / "01" / "29" / "impressions_20210129_1.csv"
    gone.unlink()
    r = cli("run", "impressions", "--source", str(small_raw), "--dest", str(dest))
    assert r.code == 0 and "nothing to do" in r.out
    assert outputs_of(dest) == before  # the default: rows are kept
    r = cli(
        "run", "impressions", "--source", str(small_raw), "--dest", str(dest), "--prune-missing", "--json"
    )
    assert r.code == 0, r.err
    assert r.json()["files_forgotten"] == [str(gone)]
    fresh = tmp_path / "fresh"
    assert cli("run", "impressions", "--source", str(small_raw), "--dest", str(fresh)).code == 0
    assert outputs_of(dest) == outputs_of(fresh) != before  # as if the file had never been there
    # Idempotent: nothing new, no byte changes.
    r = cli("run", "impressions", "--source", str(small_raw), "--dest", str(dest), "--prune-missing")
    assert "nothing to do" in r.out


def test_prune_missing_drops_a_day_with_no_input_left(cli, tmp_path):
    raw = tmp_path / "raw"
    day = raw / "2021" / "01" / "29"
    day.mkdir(parents=True)
    (day / "a.csv").write_text(
        "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n1,2021-01-29 10:00:00,7,u,phone\n"
    )
    other = raw / "2021" / "01" / "30"
    other.mkdir()
    (other / "b.csv").write_text(
        "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n2,2021-01-30 10:00:00,7,u,phone\n"
    )
    dest = tmp_path / "out"
    assert cli("run", "impressions", "--source", str(raw), "--dest", str(dest)).code == 0
    assert (dest / "2021/01/29/daily_agg_20210129_Guy_Fawkes.csv").exists()
    (day / "a.csv").unlink()
    r = cli("run", "impressions", "--source", str(raw), "--dest", str(dest), "--prune-missing", "--json")
    assert r.code == 0, r.err
    assert r.json()["partitions_dropped"] == ["2021-01-29"]
    assert not (dest / "2021/01/29/daily_agg_20210129_Guy_Fawkes.csv").exists()
    assert (dest / "2021/01/30/daily_agg_20210130_Guy_Fawkes.csv").exists()
    days = json.loads(cli("status", "impressions", "--dest", str(dest), "--json").out)["days"]
    assert [d["day"] for d in days] == ["2021-01-30"]


def test_changed_initials_remove_the_old_outputs(cli, small_raw, tmp_path):
    dest = tmp_path / "out"
    assert cli("run", "impressions", "--source", str(small_raw), "--dest", str(dest)).code == 0
    assert (
        cli("run", "impressions", "--source", str(small_raw), "--dest", str(dest), "--initials", "GF").code
        == 0
    )
    names = sorted(p.name for p in dest.rglob("daily_agg_*.csv"))
    assert names and all(n.endswith("_GF.csv") for n in names), names


# ---- run and stream never share a destination ---------------------------------------------------
def test_run_and_stream_refuse_each_others_destination(cli, tmp_path):
    events = tmp_path / "events"
    demo.GENERATORS["weblogs"](events, days=1, rows=300)
    lines = tmp_path / "events.json"
    lines.write_bytes(b"".join(p.read_bytes() for p in sorted(events.rglob("*.json"))))
    streamed, ran = tmp_path / "streamed", tmp_path / "ran"
    r = cli("stream", "weblogs", "--follow", str(lines), "--stop-at-eof", "--dest", str(streamed))
    assert r.code == 0, r.err
    one_error_line(
        cli("run", "weblogs", "--source", str(events), "--dest", str(streamed)), 2, "logroll stream"
    )
    assert cli("run", "weblogs", "--source", str(events), "--dest", str(ran)).code == 0
    r = cli("stream", "weblogs", "--follow", str(lines), "--stop-at-eof", "--dest", str(ran))
    one_error_line(r, 2, "logroll run weblogs")
    db = f"duckdb:///{tmp_path / 's.duckdb'}"
    assert cli("stream", "weblogs", "--follow", str(lines), "--stop-at-eof", "--dest", db).code == 0
    one_error_line(cli("run", "weblogs", "--source", str(events), "--dest", db), 2, "logroll stream")

    # status and report on a stream's destination: inputs, checkpoint, batches, events.
    for dest in (str(streamed), db):
        info = json.loads(cli("status", "weblogs", "--dest", dest, "--json").out)
        assert info["mode"] == "stream" and info["events"] > 0
        (only,) = info["inputs"]
        assert only["input"] == str(lines) and only["batches"] >= 1 and only["checkpoint"]["line"] > 0
        assert only["last_commit"]
        out = tmp_path / "stream.html"
        r = cli("report", "weblogs", "--dest", dest, "--out", str(out))
        assert r.code == 0, r.err
        assert str(lines) in out.read_text()
        table = cli("status", "weblogs", "--dest", dest)
        assert "checkpoint line" in table.out


def test_stream_events_per_second_leaves_out_idle_time(tmp_path):
    from logroll.streaming.runner import run_stream

    lines = tmp_path / "events.json"
    events = tmp_path / "events"
    demo.GENERATORS["weblogs"](events, days=1, rows=300)
    lines.write_bytes(b"".join(p.read_bytes() for p in sorted(events.rglob("*.json"))))
    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()  # the file is read at once, then the stream waits idle
    report = run_stream("weblogs", dest=str(tmp_path / "out"), follow=str(lines), stop=stop)
    assert report.seconds >= 2.9
    assert report.busy_seconds < report.seconds - 1.5
    assert report.events_per_second == pytest.approx(report.rows_read / report.busy_seconds)
    assert f"{report.events_per_second:,.0f} events/s" in report.summary()


# ---- report and status on database destinations and ingest -------------------------------------
def test_report_and_status_on_a_duckdb_destination(cli, tmp_path):
    events = tmp_path / "events"
    demo.GENERATORS["weblogs"](events, days=1, rows=300)
    db = f"duckdb:///{tmp_path / 'w.duckdb'}"
    assert cli("run", "weblogs", "--source", str(events), "--dest", db).code == 0
    out = tmp_path / "r.html"
    r = cli("report", "weblogs", "--dest", db, "--out", str(out))
    assert r.code == 0, r.err  # was "Protocol not known: duckdb"
    html = out.read_text()
    assert "No rejected rows" not in html  # samples read from the _logroll_quarantine table
    assert cli("status", "weblogs", "--dest", db, "--json").json()["days"]


def test_report_and_status_on_a_postgres_destination(cli, tmp_path, pg_url):
    events = tmp_path / "events"
    demo.GENERATORS["weblogs"](events, days=1, rows=300)
    assert cli("run", "weblogs", "--source", str(events), "--dest", pg_url).code == 0
    out = tmp_path / "r.html"
    r = cli("report", "weblogs", "--dest", pg_url, "--out", str(out))
    assert r.code == 0, r.err
    assert "No rejected rows" not in out.read_text()


def test_ingest_status_and_report(cli, tmp_path):
    drops = tmp_path / "drops"
    demo.GENERATORS["ingest"](drops, days=1, rows=3000)
    db = f"duckdb:///{tmp_path / 'credit.duckdb'}"
    r = cli("run", "ingest", "--source", str(drops), "--dest", db)
    assert r.code == 0, r.err
    assert "1,00" in r.out or "," in r.out.split("rows loaded")[0]  # thousands separators
    state = str(tmp_path / "credit.duckdb.state.sqlite")
    info = cli("status", "ingest", "--state", state, "--json").json()
    assert info["dest"] == f"{db}#credit"  # was null without --dest
    table = cli("status", "ingest", "--state", state)
    assert "," in table.out.split("rows:")[1].splitlines()[0]
    out = tmp_path / "ingest.html"
    r = cli("report", "ingest", "--state", state, "--out", str(out))
    assert r.code == 0, r.err
    assert "Recent jobs" in out.read_text()


def test_status_is_not_squeezed_when_piped(cli, small_raw, tmp_path):
    dest = tmp_path / ("a_rather_long_folder_name_" * 4) / "out"
    assert cli("run", "impressions", "--source", str(small_raw), "--dest", str(dest)).code == 0
    r = cli("status", "impressions", "--dest", str(dest))
    assert f"(state {dest}/_logroll/catalog.sqlite)" in r.out  # on one line, not wrapped at 80


# ---- control characters from file names and file contents -------------------------------------
def test_terminal_escapes_in_names_and_headers_are_escaped(cli, tmp_path):
    raw = tmp_path / "raw" / "2021" / "01" / "29"
    raw.mkdir(parents=True)
    evil = raw / "evil\x1b[31mred\nname.csv"
    evil.write_text("IMPRESSION_ID,\x1b]0;pwned\x07BAD\r\nx,y\n")
    r = cli(
        "run", "impressions", "2021-01-29", "--source", str(tmp_path / "raw"), "--dest", str(tmp_path / "o")
    )
    assert r.code == 1
    for stream in (r.out, r.err):
        assert "\x1b" not in stream and "\x07" not in stream
    assert "\\x1b[31mred\\nname.csv" in r.err  # the log line names the file, escaped
    r = cli("status", "impressions", "--dest", str(tmp_path / "o"))
    assert "\x1b" not in r.out and "\\x1b" in r.out


def test_excerpt_is_bounded_and_escaped():
    from logroll.errors import excerpt, safe_text

    assert safe_text("a\x1bb\nc\u202ed\x9b") == "a\\x1bb\\nc\\u202ed\\x9b"
    quoted = excerpt("x" * 1000)
    assert len(quoted) < 130 and quoted.endswith("...'")
    assert safe_text("plain é") == "plain é"
