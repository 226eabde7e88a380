"""The state follows the destination (issue 15), on a real S3 API (moto) and a real PostgreSQL.

A "machine" is an empty HOME and work dir of its own: what a container with an empty disk is.
Any machine continues a job exactly where the last one stopped; two runners on one destination
never both commit; identities never collide; status and report only read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3server import TEST_CREDENTIALS, MotoServer, download_tree, isolated_aws_env, upload_tree

from conftest import CliResult, run_exact_env, tree_bytes

FIRST = ("2021-01-29", "--to", "2021-01-30")
LATE = ("2021-01-31",)


def machine(root: Path, name: str, **extra: str) -> tuple[dict[str, str], Path]:
    """(environment, work dir) of a machine with an empty disk: its own HOME, no cache, no AWS settings."""
    home, work = root / name / "home", root / name / "work"
    home.mkdir(parents=True)
    work.mkdir(parents=True)
    env = {**isolated_aws_env(home), **TEST_CREDENTIALS, "LOGROLL_S3_BACKOFF": "0.05", **extra}
    env.pop("XDG_CACHE_HOME", None)
    env.pop("LOGROLL_STATE", None)
    return env, work


def s3_args(endpoint: str, bucket: str, *args: str) -> list[str]:
    return [
        "run", "impressions", *args, "--source", f"s3://{bucket}/raw", "--dest", f"s3://{bucket}/results",
        "--endpoint-url", endpoint, "--initials", "GF", "--json",
    ]  # fmt: skip


def on(env_work: tuple[dict[str, str], Path], *args: str) -> CliResult:
    env, work = env_work
    return run_exact_env(*args, env=env, cwd=work)


def upload_days(client, bucket: str, raw: Path, *days: str) -> None:
    for day in days:
        upload_tree(client, bucket, raw / "2021" / "01" / day, prefix=f"raw/2021/01/{day}")


def local_reference(cli, raw: Path, tmp: Path, steps: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> Path:
    """One long-lived machine on local folders: for each step, copy those day folders in, then run."""
    src, dest = tmp / "ref-raw", tmp / "ref-results"
    for days, args in steps:
        for day in days:
            shutil.copytree(raw / "2021" / "01" / day, src / "2021" / "01" / day)
        res = cli("run", "impressions", *args, "--source", str(src), "--dest", str(dest), "--initials", "GF")
        assert res.code == 0, res.err
    return dest


def results(moto, bucket: str) -> dict[str, bytes]:
    return download_tree(moto.client(), bucket, "results")


def remote_catalog(moto, bucket: str, tmp: Path, query: str) -> list[sqlite3.Row]:
    path = tmp / f"catalog-{time.monotonic_ns()}.sqlite"
    path.write_bytes(
        moto.client().get_object(Bucket=bucket, Key="results/_logroll/catalog.sqlite")["Body"].read()
    )
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


# ---- any machine continues a job -----------------------------------------------------------------
def test_a_fresh_machine_rebuilds_the_day_late_rows_made_dirty(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket
):
    """The issue's case: machine 1 builds 01-29..30; the 01-31 folder arrives with late rows for
    01-30; machine 2, with an empty disk, runs 01-31. 01-30 must be rebuilt with the late rows."""
    s3, endpoint = moto_server.client(), moto_server.endpoint_url
    upload_days(s3, s3_bucket, impressions_raw, "29", "30")
    first = on(machine(tmp_path, "one"), *s3_args(endpoint, s3_bucket, *FIRST))
    assert first.code == 0, first.err
    before = results(moto_server, s3_bucket)["2021/01/30/daily_agg_20210130_GF.csv"]

    upload_days(s3, s3_bucket, impressions_raw, "31")
    second = on(machine(tmp_path, "two"), *s3_args(endpoint, s3_bucket, *LATE))
    assert second.code == 0, second.err
    report = second.json()
    assert report["partitions_built"] == ["2021-01-30", "2021-01-31"]
    assert report["files_staged"] == len(list((impressions_raw / "2021/01/31").iterdir()))
    assert report["state"] == f"s3://{s3_bucket}/results/_logroll/catalog.sqlite"

    reference = local_reference(cli, impressions_raw, tmp_path, [(("29", "30"), FIRST), (("31",), LATE)])
    got = results(moto_server, s3_bucket)
    assert got == tree_bytes(reference)
    assert got["2021/01/30/daily_agg_20210130_GF.csv"] != before  # the late rows are in

    # A third machine finds nothing to do, and the state in the bucket records all three runs.
    third = on(machine(tmp_path, "three"), *s3_args(endpoint, s3_bucket, *LATE))
    assert third.code == 0 and third.json()["nothing_to_do"], third.err
    runs = remote_catalog(moto_server, s3_bucket, tmp_path, "SELECT id, status FROM runs ORDER BY id")
    assert [(r["id"], r["status"]) for r in runs] == [(1, "ok"), (2, "ok"), (3, "ok")]


def test_parts_and_catalog_live_under_the_destination_and_paths_are_relative(
    impressions_raw, tmp_path, moto_server, s3_bucket
):
    s3 = moto_server.client()
    upload_days(s3, s3_bucket, impressions_raw, "29", "30")
    res = on(machine(tmp_path, "one"), *s3_args(moto_server.endpoint_url, s3_bucket, *FIRST))
    assert res.code == 0, res.err
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="results/_logroll/")["Contents"]}
    for row in remote_catalog(moto_server, s3_bucket, tmp_path, "SELECT path FROM parts"):
        assert row["path"].startswith("staged/impressions/"), row["path"]
        folder = "results/_logroll/" + row["path"].rsplit("/", 1)[0] + "/"
        assert any(k.startswith(folder) and k.endswith(".parquet") for k in keys), folder
    ident = json.loads(s3.get_object(Bucket=s3_bucket, Key="results/_logroll/id")["Body"].read())
    host = moto_server.endpoint_url.split("://")[1]
    assert ident["destination"] == f"s3://{host}/{s3_bucket}/results"
    bound = remote_catalog(moto_server, s3_bucket, tmp_path, "SELECT * FROM bindings")
    assert [(b["pipeline"], b["dest_id"]) for b in bound] == [("impressions", ident["id"])]


# ---- two runners on one destination --------------------------------------------------------------
def test_two_concurrent_runs_one_commits_the_other_waits(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket
):
    s3 = moto_server.client()
    keys = upload_tree(s3, s3_bucket, impressions_raw, prefix="raw")
    args = s3_args(moto_server.endpoint_url, s3_bucket, "2021-01-29", "--to", "2021-01-31", "--wait", "120")
    procs = []
    for name in ("one", "two"):
        env, work = machine(tmp_path, name)
        cmd = [sys.executable, "-m", "logroll.cli", *args]
        procs.append(
            subprocess.Popen(
                cmd, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    reports = [json.loads(o[0]) for o in outs]
    # Exactly one staged every file; the other found them staged and nothing to do.
    assert sorted(r["files_staged"] for r in reports) == [0, len(keys)]
    assert sorted(r["nothing_to_do"] for r in reports) == [False, True]

    reference = local_reference(
        cli, impressions_raw, tmp_path, [(("29", "30", "31"), ("2021-01-29", "--to", "2021-01-31"))]
    )
    assert results(moto_server, s3_bucket) == tree_bytes(reference)
    runs = remote_catalog(moto_server, s3_bucket, tmp_path, "SELECT status FROM runs")
    assert [r["status"] for r in runs] == ["ok", "ok"]
    files = remote_catalog(moto_server, s3_bucket, tmp_path, "SELECT count(*) AS n FROM files")
    assert files[0]["n"] == len(keys)


@pytest.mark.slow
def test_a_run_that_lost_its_lease_stops_before_its_next_commit(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_proxy
):
    """Run A is frozen (SIGSTOP) while it holds the lease; its lease expires; run B takes over and
    finishes. A, thawed, must not commit: it stops with one line, and the outputs are B's."""
    s3 = moto_server.client()
    upload_tree(s3, s3_bucket, impressions_raw, prefix="raw")
    fast = {"LOGROLL_LEASE_TTL": "2", "LOGROLL_LEASE_HEARTBEAT": "0.3"}
    s3_proxy.fail(None, mode="delay", delay=0.2, objects_only=True)  # A's downloads are slow
    env_a, work_a = machine(tmp_path, "one", **fast, LOGROLL_FETCH_CONCURRENCY="1")
    cmd = [
        sys.executable,
        "-m",
        "logroll.cli",
        *s3_args(s3_proxy.endpoint_url, s3_bucket, "2021-01-29", "--to", "2021-01-31"),
    ]
    a = subprocess.Popen(
        cmd, env=env_a, cwd=work_a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                lease = json.loads(
                    s3.get_object(Bucket=s3_bucket, Key="results/_logroll/lock")["Body"].read()
                )
                if lease.get("pid") == a.pid and not lease.get("released"):
                    break
            except s3.exceptions.NoSuchKey:
                pass
            time.sleep(0.02)
        else:
            pytest.fail("run A never took the lease")
        os.kill(a.pid, signal.SIGSTOP)
        time.sleep(3)  # past A's lease

        b = on(
            machine(tmp_path, "two", **fast),
            *s3_args(moto_server.endpoint_url, s3_bucket, "2021-01-29", "--to", "2021-01-31"),
        )
        assert b.code == 0, b.err
        assert "took over the lock of impressions" in b.err
    finally:
        os.kill(a.pid, signal.SIGCONT)
    out, err = a.communicate(timeout=120)
    assert a.returncode == 1, err
    assert err.strip().splitlines()[-1] == (
        "logroll: error: impressions: another run took over this destination's state while this one was "
        "stalled; this run stopped before its next commit: run again to continue from the other's"
    )
    assert "Traceback" not in err

    reference = local_reference(
        cli, impressions_raw, tmp_path, [(("29", "30", "31"), ("2021-01-29", "--to", "2021-01-31"))]
    )
    assert results(moto_server, s3_bucket) == tree_bytes(reference)
    runs = remote_catalog(moto_server, s3_bucket, tmp_path, "SELECT status FROM runs ORDER BY id")
    assert runs[-1]["status"] == "ok"
    again = on(
        machine(tmp_path, "three"),
        *s3_args(moto_server.endpoint_url, s3_bucket, "2021-01-29", "--to", "2021-01-31"),
    )
    assert again.code == 0 and again.json()["nothing_to_do"], again.err


def test_a_commit_over_a_newer_catalog_is_refused(tmp_path, moto_server, s3_bucket):
    """The conditional PUT itself: of two copies read from one version, only the first commits."""
    from logroll.catalog import Catalog
    from logroll.catalog.remote import RemoteCatalog
    from logroll.errors import LeaseLost
    from logroll.storage.files import Storage

    opts = {"endpoint_url": moto_server.endpoint_url, "key": "k", "secret": "s"}
    dest = Storage(f"s3://{s3_bucket}/results", opts)
    one, two = RemoteCatalog(dest, tmp_path / "one.sqlite"), RemoteCatalog(dest, tmp_path / "two.sqlite")
    for copy in (one, two):
        assert copy.pull() is False and copy.etag is None
        c = Catalog(str(copy.local))
        c.start_run(copy.local.stem)  # two different catalogs (the same bytes would be no conflict)
        c.close()
    one.commit()  # If-None-Match: * -- the first catalog
    with pytest.raises(LeaseLost, match="another run committed to the state"):
        two.commit()  # also If-None-Match: *, but there is one now
    assert two.pull() is True and two.etag == one.etag
    c = Catalog(str(two.local))
    c.start_run("impressions")
    c.close()
    two.commit()  # If-Match: the version it read
    with pytest.raises(LeaseLost):
        one.commit()  # If-Match: a version that is no longer there


def test_the_lease_is_exclusive_renewed_and_taken_over_when_expired(moto_server, s3_bucket, monkeypatch):
    from logroll.catalog.lease import ObjectLease, holder
    from logroll.errors import LeaseLost, LockedError
    from logroll.storage.files import Storage

    monkeypatch.setenv("LOGROLL_LEASE_TTL", "1")
    monkeypatch.setenv("LOGROLL_LEASE_HEARTBEAT", "60")  # no beats: the test decides
    dest = Storage(
        f"s3://{s3_bucket}/results", {"endpoint_url": moto_server.endpoint_url, "key": "k", "secret": "s"}
    )
    first = ObjectLease(dest, "impressions")
    first.acquire()
    assert holder(dest)["pid"] == os.getpid() and holder(dest)["stale"] is None
    with pytest.raises(LockedError, match="already running on this destination's state"):
        ObjectLease(dest, "impressions").acquire()
    first.renew()  # still ours
    time.sleep(1.2)  # no beat for longer than the TTL
    second = ObjectLease(dest, "impressions")
    second.acquire()  # takes it over, over the ETag it read
    with pytest.raises(LeaseLost):
        first.renew()
    first.release()  # not ours any more: leaves it alone
    assert holder(dest) is not None
    second.release()
    assert holder(dest) is None


# ---- identities ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_endpoints_with_one_bucket_name_never_share_state(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket
):
    """The issue's case: on one machine, a fresh bucket of the same name on another endpoint was
    taken for the first one's ("run 2", wrong counts)."""
    env, work = machine(tmp_path, "shared")
    upload_tree(moto_server.client(), s3_bucket, impressions_raw, prefix="raw")
    first = on((env, work), *s3_args(moto_server.endpoint_url, s3_bucket))
    assert first.code == 0, first.err
    with MotoServer() as other:
        other.client().create_bucket(Bucket=s3_bucket)
        upload_days(other.client(), s3_bucket, impressions_raw, "30")
        res = on((env, work), *s3_args(other.endpoint_url, s3_bucket, "2021-01-30"))
        assert res.code == 0, res.err
        assert res.json()["run_id"] == 1
        assert res.json()["files_staged"] == len(list((impressions_raw / "2021/01/30").iterdir()))
        reference = local_reference(cli, impressions_raw, tmp_path, [(("30",), ("2021-01-30",))])
        assert download_tree(other.client(), s3_bucket, "results") == tree_bytes(reference)
    caches = sorted((Path(env["HOME"]) / ".cache" / "logroll").iterdir())
    assert len(caches) == 2


