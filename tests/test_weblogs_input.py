"""Issues 13/14 for JSON input, through `logroll run weblogs`: compressed files, a file holding one
JSON array, damaged archives, hostile lines, and the independent record count."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import json
import random
import sqlite3
from pathlib import Path

import zstandard

import logroll
from logroll.engines import jsonl as engine_jsonl
from logroll.engines.duckdb_engine import DuckDBEngine
from logroll.pipelines.weblogs import PIPELINE as WEBLOGS
from weblogs_helpers import event, quarantine_rows, read_tables

from conftest import tree_bytes

URL = "https://www.hipages.com.au/find/plumbers/nsw"


def _events(n: int, seed: int = 7) -> list[str]:
    """n lines over three days: duplicates, rejects (bad timestamp, no host, invalid JSON) and
    blank lines among them."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        stamp = f"0{1 + i % 3}/02/2017 {rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00"
        kind = i % 97
        if kind == 5:
            out.append(event(f"e{i}", i % 50, "claim", URL, "2017-02-02 10:00:00"))
        elif kind == 11:
            out.append(event(f"e{i}", i % 50, "claim", "/no/host", stamp))
        elif kind == 13:
            out.append('{"event_id": "broken"')
        elif kind == 17:
            out.append("")
        elif kind == 19:
            out.append(out[-1])  # resent
        else:
            out.append(event(f"e{i}", i % 50, rnd.choice(["page_view", "claim"]), URL + f"/{i % 7}", stamp))
    return out


def _run(cli, src: Path, dest: Path) -> tuple[int, dict]:
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(dest), "--json")
    return res.code, res.json()


def _put(root: Path, name: str, data: bytes) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _rejects(report: dict) -> list[tuple[str, str, str]]:
    return sorted(
        (r["line"], r["reason"], r["raw_line"])
        for q in report["quarantine"]
        for r in quarantine_rows(Path(q))
    )


def file_counts(dest: Path) -> dict[str, dict]:
    """The catalog's row of each file, by file name."""
    con = sqlite3.connect(dest / "_logroll" / "catalog.sqlite")
    con.row_factory = sqlite3.Row
    got = {Path(r["uri"]).name: dict(r) for r in con.execute("SELECT * FROM files")}
    con.close()
    return got


def accounted(f: dict) -> None:
    """The invariant as the catalog records it (JSON: no header, nothing skipped)."""
    assert f["records_header"] == f["records_skipped"] == 0, f
    assert f["records"] == f["records_blank"] + f["rows_valid"] + f["rows_rejected"], f
    assert f["rows_read"] == f["rows_valid"] + f["rows_rejected"], f


COUNTS = ("rows_read", "rows_valid", "rows_rejected", "rows_unique", "duplicates", "rows_out")

CODECS = {
    ".json.gz": gzip.compress,
    ".jsonl.gz": gzip.compress,
    ".json.zst": lambda b: zstandard.ZstdCompressor().compress(b),
    ".ndjson.bz2": bz2.compress,
}


def test_compressed_files_give_what_the_plain_file_gives(cli, tmp_path):
    body = ("\n".join(_events(3000)) + "\n").encode()
    code, plain = _run(cli, _put(tmp_path / "plain", "events.json", body).parent, tmp_path / "out-plain")
    assert code == 0 and plain["rows_rejected"] > 0 and plain["duplicates"] > 0
    want = tree_bytes(tmp_path / "out-plain")
    [plain_file] = file_counts(tmp_path / "out-plain").values()
    accounted(plain_file)
    assert plain_file["records"] == 3000 and plain_file["records_blank"] > 0
    for suffix, compress in CODECS.items():
        name = suffix.strip(".").replace(".", "-")
        src = _put(tmp_path / name, "events" + suffix, compress(body)).parent
        code, got = _run(cli, src, tmp_path / f"out-{name}")
        assert code == 0, (suffix, got)
        assert got["files_staged"] == 1, suffix
        assert [got[k] for k in COUNTS] == [plain[k] for k in COUNTS], suffix
        assert tree_bytes(tmp_path / f"out-{name}") == want, suffix
        assert _rejects(got) == _rejects(plain), suffix
        [f] = file_counts(tmp_path / f"out-{name}").values()
        accounted(f)
        assert (f["records"], f["records_blank"]) == (3000, plain_file["records_blank"]), suffix


