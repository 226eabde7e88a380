"""A real PostgreSQL server for tests, started from the machine's own binaries.

    from pg import PostgresServer
    with PostgresServer.start() as server:      # initdb + pg_ctl on a temp dir and a free port
        url = server.create_database("t1")      # postgresql://postgres@127.0.0.1:PORT/t1

In pytest, use the fixtures from conftest.py: `postgres` (one server per session) and
`pg_url` (a fresh, empty database per test). No mocks: the server is PostgreSQL itself,
with fsync off because the tests never need durability across a power cut.

initdb refuses to run as root, so when the tests run as root the server runs as the
`postgres` system user (via runuser). Binaries come from $LOGROLL_PG_BIN, else
/usr/local/bin, else PATH, else /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "postgres"


def find_bin(name: str) -> str:
    candidates = []
    if os.environ.get("LOGROLL_PG_BIN"):
        candidates.append(os.path.join(os.environ["LOGROLL_PG_BIN"], name))
    candidates.append(f"/usr/local/bin/{name}")
    which = shutil.which(name)
    if which:
        candidates.append(which)
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    raise RuntimeError(
        f"PostgreSQL's {name} not found: install postgresql (apt-get install postgresql) "
        "or set LOGROLL_PG_BIN to the folder holding initdb and pg_ctl"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throwaway cluster: `url` is its `postgres` database as the superuser (trust auth)."""

    def __init__(self, base: Path, port: int):
        self.base = base
        self.data = base / "data"
        self.port = port
        self.host = "127.0.0.1"

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{name}"

    # ---- lifecycle ------------------------------------------------------------------------
    @classmethod
    def start(cls, attempts: int = 3) -> PostgresServer:
        base = Path(tempfile.mkdtemp(prefix="logroll-pg-"))
        server = cls(base, free_port())
        server._initdb()
        for attempt in range(attempts):
            try:
                server._pg_ctl_start()
                return server
            except RuntimeError:
                if attempt == attempts - 1:
                    server.stop()
                    raise
                server.port = free_port()  # someone took the port between probe and bind
        raise AssertionError("unreachable")

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", SUPERUSER, "--", *argv]

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, SUPERUSER)
        os.chmod(self.base, 0o755)
        subprocess.run(
            self._as_server_user(
                [
                    find_bin("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        proc = subprocess.run(
            self._as_server_user(
                [
                    find_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.base / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            log = (
                (self.base / "server.log").read_text(errors="replace")
                if (self.base / "server.log").exists()
                else ""
            )
            raise RuntimeError(f"pg_ctl start failed: {proc.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_server_user(
                    [find_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
            )
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- databases ------------------------------------------------------------------------
    def execute(self, sql: str, database: str = "postgres") -> list[tuple]:
        """Run one statement in autocommit mode; returns its rows (empty for DDL)."""
        import psycopg

        with psycopg.connect(self.database_url(database), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll until predicate() is truthy; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