def test_identity_ignores_spelling_and_never_merges_stores():
    from logroll.urls import identity

    same = [
        "s3://ads/results",
        "s3://ads/results/",
        "s3a://ads/results",
    ]
    assert len({identity(u, "http://127.0.0.1:9000") for u in same}) == 1
    assert identity("s3://ads/results", "http://127.0.0.1:9000") == identity(
        "s3://ads/results", "http://k:s@127.0.0.1:9000/"
    )
    assert identity("s3://ads/results", "http://127.0.0.1:9000") != identity(
        "s3://ads/results", "http://127.0.0.1:9001"
    )
    assert identity("s3://ads/results") != identity("s3://ads/results", "http://127.0.0.1:9000")
    assert identity("s3://ads/results") == identity("s3://ads/results", "https://s3.eu-west-2.amazonaws.com")
    assert identity("s3://ads/results") != identity("s3://ads/other")
    pg = {
        identity("postgresql://etl:pw@db:5432/w"),
        identity("postgresql://etl@db/w?sslmode=require&password=x"),
        identity("postgresql+psycopg://other:p%40ss@db:5432/w"),
    }
    assert pg == {"postgresql://db:5432/w#"}
    assert identity("postgresql://db/w") != identity("postgresql://db:5433/w")
    assert identity("postgresql://db/w#a") != identity("postgresql://db/w#b")