def test_a_file_holding_one_json_array_is_read_as_its_elements(cli, tmp_path):
    records = [json.loads(ln) for ln in _events(600) if ln.startswith("{") and ln.endswith("}")]
    lines = [json.dumps(r) for r in records]
    code, plain = _run(
        cli, _put(tmp_path / "a", "e.jsonl", ("\n".join(lines) + "\n").encode()).parent, tmp_path / "oa"
    )
    assert code == 0 and plain["rows_rejected"] > 0
    # pretty-printed: each element over several lines, CRLF endings, a BOM
    array = "\ufeff" + json.dumps(records, indent=2).replace("\n", "\r\n")
    code, got = _run(cli, _put(tmp_path / "b", "e.json", array.encode()).parent, tmp_path / "ob")
    assert code == 0, got
    assert [got[k] for k in COUNTS] == [plain[k] for k in COUNTS]
    assert tree_bytes(tmp_path / "ob") == tree_bytes(tmp_path / "oa")
    # a reject names the physical line its element starts on
    starts = [i + 1 for i, ln in enumerate(array.split("\r\n")) if ln == "  {"]
    assert len(starts) == len(records)
    by_line = {int(r["line"]): r["reason"] for q in got["quarantine"] for r in quarantine_rows(Path(q))}
    want = {starts[i]: reason for i, reason in _reasons(plain).items()}
    assert by_line == want


def _reasons(report: dict) -> dict[int, str]:
    """Line (1-based) -> reason of a plain JSON-lines run without blank lines: index of the element."""
    return {int(r["line"]) - 1: r["reason"] for q in report["quarantine"] for r in quarantine_rows(Path(q))}


def test_an_array_element_that_is_not_an_object_and_a_truncated_array(cli, tmp_path):
    ok = event("a", 1, "claim", URL, "02/02/2017 10:00:00")
    _put(tmp_path / "raw", "x.json", f'[\n{ok},\n42,\n"s"\n]\n'.encode())
    code, rep = _run(cli, tmp_path / "raw", tmp_path / "out")
    assert code == 0, rep
    assert (rep["rows_read"], rep["rows_valid"], rep["rows_rejected"]) == (3, 1, 2)
    assert [(r[0], r[1]) for r in _rejects(rep)] == [("3", "not a JSON object"), ("4", "not a JSON object")]
    # an array cut off inside an element: the file fails, with what was read before it
    _put(tmp_path / "raw", "x.json", f"[\n{ok},\n{ok[:30]}".encode())
    code, rep = _run(cli, tmp_path / "raw", tmp_path / "out")
    assert code == 1
    [failed] = rep["files_failed"]
    assert "array ends inside the element at line 3" in failed["error"]
    assert "records read before it" in failed["error"]


