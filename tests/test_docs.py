"""The docs' commands, run: every fenced shell (and Python) block of README.md and docs/*.md says on
the line before its fence whether it runs here, and the test runs those that do.

    <!-- runnable -->                    runs with local files only
    <!-- runnable: s3 postgres -->       needs these local servers (s3, postgres), or Java (spark);
                                         `slow` keeps a long block out of quick runs
    <!-- illustrative: WHY -->           does not run here, and says why

The blocks of one file run in order in one folder (a later block uses what an earlier one made),
each must exit 0. A file with Spark blocks gets a second case, marked `spark` and `slow` (it needs
Java and pyspark, as CI has): its local blocks again, as set-up, then its Spark blocks.

The world the docs are written against, so that their commands run unchanged:
- the working folder is a fresh one holding a copy of `examples/` (the docs are read from the
  repository's root), with a HOME of its own (remote destinations keep a working copy under ~/.cache);
- S3: the session's moto server (tests/s3server.py), reset for each file; `AWS_ENDPOINT_URL` points
  at it and test credentials are in the environment; bucket `ad-logs` holds the impressions demo
  at its root and under `raw/`, bucket `drops` the ingest demo under `credit/`;
- PostgreSQL: the session's server (tests/pg.py). `PGHOSTADDR=127.0.0.1` and `PGPORT` send every
  `postgresql://` URL of the docs to it whatever host it names (db.example.com, db.internal,
  127.0.0.1): libpq connects to hostaddr and keeps the host name for nothing else here. Roles `etl`,
  `analyst` and `logroll`, fresh databases `logroll`, `warehouse`, `analytics` and `live`;
  `PGPASSWORD` is set (the server trusts local connections);
- Spark: commands without `--master` run `local[*]`, as the docs say (LOGROLL_SPARK_MASTER would
  also reach the DuckDB commands of a block, which refuse it), a cluster's address `local[2]`;
- SUBSTITUTE below: the few addresses a doc must spell out that no variable can redirect.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS = {"s3", "postgres", "spark", "slow"}
MARKED_LANGUAGES = {"bash", "sh", "python"}  # the languages a block can be run in here
COMMAND_LINE = re.compile(r"^(logroll|pip|make|python|sudo|\.venv/\S+)\s", re.M)
FENCE = re.compile(r"^\s*```(\S*)\s*$")
MARKER = re.compile(r"^<!-- (runnable|illustrative)(?::\s*(.*?))?\s*-->$")

# Addresses a doc shows that no environment variable redirects, and what the test runs instead.
SUBSTITUTE = {
    "http://127.0.0.1:9000": "{s3}",  # MinIO's default port, for --endpoint-url
    "http://127.0.0.1:5000": "{s3}",  # the moto server docs/s3.md starts by hand
    "spark://10.0.0.5:7077": "local[2]",  # a standalone cluster
}
PG_ROLES = ("etl", "analyst", "logroll")
PG_DATABASES = ("logroll", "warehouse", "analytics", "live")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str  # runnable | illustrative | "" (none)
    words: tuple[str, ...]  # needs of a runnable block
    reason: str  # why an illustrative block does not run

    @property
    def needs(self) -> set[str]:
        return set(self.words) - {"slow"}

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the marker on the line before its fence."""
    lines = doc.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if FENCE.match(lines[j])), len(lines))
        indent = len(lines[i]) - len(lines[i].lstrip())
        text = "".join(ln[indent:] + "\n" for ln in lines[i + 1 : end])
        marker = MARKER.match(lines[i - 1].strip()) if i else None
        kind, detail = (marker.group(1), marker.group(2) or "") if marker else ("", "")
        words = tuple(detail.split()) if kind == "runnable" else ()
        reason = detail if kind == "illustrative" else ""
        found.append(Block(doc.name, i + 1, m.group(1), text, kind, words, reason))
        i = end + 1
    return found


ALL = [b for doc in DOCS for b in blocks(doc)]


def test_every_block_says_whether_it_runs():
    wrong = []
    for b in ALL:
        if b.lang in MARKED_LANGUAGES and not b.marker:
            wrong.append(f"{b}: a {b.lang} block needs <!-- runnable --> or <!-- illustrative: why -->")
        elif b.marker and b.lang not in MARKED_LANGUAGES:
            wrong.append(f"{b}: a marker on a block of language {b.lang!r}, which the test cannot run")
        elif not b.lang and COMMAND_LINE.search(b.text):
            wrong.append(f"{b}: commands in a block without a language: tag it ```bash")
        elif b.marker == "illustrative" and len(b.reason) < 10:
            wrong.append(f"{b}: say why the block is illustrative (<!-- illustrative: why -->)")
        elif not set(b.words) <= NEEDS:
            wrong.append(f"{b}: unknown needs {sorted(set(b.words) - NEEDS)}; known: {sorted(NEEDS)}")
    assert not wrong, "\n".join(wrong)


def test_the_servers_blocks_are_runnable():
    """The blocks that need servers stay runnable (a marker dropped by an edit shows here)."""
    runnable = [b for b in ALL if b.marker == "runnable"]
    counts = {need: sum(need in b.words for b in runnable) for need in ("s3", "postgres", "spark")}
    assert counts["s3"] >= 5 and counts["postgres"] >= 4 and counts["spark"] >= 2, counts
    assert len(runnable) >= 25, [str(b) for b in runnable]


def commands(text: str) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and spacing dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [" ".join(ln.split("#")[0].split()) for ln in joined.splitlines() if ln.split("#")[0].strip()]