def test_a_state_refuses_to_serve_another_destination(cli, impressions_raw, tmp_path):
    state = tmp_path / "shared.sqlite"
    base = ("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--state", str(state))
    assert cli(*base, "--dest", str(tmp_path / "a")).code == 0
    other = cli(*base, "--dest", str(tmp_path / "b"))
    assert other.code == 2
    assert other.err.strip() == (
        f"logroll: error: the state {state} serves impressions for {tmp_path / 'a'}, not for {tmp_path / 'b'}: "
        "give this destination a --state of its own"
    )
    assert not list((tmp_path / "b").rglob("*.csv"))

    # The same destination emptied and made again: its new id is not the one the state knew.
    shutil.rmtree(tmp_path / "a")
    again = cli(*base, "--dest", str(tmp_path / "a"))
    assert again.code == 2
    assert "was emptied or recreated" in again.err and "put back _logroll/id with id " in again.err
    status = cli("status", "impressions", "--dest", str(tmp_path / "a"), "--state", str(state))
    assert status.code == 2 and "was emptied or recreated" in status.err


# ---- PostgreSQL: the shared state option, and a destination spelled two ways --------------------------
@pytest.mark.slow
def test_a_postgresql_state_continues_on_a_fresh_machine_with_parts_in_the_bucket(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, pg_url
):
    s3, endpoint = moto_server.client(), moto_server.endpoint_url
    upload_days(s3, s3_bucket, impressions_raw, "29", "30")
    first = on(machine(tmp_path, "one"), *s3_args(endpoint, s3_bucket, *FIRST), "--state", pg_url)
    assert first.code == 0, first.err
    upload_days(s3, s3_bucket, impressions_raw, "31")
    second = on(machine(tmp_path, "two"), *s3_args(endpoint, s3_bucket, *LATE), "--state", pg_url)
    assert second.code == 0, second.err
    assert "2021-01-30" in second.json()["partitions_built"]
    reference = local_reference(cli, impressions_raw, tmp_path, [(("29", "30"), FIRST), (("31",), LATE)])
    assert results(moto_server, s3_bucket) == tree_bytes(reference)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="results/_logroll/")["Contents"]}
    assert "results/_logroll/catalog.sqlite" not in keys  # the catalog is PostgreSQL
    assert "results/_logroll/id" in keys and any("/_logroll/staged/impressions/" in k for k in keys)


