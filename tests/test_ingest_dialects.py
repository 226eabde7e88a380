"""Ingest reads every CSV dialect a pipeline's `input:` does (issue 14): quote, escape, header,
skip_rows, encoding, comment and compression under `ingest:` in logroll.yaml (or as keyword
arguments of the API). Each dialect file holds the rows of one plain UTF-8 comma file; both are
loaded with an inferred schema, and the schema and the rows must come out the same."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from logroll import ingest

COLUMNS = ["id", "name", "amount", "seen"]
NAMES = ['Zoë "Z", jr', "plain", "Ünïcödé;semi", "tab\there", "it's", "back\\slash", ""]
ROWS = [
    [str(i), NAMES[i % len(NAMES)], f"{i * 1.25:.2f}", f"2024-03-{1 + i % 28:02d} 10:{i % 60:02d}:00"]
    for i in range(1, 201)
]


def write_csv(rows: list[list[str]], header: bool = True, **fmt: Any) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n", **fmt)
    if header:
        w.writerow(COLUMNS)
    w.writerows(rows)
    return out.getvalue()


def loaded(dest_file: Path) -> list[tuple]:
    with duckdb.connect(str(dest_file), read_only=True) as con:
        return con.execute(f"SELECT {', '.join(COLUMNS)} FROM t ORDER BY id").fetchall()


def load(tmp: Path, name: str, data: bytes, **keys: Any) -> tuple[list[tuple], list[dict], Any]:
    """Load one file holding `data` with the settings `keys`: (rows, inferred schema, report)."""
    src = tmp / f"src-{name.replace('.', '-')}"
    src.mkdir()
    (src / name).write_bytes(data)
    dest = tmp / f"{src.name}.duckdb"
    report = ingest.run(source=str(src), dest=f"duckdb:///{dest}#t", **keys)
    assert report.status == "ok", report.to_dict()
    schema = ingest.status(state=str(dest) + ".state.sqlite")["schema"]["columns"]
    return loaded(dest), schema, report


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> tuple[list[tuple], list[dict]]:
    rows, schema, report = load(tmp_path_factory.mktemp("plain"), "a.csv", write_csv(ROWS).encode())
    assert report.work.rows_loaded == len(ROWS) and report.work.rows_rejected == 0
    return rows, schema


def _no_quote(rows: list[list[str]]) -> str:
    # quote: none - every character is data, the quote included; no value holds the delimiter
    return "\n".join("|".join(COLUMNS if r is None else r) for r in [None, *rows]) + "\n"


CASES: dict[str, tuple[bytes, dict[str, Any]]] = {
    "quote": (write_csv(ROWS, quotechar="'").encode(), {"quote": "'"}),
    "escape": (
        write_csv(ROWS, escapechar="\\", doublequote=False, quoting=csv.QUOTE_ALL).encode(),
        {"escape": "\\"},
    ),
    "semicolon latin-1": (write_csv(ROWS, delimiter=";").encode("latin-1"), {"delimiter": ";", "encoding": "latin-1"}),
    "cp1252": (write_csv(ROWS).encode("cp1252"), {"encoding": "cp1252"}),
    # Excel's "Unicode text": UTF-16 with its BOM, tab-separated; the BOM picks the codec by itself
    "utf-16 bom": (write_csv(ROWS, delimiter="\t").encode("utf-16"), {"delimiter": "\t"}),
    "skip_rows": (b"exported by tool 1.2\nfrom: crm\n" + write_csv(ROWS).encode(), {"skip_rows": 2}),
    "comment": (
        b"# header follows\n" + write_csv(ROWS[:50]).encode() + b"# page 2\n" + write_csv(ROWS[50:], header=False).encode(),
        {"comment": "#"},
    ),
    "quote none": (_no_quote([[v.replace("\t", " ") for v in r] for r in ROWS]).encode(), {"quote": "none", "delimiter": "|"}),
    "gzip by setting": (gzip.compress(write_csv(ROWS).encode()), {"compression": "gzip"}),
    "crlf": (write_csv(ROWS).replace("\n", "\r\n").encode(), {}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_each_dialect_key_loads_what_the_plain_file_does(case, plain, tmp_path):
    data, keys = CASES[case]
    rows, schema, report = load(tmp_path, "a.csv", data, **keys)
    want_rows, want_schema = plain
    if case == "quote none":  # the tab in one name was a space there
        want_rows = [(r[0], r[1] and r[1].replace("\t", " "), *r[2:]) for r in want_rows]
    assert schema == want_schema, case
    assert rows == want_rows, case
    w = report.work
    assert (w.rows_read, w.rows_loaded, w.rows_rejected) == (len(ROWS), len(ROWS), 0), case


def test_header_false_reads_the_declared_columns_in_order(plain, tmp_path):
    declared = [
        {"name": "id", "type": "integer"},
        {"name": "name", "type": "string"},
        {"name": "amount", "type": "float"},
        {"name": "seen", "type": "timestamp"},
    ]
    rows, _, report = load(
        tmp_path, "a.csv", write_csv(ROWS, header=False).encode(), header=False, columns=declared
    )
    assert rows == plain[0]
    assert report.work.rows_read == len(ROWS)


def test_header_false_without_columns_is_a_config_error(cli, tmp_path):
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv").write_text(write_csv(ROWS, header=False))
    (tmp_path / "logroll.yaml").write_text("ingest:\n  header: false\n")
    run = cli("run", "ingest", "--source", str(src), "--dest", "duckdb:///t.duckdb", cwd=tmp_path)
    assert run.code == 2, run.err
    assert run.err.count("\n") == 1 and "header: false needs the columns declared" in run.err
    assert not (tmp_path / "t.duckdb.state.sqlite").exists()  # said before anything is recorded


@pytest.mark.parametrize(
    "setting, message",
    [
        ("quote: ab", "quote must be one character"),
        ("escape: ab", "escape must be one character"),
        ("encoding: klingon", "unknown encoding 'klingon'"),
        ("skip_rows: -1", "skip_rows must be 0 or more"),
        ("skip_rows: two", "skip_rows: expected int"),
        ("header: maybe", "header: expected true or false"),
        ("compression: rar", "compression 'rar'"),
        ("comment: ''", "comment"),
        ("delimiter: ';'\n  quote: ';'", "the delimiter must differ"),
        ("null_values: NA", "null_values: expected a list"),
    ],
)
def test_a_wrong_dialect_key_is_one_line_and_exit_2(cli, tmp_path, setting, message):
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv").write_text(write_csv(ROWS))
    (tmp_path / "logroll.yaml").write_text(f"ingest:\n  {setting}\n")
    for command in (
        ["validate"],
        ["scan", "ingest", "--state", "s.sqlite", "--source", str(src)],
        ["run", "ingest", "--dest", "duckdb:///t.duckdb", "--source", str(src)],
    ):
        run = cli(*command, cwd=tmp_path)
        assert run.code == 2, (setting, run.err)
        assert run.err.count("\n") == 1 and message in run.err and "Traceback" not in run.err, run.err
    assert not (tmp_path / "t.duckdb").exists()


def test_a_misspelt_api_keyword_is_refused(tmp_path):
    from logroll.errors import UsageError

    with pytest.raises(UsageError, match="unknown ingest setting.*skiprows"):
        ingest.scan(source=str(tmp_path), state=str(tmp_path / "s.sqlite"), skiprows=2)


def test_a_latin1_semicolon_export_with_preamble_on_postgres(cli, pg_url, tmp_path, plain):
    """The issue's file, through the CLI into a real PostgreSQL: semicolons, `'` quotes, Latin-1,
    two preamble lines, comments, gzip; one bad row is quarantined with its physical line (the
    preamble counted) and the accounting holds."""
    body = write_csv(ROWS, delimiter=";", quotechar="'").splitlines(keepends=True)
    body.insert(11, "# a note in the middle\n")
    body.insert(21, "oops;bad id;1.0;2024-03-01 10:00:00\n")  # the body's 22nd line: the file's 24th
    text = "Export du 2024-03-31\nsystème: crm\n" + "".join(body)
    src = tmp_path / "drops"
    src.mkdir()
    (src / "export.csv.gz").write_bytes(gzip.compress(text.encode("latin-1")))
    (tmp_path / "logroll.yaml").write_text(
        "ingest:\n  delimiter: ';'\n  quote: \"'\"\n  encoding: latin-1\n  skip_rows: 2\n  comment: '#'\n"
        "  columns:\n    - {name: id, type: integer}\n    - {name: name, type: string}\n"
        "    - {name: amount, type: float}\n    - {name: seen, type: timestamp}\n"
    )
    run = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json", cwd=tmp_path)
    assert run.code == 0, run.err
    work = run.json()["work"]
    assert (work["rows_read"], work["rows_loaded"], work["rows_rejected"]) == (len(ROWS) + 1, len(ROWS), 1)
    with psycopg.connect(pg_url) as conn:
        got = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM t ORDER BY id").fetchall()
    assert got == plain[0]
    [quarantine] = work["quarantine"]
    with open(quarantine, newline="") as f:
        [reject] = [r for r in csv.DictReader(f)]
    assert reject["line"] == "24" and reject["raw_line"].startswith("oops;"), reject
    again = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json", cwd=tmp_path)
    assert again.code == 0 and again.json()["work"]["rows_loaded"] == 0


def test_the_documented_ingest_settings_are_accepted(cli, tmp_path):
    """docs/ingest.md's logroll.yaml, with every dialect key at its default, is valid as written."""
    from logroll.ingest.settings import input_keys, load_config

    from conftest import ROOT

    text = (ROOT / "docs" / "ingest.md").read_text()
    block = text.split("```yaml\n# logroll.yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "logroll.yaml").write_text(block)
    keys = input_keys(load_config(tmp_path / "logroll.yaml"))
    assert keys == {
        "delimiter": ",",
        "null_values": ("", "NA"),
        "quote": '"',
        "header": True,
        "skip_rows": 0,
        "encoding": "utf-8",
        "compression": "auto",
    }
    assert cli("validate", cwd=tmp_path).out.endswith("ok (0 pipeline(s): none; ingest settings)\n")


