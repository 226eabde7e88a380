"""Shared fixtures: run the real CLI in a subprocess, generate sample data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> CliResult:
    """Run `logroll ARGS` as a user would: a new process, real exit code, stdout and stderr apart."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LOGROLL_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "logroll.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_exact_env(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300
) -> CliResult:
    """The CLI with exactly `env` (run_cli adds this machine's environment): another machine."""
    proc = subprocess.run(
        [sys.executable, "-m", "logroll.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def source_text(path: Path) -> str:
    """An input file as the reference computations read it: decompressed (.gz), without a BOM, and
    without the lines that are not UTF-8 (logroll quarantines those: "invalid UTF-8")."""
    import gzip

    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    data = data.removeprefix(b"\xef\xbb\xbf")
    kept = []
    for line in data.splitlines(keepends=True):
        try:
            kept.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return "".join(kept)


def source_files(raw: Path) -> list[Path]:
    """Every input file of a CSV pipeline under `raw`, compressed ones included."""
    return sorted(p for p in raw.rglob("*") if p.name.endswith((".csv", ".csv.gz")))


@pytest.fixture
def impressions_raw(tmp_path: Path) -> Path:
    """The demo sample: 3 days with every anomaly."""
    from logroll import demo

    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=3, rows=6000)
    return raw


def tree_bytes(root: Path, skip: str = "_logroll") -> dict[str, bytes]:
    """Every output file under root (state and working files excluded) with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and skip not in p.relative_to(root).parts
    }


def tree_mtimes(root: Path, skip: str = "_logroll") -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in sorted(root.rglob("*"))
        if p.is_file() and skip not in p.relative_to(root).parts
    }


# ---- PostgreSQL (tests/pg.py): one real server per session, a fresh database per test ----------
@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server started from the machine's binaries for the whole session."""
    from pg import PostgresServer

    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres, request) -> str:
    """URL of a new empty database on the session server: postgresql://postgres@127.0.0.1:PORT/NAME."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    return postgres.create_database(name)


# ---- S3 (tests/s3server.py): one moto server per session, a fresh bucket per test --------------
@pytest.fixture(scope="session")
def moto_server():
    """`python -m moto.server` on 127.0.0.1 and a free port for the whole session."""
    from s3server import MotoServer

    with MotoServer() as server:
        yield server


@pytest.fixture
def s3_bucket(moto_server, request) -> str:
    """Name of a new empty bucket on the session's moto server."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:6]
    moto_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_proxy(moto_server):
    """A request-counting, fault-injecting proxy in front of the moto server."""
    from s3server import S3Proxy

    with S3Proxy(moto_server.endpoint_url) as proxy:
        yield proxy


@pytest.fixture
def s3_env(tmp_path) -> dict[str, str]:
    """Environment for a CLI subprocess: test credentials, no AWS settings from this machine, a
    HOME of its own (the default catalog of a remote destination lives under ~/.cache/logroll),
    and short retry backoff."""
    from s3server import TEST_CREDENTIALS, isolated_aws_env

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**isolated_aws_env(home), **TEST_CREDENTIALS, "LOGROLL_S3_BACKOFF": "0.05"}