def test_a_postgresql_destination_with_and_without_its_password_is_one_state(tmp_path, pg_url):
    """The issue's case: the same database with and without a password in the URL gave two
    states (everything staged again, status showing 0 days built)."""
    from weblogs_helpers import SAMPLE

    src = tmp_path / "events"
    src.mkdir()
    shutil.copy(SAMPLE, src / "events.json")
    env_work = machine(tmp_path, "one")
    with_pw = pg_url.replace("postgresql://postgres@", "postgresql://postgres:pw-Xy-123@")
    run = ("run", "weblogs", "--source", str(src), "--json", "--dest")
    first = on(env_work, *run, with_pw)
    assert first.code == 0, first.err
    built = first.json()["partitions_built"]
    assert built
    for dest in (pg_url, pg_url + "?application_name=logroll"):
        again = on(env_work, *run, dest)
        assert again.code == 0 and again.json()["nothing_to_do"], again.err
    status = on(env_work, "status", "weblogs", "--dest", pg_url, "--json")
    assert status.code == 0, status.err
    assert [d["day"] for d in status.json()["days"] if d["status"] == "built"] == built
    assert len(list((Path(env_work[0]["HOME"]) / ".cache" / "logroll").iterdir())) == 1


# ---- read-only commands ----------------------------------------------------------------------------
def test_status_and_report_create_nothing_and_say_what_is_missing(cli, tmp_path, moto_server, s3_bucket):
    missing = tmp_path / "nowhere"
    for args in (("status", "impressions"), ("report", "impressions", "-o", str(tmp_path / "r.html"))):
        res = cli(*args, "--dest", str(missing))
        assert (
            res.code == 2
            and res.err.strip() == f"logroll: error: destination {missing} does not exist: check --dest"
        )
        assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli("status", "impressions", "--dest", str(empty))
    assert res.code == 2 and "no state at" in res.err and res.err.count("\n") == 1
    assert list(empty.iterdir()) == []

    env = machine(tmp_path, "one")
    res = on(
        env,
        "status",
        "impressions",
        "--dest",
        f"s3://{s3_bucket}/results",
        "--endpoint-url",
        moto_server.endpoint_url,
    )
    assert res.code == 2
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: no state at s3://{s3_bucket}/results/_logroll/catalog.sqlite: nothing has run into "
        f"s3://{s3_bucket}/results yet (check --dest)"
    )
    assert "Contents" not in moto_server.client().list_objects_v2(Bucket=s3_bucket)
    assert not (Path(env[0]["HOME"]) / ".cache").exists()


def test_status_reads_a_state_it_cannot_write(cli, impressions_raw, tmp_path):
    """A read-only state file (another user's, or a read-only mount) can be read by status and report."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.xfail("runs status as another user: needs root and setpriv (CI has both)")
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="logroll-ro-", dir="/tmp"))
    try:
        dest = shared / "results"
        assert cli("run", "impressions", "--source", str(impressions_raw), "--dest", str(dest)).code == 0
        for p in [shared, *shared.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        base = [*nobody, sys.executable, "-m", "logroll.cli"]
        st = subprocess.run(
            [*base, "status", "impressions", "--dest", str(dest), "--json"],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert st.returncode == 0, st.stderr
        assert len(json.loads(st.stdout)["days"]) == 4
        out = Path(tempfile.mkdtemp(prefix="logroll-ro-out-", dir="/tmp"))
        out.chmod(0o777)
        rep = subprocess.run(
            [*base, "report", "impressions", "--dest", str(dest), "-o", str(out / "r.html")],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert rep.returncode == 0, rep.stderr
        shutil.rmtree(out)
    finally:
        for p in [shared, *shared.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(shared)