def test_a_worker_given_only_state_and_dest_reads_as_the_state_recorded(cli, tmp_path, plain):
    """State belongs to the destination: the first worker records how files are read (from its
    logroll.yaml); a worker elsewhere, with no logroll.yaml, reads the next files the same way.
    A worker told otherwise says so, and the state follows it."""
    src, elsewhere = tmp_path / "drops", tmp_path / "elsewhere"
    src.mkdir()
    elsewhere.mkdir()
    text = write_csv(ROWS, delimiter=";")
    (src / "a.csv").write_bytes(("export v1\n" + text).encode("latin-1"))
    (tmp_path / "logroll.yaml").write_text("ingest:\n  delimiter: ';'\n  encoding: latin-1\n  skip_rows: 1\n")
    state, dest = str(tmp_path / "state.sqlite"), f"duckdb:///{tmp_path}/t.duckdb#t"
    first = cli(
        "run", "ingest", "--source", str(src), "--state", state, "--dest", dest, "--json", cwd=tmp_path
    )
    assert first.code == 0, first.err
    status = cli("status", "ingest", "--state", state, "--json", cwd=elsewhere).json()
    assert status["input"] == {
        "delimiter": ";",
        "encoding": "latin-1",
        "skip_rows": 1,
        "null_values": ["", "NA"],
    }

    (src / "b.csv").write_bytes(("export v1\n" + write_csv(ROWS[:10], delimiter=";")).encode("latin-1"))
    assert cli("scan", "ingest", "--source", str(src), "--state", state, "--flush", cwd=elsewhere).code == 0
    work = cli("work", "ingest", "--state", state, "--dest", dest, "--json", cwd=elsewhere)
    assert work.code == 0, work.err
    report = work.json()
    assert (report["rows_loaded"], report["rows_rejected"]) == (10, 0), report
    with duckdb.connect(f"{tmp_path}/t.duckdb", read_only=True) as con:
        got = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM t WHERE _source_file LIKE '%b.csv' ORDER BY id"
        ).fetchall()
    assert got == plain[0][:10]  # Latin-1 names intact: not read as UTF-8

    (elsewhere / "logroll.yaml").write_text("ingest:\n  encoding: cp1252\n")
    told = cli("work", "ingest", "--state", state, "--dest", dest, cwd=elsewhere)
    assert told.code == 0, told.err
    assert "read with other settings from now on: encoding 'latin-1' -> 'cp1252'" in told.err
    status = cli("status", "ingest", "--state", state, "--json", cwd=tmp_path / "drops").json()
    assert status["input"]["encoding"] == "cp1252" and status["input"]["delimiter"] == ";"