def test_the_readme_spark_commands_run_in_spark_md():
    """README's Spark block is illustrative to start no JVM twice: docs/spark.md runs its commands
    (each one, or a longer form of it)."""
    run = [c for b in ALL if b.doc == "spark.md" and "spark" in b.words for c in commands(b.text)]
    shown = [c for b in ALL if b.doc == "README.md" and "--engine spark" in b.text for c in commands(b.text)]
    assert shown and run
    assert [c for c in shown if not any(r.startswith(c) for r in run)] == []


def test_the_parser_reads_markers(tmp_path: Path):
    doc = tmp_path / "x.md"
    doc.write_text(
        "<!-- runnable: s3 slow -->\n```bash\nlogroll a\n```\n\n"
        "<!-- illustrative: runs until stopped -->\n```sh\nlogroll b\n```\n"
        "1. list:\n   ```yaml\n   k: v\n   ```\n```\nlogroll c\n```\n"
    )
    found = blocks(doc)
    assert [(b.lang, b.marker, b.words, b.reason, b.text) for b in found] == [
        ("bash", "runnable", ("s3", "slow"), "", "logroll a\n"),
        ("sh", "illustrative", (), "runs until stopped", "logroll b\n"),
        ("yaml", "", (), "", "k: v\n"),
        ("", "", (), "", "logroll c\n"),
    ]
    assert found[0].needs == {"s3"}


# ---- running them ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    doc: str
    spark: bool
    blocks: tuple[Block, ...]

    @property
    def needs(self) -> set[str]:
        return set().union(*(b.needs for b in self.blocks))


def cases() -> list[pytest.param]:
    out = []
    for doc in DOCS:
        runnable = [b for b in ALL if b.doc == doc.name and b.marker == "runnable"]
        for spark in (False, True):
            if spark and not any("spark" in b.words for b in runnable):
                continue
            # without Spark: every block but the Spark ones; with: the local set-up, then Spark's
            chosen = [b for b in runnable if ("spark" in b.words) == spark or (spark and not b.needs)]
            if not chosen:
                continue
            marks = [pytest.mark.timeout(1800)]
            # a Spark case starts JVMs (a minute or more): out of quick runs, like the suite's Spark tests
            marks += [pytest.mark.spark, pytest.mark.slow] if spark else []
            marks += [pytest.mark.slow] if not spark and any("slow" in b.words for b in chosen) else []
            case = Case(doc.name, spark, tuple(chosen))
            out.append(pytest.param(case, marks=marks, id=doc.name + ("+spark" if spark else "")))
    return out


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The impressions and ingest demos, once, for the S3 buckets of every file."""
    from logroll import demo

    root = tmp_path_factory.mktemp("docs-demo")
    demo.GENERATORS["impressions"](root / "impressions", days=3, rows=6000)
    demo.GENERATORS["ingest"](root / "ingest", days=1)
    return root


def s3_world(server, data: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Buckets ad-logs and drops as the docs assume them, on a freshly reset server."""
    request = urllib.request.Request(f"{server.endpoint_url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    s3 = server.client()
    s3.create_bucket(Bucket="ad-logs")
    s3.create_bucket(Bucket="drops")
    for path in sorted((data / "impressions").rglob("*.csv")):
        key = path.relative_to(data / "impressions").as_posix()
        s3.upload_file(str(path), "ad-logs", key)
        s3.upload_file(str(path), "ad-logs", f"raw/{key}")
    for path in sorted((data / "ingest").rglob("*.csv")):
        s3.upload_file(str(path), "drops", f"credit/{path.relative_to(data / 'ingest').as_posix()}")
    return {"AWS_ENDPOINT_URL": server.endpoint_url}


def postgres_world(server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The docs' roles and fresh databases; libpq's variables send every docs URL to the server."""
    existing = {r[0] for r in server.execute("SELECT rolname FROM pg_roles")}
    for role in PG_ROLES:
        if role not in existing:
            server.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    for name in PG_DATABASES:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{name}"')
    return {"PGHOSTADDR": "127.0.0.1", "PGPORT": str(server.port), "PGPASSWORD": "docs-test"}


def environment(case: Case, home: Path, request: pytest.FixtureRequest) -> tuple[dict[str, str], str]:
    from s3server import TEST_CREDENTIALS, isolated_aws_env

    env = {k: v for k, v in isolated_aws_env(home).items() if not k.startswith(("LOGROLL_", "PG"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # logroll, python
    env.update(TEST_CREDENTIALS)
    env["LOGROLL_S3_BACKOFF"] = "0.05"
    s3_url = "http://127.0.0.1:9"  # nothing listens: a block that needs S3 but lacks the mark fails
    env["AWS_ENDPOINT_URL"] = s3_url
    if "s3" in case.needs:
        env.update(s3_world(request.getfixturevalue("moto_server"), request.getfixturevalue("demo_data")))
        s3_url = env["AWS_ENDPOINT_URL"]
    env.update({"PGHOSTADDR": "127.0.0.1", "PGPORT": "9"})  # likewise for PostgreSQL
    if "postgres" in case.needs:
        env.update(postgres_world(request.getfixturevalue("postgres")))
    return env, s3_url


def substituted(text: str, s3_url: str) -> str:
    for shown, runs in SUBSTITUTE.items():
        text = text.replace(shown, runs.format(s3=s3_url))
    return text


@pytest.mark.parametrize("case", cases())
def test_runnable_blocks_run(case: Case, tmp_path: Path, request: pytest.FixtureRequest):
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    env, s3_url = environment(case, home, request)
    for block in case.blocks:
        text = substituted(block.text, s3_url)
        argv = (
            [sys.executable, "-c", text]
            if block.lang == "python"
            else ["bash", "-euo", "pipefail", "-c", text]
        )
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        print(f"{block}: {time.monotonic() - started:.1f} s")  # shown with -rA or on a failure
        assert proc.returncode == 0, (
            f"{block} failed (exit {proc.returncode}):\n{text}\n"
            f"--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )
