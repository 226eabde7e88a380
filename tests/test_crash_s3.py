"""Crash safety of a state that lives in an object store (issue 15), on the moto server.

The run is killed with SIGKILL at the points where its work crosses to the bucket: parts
uploaded but not committed, a catalog commit about to go or just gone, an output published but
not recorded, the last commit, the garbage collection. Then it runs again, alternately on the
same machine (whose cache holds a stale working copy and half-done parts, never to be trusted)
and on a fresh one (nothing but the bucket). Either way the outcome must be the uninterrupted
run's: outputs and quarantine byte for byte, the catalog's files, parts and days exactly, every
part the catalog names present in the bucket and none it does not, no run left "running".
"""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from logroll import demo
from s3server import TEST_CREDENTIALS, download_tree, isolated_aws_env, upload_tree
from test_crash import MULTI_DAY, _late_changes, _spread, assert_reports_match, snapshot_of

# Points where a crash leaves the bucket and the catalog in between.
STATE_POINTS = ("stage.parts_uploaded", "state.before_commit", "state.committed", "build.published")
_counter = itertools.count()


@dataclass
class S3Scenario:
    name: str
    bucket: str
    moto: Any
    root: Path
    args: tuple[str, ...]
    pristine: dict[str, bytes] = field(default_factory=dict)  # results/ objects before the command
    expected: dict[str, Any] = field(default_factory=dict)
    points: list[str] = field(default_factory=list)
    last_run: int = 0

    def machine(self) -> tuple[dict[str, str], Path]:
        home = self.root / f"machine-{next(_counter)}"
        home.mkdir(parents=True)
        env = {**isolated_aws_env(home), **TEST_CREDENTIALS, "LOGROLL_S3_BACKOFF": "0.05"}
        env = {k: v for k, v in env.items() if not k.startswith("LOGROLL_") or k == "LOGROLL_S3_BACKOFF"}
        env.pop("XDG_CACHE_HOME", None)
        # Commit after every day, and collect every unreferenced part at once: the most commits
        # to crash between, and orphans the test can see.
        env.update(LOGROLL_COMMIT_INTERVAL="0", LOGROLL_STAGED_RETENTION="0")
        return env, home

    def run(self, machine: tuple[dict[str, str], Path], fault: str | None = None, trace: Path | None = None):
        env, home = machine
        env = dict(env)
        if fault:
            env["LOGROLL_FAULT_AT"] = fault
        if trace:
            env["LOGROLL_FAULT_TRACE"] = str(trace)
        cmd = [sys.executable, "-m", "logroll.cli", "run", "impressions", *self.args, "--threads", "2"]
        cmd += ["--source", f"s3://{self.bucket}/raw", "--dest", f"s3://{self.bucket}/results"]
        cmd += ["--endpoint-url", self.moto.endpoint_url, "--json"]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=home, timeout=180)

    def reset(self) -> None:
        s3 = self.moto.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="results/"):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
        for key, body in self.pristine.items():
            s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def rows(self, query: str) -> list[sqlite3.Row]:
        path = self.root / f"catalog-{next(_counter)}.sqlite"
        body = self.moto.client().get_object(Bucket=self.bucket, Key="results/_logroll/catalog.sqlite")[
            "Body"
        ]
        path.write_bytes(body.read())
        con = sqlite3.connect(path)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    def snapshot(self) -> dict[str, Any]:
        s3 = self.moto.client()
        return snapshot_of(
            self.rows,
            download_tree(s3, self.bucket, "results"),
            download_tree(s3, self.bucket, "results/_logroll/quarantine", skip=""),
        )

    def check(self, what: object) -> None:
        got = self.snapshot()
        for key in ("files", "parts", "totals", "days", "outputs", "quarantine"):
            assert got[key] == self.expected[key], f"{self.name}: {key} differs after a kill at {what}"
        assert_reports_match(self.rows, self.last_run)
        assert [r["status"] for r in self.rows("SELECT status FROM runs") if r["status"] == "running"] == []
        # Every part the catalog names is in the bucket, and no part it does not name.
        s3 = self.moto.client()
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix="results/_logroll/staged/"
            )
            for o in page.get("Contents", [])
        ]
        in_bucket = {k.split("/")[4] for k in keys}
        named = {r["path"].split("/")[2] for r in self.rows("SELECT path FROM parts")}
        assert in_bucket == named, what

    def converge_after(self, fault: str, fresh: bool) -> None:
        self.reset()
        first = self.machine()
        killed = self.run(first, fault=fault)
        assert killed.returncode == -signal.SIGKILL, (fault, killed.returncode, killed.stderr[-2000:])
        done = self.run(self.machine() if fresh else first)
        assert done.returncode == 0, (fault, fresh, done.stderr[-2000:])
        self.check((fault, "fresh machine" if fresh else "same machine"))


def _scenario(name: str, moto: Any, bucket: str, root: Path) -> S3Scenario:
    raw = root / f"{name}-raw"
    demo.GENERATORS["impressions"](raw, days=3, rows=3000)
    s3 = moto.client()
    upload_tree(s3, bucket, raw, prefix="raw")
    s = S3Scenario(name, bucket, moto, root, MULTI_DAY)
    if name == "late":
        assert s.run(s.machine()).returncode == 0
        _late_changes(raw)
        upload_tree(s3, bucket, raw, prefix="raw")
        s.pristine = {
            o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/")
            for o in page.get("Contents", [])
        }
        s.args, s.last_run = ("2021-02-01",), 1
    trace = root / f"{name}-trace.txt"
    clean = s.run(s.machine(), trace=trace)
    assert clean.returncode == 0, clean.stderr
    s.expected, s.points = s.snapshot(), trace.read_text().split()
    s.check("nothing (the reference run)")
    again = s.run(s.machine())
    assert again.returncode == 0 and '"nothing_to_do": true' in again.stdout, again.stderr
    return s


class Scenarios(dict):
    """Each scenario built on first use: the fast test needs one of them."""

    def __init__(self, moto: Any, root: Path):
        super().__init__()
        self.moto, self.root = moto, root

    def __missing__(self, name: str) -> S3Scenario:
        bucket = f"crash-{name}-{next(_counter)}-{self.root.name[-6:].lower().replace('_', '-')}"
        self.moto.client().create_bucket(Bucket=bucket)
        self[name] = _scenario(name, self.moto, bucket, self.root / name)
        return self[name]


@pytest.fixture(scope="module")
def s3_scenarios(moto_server, tmp_path_factory: pytest.TempPathFactory) -> Scenarios:
    return Scenarios(moto_server, tmp_path_factory.mktemp("crash-s3"))


def test_killed_where_work_crosses_to_the_bucket_then_rerun_converges(s3_scenarios: Scenarios) -> None:
    s = s3_scenarios["multiday"]
    for p in (*STATE_POINTS, "build.recorded", "run.before_finish"):
        assert p in s.points, p
    # A commit after staging, one per day built, one at the end.
    assert s.points.count("state.committed") >= 5
    # Parts in the bucket that no commit names yet, then a commit the same machine never saw
    # land: each rerun on the other kind of machine. (The slow test kills at every point.)
    s.converge_after("stage.parts_uploaded:2", fresh=False)
    s.converge_after("state.committed:1", fresh=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["multiday", "late"])
def test_killed_at_each_named_point_then_rerun_converges_on_s3(s3_scenarios: Scenarios, name: str) -> None:
    """Every named point's first and last moment, the two kinds of machine in turn."""
    s = s3_scenarios[name]
    faults = _spread(s.points)
    assert len(faults) >= 15
    for i, fault in enumerate(faults):
        s.converge_after(fault, fresh=bool(i % 2))