def test_a_truncated_or_corrupt_archive_fails_its_file_and_the_others_go_on(cli, tmp_path):
    body = ("\n".join(_events(20_000)) + "\n").encode()
    src = tmp_path / "raw"
    packed = gzip.compress(body)
    _put(src, "2017/02/02/a.json.gz", packed[: len(packed) // 2])
    # (a day the failed file may hold rows for is not built: the good file's day is far from them)
    good = event("g", 1, "claim", URL, "20/02/2017 10:00:00")
    _put(src, "2017/02/20/b.json", (good + "\n").encode())
    code, rep = _run(cli, src, tmp_path / "out")
    assert code == 1
    [failed] = rep["files_failed"]
    assert failed["uri"].endswith("a.json.gz")
    assert "truncated gzip archive" in failed["error"] and "records read before it" in failed["error"]
    read_before = int(failed["error"].split("; ")[1].split(" records")[0].replace(",", ""))
    assert 0 < read_before < 20_000
    assert rep["files_staged"] == 1 and rep["partitions_built"] == ["2017-02-20"]
    out = tmp_path / "out"
    assert not (out / "user_web_hits" / "2017-02-02.csv").exists()
    assert not [p for p in tmp_path.rglob("*.rejects.csv") if "a.json.gz" in p.name]
    f = file_counts(out)["a.json.gz"]
    assert f["status"] == "failed" and f["records"] == read_before and 0 < f["rows_valid"] < read_before
    accounted(f)
    # a corrupt one (bytes changed in the middle of the stream): the same, with its reason
    damaged = bytearray(gzip.compress(body))
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    _put(src, "2017/02/02/a.json.gz", bytes(damaged))
    code, rep = _run(cli, src, tmp_path / "out")
    assert code == 1
    [failed] = rep["files_failed"]
    assert "gzip archive" in failed["error"] and "records read before it" in failed["error"]
    # the whole archive: staged like the plain file
    _put(src, "2017/02/02/a.json.gz", gzip.compress(body))
    code, rep = _run(cli, src, tmp_path / "out")
    assert code == 0 and not rep["files_failed"]
    assert rep["rows_read"] == sum(1 for ln in body.split(b"\n")[:-1] if ln.strip())


def test_nul_bytes_invalid_utf8_and_huge_lines_are_rejects_not_file_failures(cli, tmp_path):
    ok = event("a", 1, "claim", URL, "02/02/2017 10:00:00")
    huge = event("h", 2, "claim", URL + "/" + "x" * (5 << 20), "02/02/2017 10:00:00")
    lines = [
        ok.encode(),
        event("n", 3, "claim", URL, "02/02/2017 10:00:00").encode().replace(b"claim", b"cl\0im"),
        b'{"event_id": "u", "user": {"id": 4}, "action": "caf\xe9", "url": "x.com/a", "timestamp": "x"}',
        huge.encode(),
        event("z", 5, "claim", URL, "02/02/2017 10:00:01").replace("claim", "cl\\u0000im").encode(),
        event("b", 6, "claim", URL, "02/02/2017 10:00:02").encode(),
    ]
    _put(tmp_path / "raw", "x.json", b"\n".join(lines) + b"\n")
    code, rep = _run(cli, tmp_path / "raw", tmp_path / "out")
    assert code == 0, rep
    assert (rep["rows_read"], rep["rows_valid"], rep["rows_rejected"]) == (6, 2, 4)
    got = {int(r[0]): (r[1], r[2]) for r in _rejects(rep)}
    assert got[2][0] == "NUL byte" and "\0" not in got[2][1] and "cl\\x00im" in got[2][1]
    assert got[3][0] == "invalid UTF-8" and "caf\\xe9" in got[3][1]
    assert got[4][0].startswith("line too long (") and len(got[4][1]) < 20_000
    assert got[5][0] == "bad action: contains a NUL character"
    hits, _ = read_tables(tmp_path / "out")
    assert [r[0] for r in hits["2017-02-02"]] == ["1", "6"]


def test_records_that_do_not_add_up_fail_the_file_with_both_numbers(tmp_path, monkeypatch):
    """A JSON reader that silently loses a line is caught by the independent count: the file
    fails, nothing of it is published, the run says why."""
    src = tmp_path / "raw"
    _put(src, "a.json", ("\n".join(_events(300)) + "\n").encode())
    real = DuckDBEngine.stage_jsonl

    def lossy(self, source, pipeline, part_dir, quarantine_file):
        shorter = tmp_path / "shorter.jsonl"
        shorter.write_bytes(b"".join(source.path.read_bytes().splitlines(keepends=True)[:-1]))
        return real(self, dataclasses.replace(source, path=shorter), pipeline, part_dir, quarantine_file)

    monkeypatch.setattr(DuckDBEngine, "stage_jsonl", lossy)
    rep = logroll.run(WEBLOGS, source=str(src), dest=str(tmp_path / "out"))
    assert rep.status == "failed"
    [failed] = rep.files_failed
    expected = sum(1 for ln in _events(300) if ln.strip())
    assert "records do not add up" in failed["error"]
    assert f"{expected:,} non-blank lines by an independent count" in failed["error"]
    assert f"read {expected - 1:,}" in failed["error"]
    assert not rep.partitions_built and not (tmp_path / "out" / "user_web_hits").exists()


def test_duckdbs_json_reader_and_the_line_reader_agree(tmp_path, monkeypatch):
    """The fast path (read_json over the whole file) and the line-by-line reader give the same
    bytes: values of every JSON kind, escapes, rejects of each kind it takes."""
    odd = [
        '{"event_id": 17, "user": {"id": 1.50}, "action": "a\\"b\\u00e9", "url": "x.com/p?q=1", '
        '"timestamp": "02/02/2017 10:00:00"}',
        '{"event_id": "e2", "user": {"id": 1e3}, "action": true, "url": "x.com", "timestamp": "02/02/2017 10:00:00"}',
        '{"event_id": "e3", "user": {"id": -0}, "action": "\\ud83d\\ude00", "url": "x.com/a/b/c", '
        '"timestamp": "02/02/2017 10:00:00", "extra": [1, {"k": null}]}',
        '{"event_id": "e4", "user": {"id": null}, "action": "a", "url": "x.com", "timestamp": "02/02/2017 10:00:00"}',
        '{"event_id": "e5", "user": {"id": [1]}, "action": "a", "url": "x.com", "timestamp": "02/02/2017 10:00:00"}',
        "   ",
    ]
    # (a line that is not JSON makes read_json refuse the file: the line reader takes it whole)
    usable = [ln for ln in _events(500, seed=3) if not ln.startswith('{"event_id": "broken"')]
    body = ("\n".join(usable + odd) + "\n").encode()
    runs = {}
    looked_up: list[int] = []  # the fast path finds its rejects' lines afterwards
    real_lookup = engine_jsonl.nonblank_lines
    monkeypatch.setattr(
        engine_jsonl,
        "nonblank_lines",
        lambda path, ords: looked_up.append(len(ords)) or real_lookup(path, ords),
    )
    for name in ("fast", "lines"):
        src = _put(tmp_path / f"raw-{name}", "a.json", body).parent
        if name == "lines":
            monkeypatch.setattr(engine_jsonl, "fast_select", lambda pipeline, path: None)
        rep = logroll.run(WEBLOGS, source=str(src), dest=str(tmp_path / f"out-{name}"))
        assert rep.status == "ok"
        runs[name] = (
            [getattr(rep, k) for k in COUNTS],
            tree_bytes(tmp_path / f"out-{name}"),
            sorted((r["line"], r["reason"], r["raw_line"]) for r in quarantine_rows(Path(rep.quarantine[0]))),
        )
    assert looked_up and looked_up[0] == len(runs["fast"][2])
    assert runs["fast"] == runs["lines"]
    assert any(r[1].startswith("bad user_id: expected a value") for r in runs["fast"][2])


def test_a_null_line_is_not_an_object_on_either_path(cli, tmp_path):
    ok = event("a", 1, "claim", URL, "02/02/2017 10:00:00")
    _put(tmp_path / "raw", "x.json", f"{ok}\nnull\n".encode())
    code, rep = _run(cli, tmp_path / "raw", tmp_path / "out")
    assert code == 0 and [(r[0], r[1]) for r in _rejects(rep)] == [("2", "not a JSON object")]
