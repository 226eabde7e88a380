"""Object storage (issue 4): every impressions flow against a real S3 API (moto) on 127.0.0.1.

Outputs read from and written to S3 must be byte for byte those of the same run on local
folders; reruns must not touch the bucket; faults must fail one file, not the run.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from s3server import download_tree, isolated_aws_env, upload_tree

from conftest import CliResult, run_exact_env, source_files, tree_bytes

DAY = "2021-01-30"


def local_run(cli, raw: Path, dest: Path, *extra: str) -> dict:
    res = cli(
        "run", "impressions", *extra, "--source", str(raw), "--dest", str(dest), "--initials", "GF", "--json"
    )
    assert res.code == 0, res.err
    return res.json()


def seed_cmd(cli, bucket: str, endpoint: str, env: dict[str, str], *extra: str) -> CliResult:
    return cli(
        "impressions",
        "--bucket_name",
        bucket,
        "--date_partition",
        DAY,
        "--initials",
        "GF",
        "--transformation_type",
        "aggregate_impressions",
        "--endpoint-url",
        endpoint,
        *extra,
        env=env,
    )


def results(moto, bucket: str, prefix: str = "results") -> dict[str, bytes]:
    return download_tree(moto.client(), bucket, prefix)


def counts(report: dict) -> dict:
    keys = ("rows_read", "rows_valid", "rows_rejected", "rows_in", "rows_unique", "duplicates", "rows_out")
    return {k: report[k] for k in keys}


# ---- the seed-002 command and the full flow -------------------------------------------------------
def test_seed002_command_on_s3_equals_local_run_byte_for_byte(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_env
):
    s3 = moto_server.client()
    upload_tree(s3, s3_bucket, impressions_raw)
    local = local_run(cli, impressions_raw, tmp_path / "local", DAY)

    res = seed_cmd(cli, s3_bucket, moto_server.endpoint_url, s3_env, "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert counts(report) == counts(local)
    assert report["outputs"] == [f"s3://{s3_bucket}/results/2021/01/30/daily_agg_20210130_GF.csv"]
    assert results(moto_server, s3_bucket) == tree_bytes(tmp_path / "local")
    assert results(moto_server, s3_bucket) != {}

    # Rejected rows are kept beside the results in the bucket, not only on this machine.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="results/_logroll/")["Contents"]]
    qkeys = [k for k in keys if k.startswith("results/_logroll/quarantine/")]
    assert qkeys and all(k.startswith("results/_logroll/quarantine/impressions/") for k in qkeys)
    assert sorted(q.removeprefix(f"s3://{s3_bucket}/") for q in report["quarantine"]) == sorted(qkeys)
    rejects = [
        list(csv.reader(io.StringIO(s3.get_object(Bucket=s3_bucket, Key=k)["Body"].read().decode())))
        for k in qkeys
    ]
    assert all(r[0] == ["source_file", "line", "reason", "raw_line"] for r in rejects)
    assert all(row[0].startswith(f"s3://{s3_bucket}/") for r in rejects for row in r[1:])
    assert sum(len(r) - 1 for r in rejects) == report["rows_rejected"]

    # The state lives with the destination: catalog, identity, lease and staged parts, in the bucket.
    assert report["state"] == f"s3://{s3_bucket}/results/_logroll/catalog.sqlite"
    assert {"results/_logroll/catalog.sqlite", "results/_logroll/id", "results/_logroll/lock"} <= set(keys)
    assert any(k.startswith("results/_logroll/staged/impressions/") for k in keys)
    assert set(keys) <= {
        *qkeys,
        "results/_logroll/catalog.sqlite",
        "results/_logroll/id",
        "results/_logroll/lock",
    } | {k for k in keys if k.startswith("results/_logroll/staged/impressions/")}
    assert f"state: s3://{s3_bucket}/results/_logroll/catalog.sqlite" in res.err

    # The spool is gone: every downloaded copy was removed; the cache is under ~/.cache/logroll.
    caches = list((Path(s3_env["HOME"]) / ".cache" / "logroll").iterdir())
    assert len(caches) == 1
    spool = caches[0] / "spool"
    assert not spool.exists() or not any(p.is_file() for p in spool.rglob("*"))


def test_run_command_with_s3_source_and_dest(cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_env):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw, prefix="raw")
    local_run(cli, impressions_raw, tmp_path / "local", "2021-01-29", "--to", "2021-01-31")
    res = cli(
        "run", "impressions", "2021-01-29", "--to", "2021-01-31",
        "--source", f"s3://{s3_bucket}/raw", "--dest", f"s3://{s3_bucket}/results",
        "--initials", "GF", "--endpoint-url", moto_server.endpoint_url, env=s3_env,
    )  # fmt: skip
    assert res.code == 0, res.err
    assert results(moto_server, s3_bucket) == tree_bytes(tmp_path / "local")


def test_endpoint_from_aws_endpoint_url(cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_env):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    env = {**s3_env, "AWS_ENDPOINT_URL": moto_server.endpoint_url}
    res = cli("impressions", "--bucket_name", s3_bucket, "--date_partition", DAY, env=env)
    assert res.code == 0, res.err
    assert f"endpoint {moto_server.endpoint_url}" in res.err
    assert list(results(moto_server, s3_bucket)) == ["2021/01/30/daily_agg_20210130_Guy_Fawkes.csv"]


def test_mixed_local_to_s3_and_s3_to_local(cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_env):
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    endpoint = ["--endpoint-url", moto_server.endpoint_url, "--initials", "GF"]

    up = cli(
        "run", "impressions", DAY, "--source", str(impressions_raw), "--dest", f"s3://{s3_bucket}/out", *endpoint,
        env=s3_env,
    )  # fmt: skip
    assert up.code == 0, up.err
    assert results(moto_server, s3_bucket, "out") == tree_bytes(tmp_path / "local")

    upload_tree(moto_server.client(), s3_bucket, impressions_raw, prefix="raw")
    down_dest = tmp_path / "down"
    down = cli(
        "run", "impressions", DAY, "--source", f"s3://{s3_bucket}/raw", "--dest", str(down_dest), *endpoint,
        env=s3_env,
    )  # fmt: skip
    assert down.code == 0, down.err
    assert tree_bytes(down_dest) == tree_bytes(tmp_path / "local")
    # A local destination keeps its catalog and quarantine under DEST/_logroll, as without S3.
    assert (down_dest / "_logroll" / "catalog.sqlite").exists()
    assert list((down_dest / "_logroll" / "quarantine").rglob("*.rejects.csv"))


# ---- idempotence and changes between runs ------------------------------------------------------
def test_rerun_reads_and_writes_no_object(cli, impressions_raw, moto_server, s3_bucket, s3_proxy, s3_env):
    s3 = moto_server.client()
    upload_tree(s3, s3_bucket, impressions_raw)
    first = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env)
    assert first.code == 0, first.err
    assert s3_proxy.count("PUT") >= 1
    before = results(moto_server, s3_bucket)
    etags = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}

    s3_proxy.clear()
    again = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env)
    assert again.code == 0, again.err
    assert "nothing to do" in again.out
    assert s3_proxy.count("POST") == 0 and s3_proxy.count("DELETE") == 0
    assert s3_proxy.count("PUT", state=False) == 0  # no output, part or quarantine written
    assert s3_proxy.count(objects_only=True, state=False) == 0  # not one source object downloaded
    assert s3_proxy.count(listing=True) >= 1  # it did look
    # What it wrote is the state's: its lease and the catalog with this run's record.
    puts = {r.path.split("?")[0].rsplit("/_logroll/", 1)[1] for r in s3_proxy.seen if r.method == "PUT"}
    assert puts == {"lock", "catalog.sqlite"}

    # The same bytes uploaded again (same ETag) are the same version: still nothing to do.
    key = "2021/01/30/impressions_20210130_0.csv"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=(impressions_raw / key).read_bytes())
    s3_proxy.clear()
    third = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env)
    assert third.code == 0 and "nothing to do" in third.out, third.err
    assert s3_proxy.count("PUT", state=False) == 0 and s3_proxy.count(objects_only=True, state=False) == 0
    assert results(moto_server, s3_bucket) == before
    outside = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {k: v for k, v in outside.items() if "/_logroll/" not in k} == {
        k: v for k, v in etags.items() if "/_logroll/" not in k
    }


def test_rebuild_with_identical_bytes_puts_nothing(
    cli, impressions_raw, moto_server, s3_bucket, s3_proxy, s3_env
):
    """A new file whose rows are all duplicates rebuilds the day, but the result's bytes are the
    same: no PUT."""
    s3 = moto_server.client()
    upload_tree(s3, s3_bucket, impressions_raw)
    assert seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env).code == 0
    key = "2021/01/30/impressions_20210130_0.csv"
    s3.put_object(Bucket=s3_bucket, Key="2021/01/30/resent.csv", Body=(impressions_raw / key).read_bytes())
    s3_proxy.clear()
    res = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env, "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert report["files_staged"] == 1 and report["partitions_built"] == [DAY]
    assert report["outputs_written"] == []
    puts = [r.path for r in s3_proxy.seen if r.method == "PUT"]
    assert puts and all("/results/_logroll/" in p for p in puts)  # the new file's parts, the state
    assert not any("/results/_logroll/quarantine/" in p for p in puts)

    # Another machine (an empty home) continues from the state in the bucket: nothing to do, and
    # nothing but the state's lease and catalog is written.
    other = {**s3_env, "HOME": str(Path(s3_env["HOME"]).parent / "other-machine")}
    s3_proxy.clear()
    fresh = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, other, "--json")
    assert fresh.code == 0, fresh.err
    assert fresh.json()["nothing_to_do"] and fresh.json()["outputs_written"] == []
    puts = {r.path.split("?")[0].rsplit("/_logroll/", 1)[-1] for r in s3_proxy.seen if r.method == "PUT"}
    assert puts == {"lock", "catalog.sqlite"}


def test_modified_object_replaces_its_contribution(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_proxy, s3_env
):
    s3 = moto_server.client()
    upload_tree(s3, s3_bucket, impressions_raw)
    assert seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env).code == 0
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    before = results(moto_server, s3_bucket)

    # The upstream re-sends one file with half its rows: its old rows must leave the result.
    # (_2 has no twin: the rows of _0 are also in _0_retry, so cutting _0 would change nothing.)
    key = "2021/01/30/impressions_20210130_2.csv"
    lines = (impressions_raw / key).read_text().splitlines(keepends=True)
    (impressions_raw / key).write_text("".join(lines[: len(lines) // 2]))
    s3.put_object(Bucket=s3_bucket, Key=key, Body=(impressions_raw / key).read_bytes())

    s3_proxy.clear()
    res = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env, "--json")
    assert res.code == 0, res.err
    assert res.json()["files_staged"] == 1
    assert s3_proxy.count(objects_only=True, state=False) == 1  # only the changed object was downloaded
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    after = results(moto_server, s3_bucket)
    assert after == tree_bytes(tmp_path / "local")
    assert after != before


def test_objects_uploaded_between_runs_are_picked_up_once(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_env
):
    s3 = moto_server.client()
    upload_tree(s3, s3_bucket, impressions_raw)
    assert seed_cmd(cli, s3_bucket, moto_server.endpoint_url, s3_env).code == 0

    extra = "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n" + "".join(
        f"late-{i},2021-01-30 {i % 24:02d}:15:00,{900 + i % 3},u{i},mobile\n" for i in range(50)
    )
    (impressions_raw / "2021/01/30/arrived_later.csv").write_text(extra)
    s3.put_object(Bucket=s3_bucket, Key="2021/01/30/arrived_later.csv", Body=extra.encode())

    res = seed_cmd(cli, s3_bucket, moto_server.endpoint_url, s3_env, "--json")
    assert res.code == 0, res.err
    assert res.json()["files_staged"] == 1
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    assert results(moto_server, s3_bucket) == tree_bytes(tmp_path / "local")
    assert b"\n900," in results(moto_server, s3_bucket)["2021/01/30/daily_agg_20210130_GF.csv"]
    again = seed_cmd(cli, s3_bucket, moto_server.endpoint_url, s3_env)
    assert "nothing to do" in again.out


def test_results_and_logroll_objects_are_never_input(cli, impressions_raw, moto_server, s3_bucket, s3_env):
    """Raw at the bucket root, results/ below it (seed 002): a catch-up run over the whole
    bucket must not take its own results or quarantine for raw files."""
    s3 = moto_server.client()
    raw_keys = upload_tree(s3, s3_bucket, impressions_raw)
    args = (
        "run", "impressions", "--source", f"s3://{s3_bucket}", "--dest", f"s3://{s3_bucket}/results",
        "--endpoint-url", moto_server.endpoint_url, "--json",
    )  # fmt: skip
    first = cli(*args, env=s3_env)
    assert first.code == 0, first.err
    assert first.json()["files_seen"] == len(raw_keys)
    assert len(first.json()["outputs"]) == 4  # the 3 folders' days and the early rows' next day
    second = cli(*args, env=s3_env)
    assert second.code == 0, second.err
    assert second.json()["files_seen"] == len(raw_keys) and second.json()["nothing_to_do"]


def test_status_of_a_remote_destination_names_its_state(cli, impressions_raw, moto_server, s3_bucket, s3_env):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    assert seed_cmd(cli, s3_bucket, moto_server.endpoint_url, s3_env).code == 0
    res = cli(
        "status", "impressions", "--dest", f"s3://{s3_bucket}/results",
        "--endpoint-url", moto_server.endpoint_url, "--json", env=s3_env,
    )  # fmt: skip
    assert res.code == 0, res.err
    info = res.json()
    assert info["state"] == f"s3://{s3_bucket}/results/_logroll/catalog.sqlite"
    assert DAY in [d["day"] for d in info["days"]]
    assert info["files"]["staged"] == len(source_files(impressions_raw))


# ---- faults -------------------------------------------------------------------------------------
def test_throttling_and_5xx_are_retried(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_proxy, s3_env
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    s3_proxy.fail(2, status=503, code="SlowDown")  # the very first requests: the bucket check
    s3_proxy.fail(3, status=500, code="InternalError", objects_only=True)
    s3_proxy.fail(1, status=503, code="ServiceUnavailable", method="PUT")
    res = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env, "--json")
    assert res.code == 0, res.err
    assert res.json()["files_failed"] == []
    assert res.err.count("retrying") >= 6
    assert "SlowDown" in res.err and "InternalError" in res.err
    assert results(moto_server, s3_bucket) == tree_bytes(tmp_path / "local")


def test_connection_resets_and_truncated_bodies_are_retried(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_proxy, s3_env
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    reset, cut = "2021/01/30/impressions_20210130_0.csv", "2021/01/30/impressions_20210130_1.csv"
    s3_proxy.fail(3, mode="reset", path_contains=reset)
    s3_proxy.fail(2, mode="truncate", path_contains=cut)
    s3_proxy.fail(3, mode="reset", method="PUT")
    res = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env, "--json")
    assert res.code == 0, res.err
    assert res.json()["files_failed"] == []
    assert res.json()["files_staged"] == len(source_files(impressions_raw))
    # Every fault was met and the request made again until it went through.
    assert sum(1 for r in s3_proxy.seen if reset in r.path) == 4
    assert sum(1 for r in s3_proxy.seen if cut in r.path) == 3
    assert "Response payload is not completed" in res.err
    assert results(moto_server, s3_bucket) == tree_bytes(tmp_path / "local")


def test_a_file_that_keeps_failing_fails_alone_and_the_next_run_takes_it(
    cli, impressions_raw, tmp_path, moto_server, s3_bucket, s3_proxy, s3_env
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    local_run(cli, impressions_raw, tmp_path / "local", DAY)
    bad = "2021/01/30/impressions_20210130_1.csv"
    s3_proxy.fail(None, status=503, code="SlowDown", path_contains=bad, method="GET")
    res = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env, "--json")
    assert res.code == 1, res.err
    report = res.json()
    assert [f["uri"] for f in report["files_failed"]] == [f"s3://{s3_bucket}/{bad}"]
    assert "after 5 attempts" in report["files_failed"][0]["error"]
    assert "SlowDown" in report["files_failed"][0]["error"]
    assert report["files_staged"] == report["files_seen"] - 1
    assert f"FAILED s3://{s3_bucket}/{bad}" in seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env).out

    s3_proxy.clear()  # the store recovers
    again = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, s3_env, "--json")
    assert again.code == 0, again.err
    assert again.json()["files_staged"] == 1
    assert s3_proxy.count(objects_only=True, state=False) == 1
    assert results(moto_server, s3_bucket) == tree_bytes(tmp_path / "local")


def test_downloads_run_ahead_in_parallel_within_the_bound(
    cli, impressions_raw, moto_server, s3_bucket, s3_proxy, s3_env
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    s3_proxy.fail(None, mode="delay", delay=0.3, objects_only=True)
    res = seed_cmd(cli, s3_bucket, s3_proxy.endpoint_url, {**s3_env, "LOGROLL_FETCH_CONCURRENCY": "3"})
    assert res.code == 0, res.err
    assert s3_proxy.count(objects_only=True, state=False) == len(source_files(impressions_raw))
    assert s3_proxy.max_in_flight["object-get"] == 3


# ---- errors a user can act on -----------------------------------------------------------------
def test_missing_bucket_is_one_line_exit_2(cli, moto_server, s3_env):
    res = cli("impressions", "--bucket_name", "no-such-bucket-here", "--date_partition", DAY,
              "--endpoint-url", moto_server.endpoint_url, env=s3_env)  # fmt: skip
    assert res.code == 2
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: bucket 'no-such-bucket-here' does not exist at {moto_server.endpoint_url}: "
        "check the bucket name"
    )
    assert "Traceback" not in res.err


def test_missing_destination_bucket_fails_before_any_work(
    cli, impressions_raw, moto_server, s3_bucket, s3_env
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    res = cli(
        "run", "impressions", DAY, "--source", f"s3://{s3_bucket}", "--dest", "s3://no-such-dest-bucket/results",
        "--endpoint-url", moto_server.endpoint_url, env=s3_env,
    )  # fmt: skip
    assert res.code == 2
    assert "bucket 'no-such-dest-bucket' does not exist" in res.err
    assert "staged" not in res.err


def test_bad_endpoint_is_one_line_exit_2(cli, s3_env):
    from s3server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    res = cli(
        "impressions", "--bucket_name", "logs", "--date_partition", DAY, "--endpoint-url", url, env=s3_env
    )
    assert res.code == 2
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: cannot connect to the S3 endpoint {url}: check --endpoint-url / AWS_ENDPOINT_URL and the network"
    )
    bad = cli("impressions", "--bucket_name", "logs", "--date_partition", DAY, "--endpoint-url", "localhost:9000",
              env=s3_env)  # fmt: skip
    assert bad.code == 2 and "must start with http:// or https://" in bad.err


def test_missing_credentials_is_one_line_exit_2(moto_server, s3_bucket, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = isolated_aws_env(home)
    res = run_exact_env(
        "impressions", "--bucket_name", s3_bucket, "--date_partition", DAY,
        "--endpoint-url", moto_server.endpoint_url, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert res.code == 2, res.err
    assert (
        res.err.strip()
        .splitlines()[-1]
        .startswith(f"logroll: error: no AWS credentials found for s3://{s3_bucket}: set AWS_ACCESS_KEY_ID")
    )


def test_no_files_for_the_day_is_exit_1(cli, moto_server, s3_bucket, s3_env):
    res = seed_cmd(cli, s3_bucket, moto_server.endpoint_url, s3_env)
    assert res.code == 1
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: no input files for {DAY} (looked in s3://{s3_bucket}/2021/01/30) and nothing staged "
        "for it: check the date and --source"
    )


def test_wrong_transformation_lists_the_registered_ones(cli, s3_env):
    res = cli("impressions", "--bucket_name", "logs", "--date_partition", DAY,
              "--transformation_type", "other", env=s3_env)  # fmt: skip
    assert res.code == 2
    assert res.err.strip() == (
        "logroll: error: unknown --transformation_type 'other' for impressions: "
        "choose one of aggregate_impressions, daily_agg"
    )


def test_bad_bucket_name_is_exit_2(cli, s3_env):
    res = cli("impressions", "--bucket_name", "Not_A_Bucket", "--date_partition", DAY, env=s3_env)
    assert res.code == 2 and "bucket name 'Not_A_Bucket' is not valid" in res.err


# ---- config.yaml (seed 002) and secrets ---------------------------------------------------------
SECRET = "s3cr3t-Do-Not-Print-9f8e7d"


def test_config_yaml_in_the_current_folder_is_used_and_secrets_never_show(
    impressions_raw, tmp_path, moto_server, s3_bucket
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw)
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.yaml").write_text(
        f"aws:\n  access_key_id: AKIACONFIGFILE\n  secret_access_key: {SECRET}\n  region: us-east-1\n"
        f"  endpoint_url: {moto_server.endpoint_url}\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = isolated_aws_env(home)  # no credentials in the environment: they must come from the file
    res = run_exact_env(
        "-v", "impressions", "--bucket_name", s3_bucket, "--date_partition", DAY, "--json", env=env, cwd=work
    )
    assert res.code == 0, res.err
    assert f"credentials from {work / 'config.yaml'} (aws:)" in res.err
    catalog = moto_server.client().get_object(Bucket=s3_bucket, Key="results/_logroll/catalog.sqlite")
    again = run_exact_env("status", "impressions", "--dest", f"s3://{s3_bucket}/results", env=env, cwd=work)
    assert again.code == 0, again.err
    for text in (res.out, res.err, again.out, again.err, catalog["Body"].read().decode("utf-8", "replace")):
        assert SECRET not in text
    assert not any(SECRET.encode() in p.read_bytes() for p in home.rglob("*") if p.is_file())


def test_bad_config_yaml_names_keys_but_never_values(tmp_path, s3_env):
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.yaml").write_text(f"aws:\n  access_key: AKIA\n  secret_key: {SECRET}\n")
    res = run_exact_env("impressions", "--bucket_name", "logs", "--date_partition", DAY, env=s3_env, cwd=work)
    assert res.code == 2
    assert "unknown key(s) under aws: access_key, secret_key" in res.err
    assert SECRET not in res.err + res.out
    missing = run_exact_env(
        "impressions", "--bucket_name", "logs", "--date_partition", DAY, "--aws-config", str(tmp_path / "nope.yaml"),
        env=s3_env, cwd=work,
    )  # fmt: skip
    assert missing.code == 2 and "does not exist" in missing.err


def test_a_local_run_ignores_config_yaml(cli, impressions_raw, tmp_path):
    """config.yaml belongs to S3 runs only: a broken one never stops a local run."""
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.yaml").write_text("aws: [not, a, mapping]\n")
    res = cli(
        "run", "impressions", DAY, "--source", str(impressions_raw), "--dest", str(tmp_path / "out"), cwd=work
    )
    assert res.code == 0, res.err


# ---- credentials checked by the server ---------------------------------------------------------
@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """A moto server of its own that checks signatures and IAM policies: a user allowed to use
    one bucket, and a user allowed nothing."""
    from s3server import MotoServer

    with MotoServer() as server:
        iam = server.client("iam")
        s3 = server.client()
        bucket = "auth-logs"
        s3.create_bucket(Bucket=bucket)
        raw = tmp_path_factory.mktemp("auth") / "raw"
        from logroll import demo

        demo.GENERATORS["impressions"](raw, days=1, rows=300, start=DAY)
        upload_tree(s3, bucket, raw)
        users = {}
        for name, policy in (
            ("reader", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
            ("nobody", {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}),
        ):
            iam.create_user(UserName=name)
            iam.put_user_policy(
                UserName=name,
                PolicyName="p",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [policy]}),
            )
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = (key["AccessKeyId"], key["SecretAccessKey"])
        server.require_auth()
        yield server, bucket, users


def _auth_env(tmp_path: Path, key: str, secret: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        **isolated_aws_env(home),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "LOGROLL_S3_BACKOFF": "0.05",
    }


def test_valid_credentials_pass_the_server_check(auth_server, tmp_path):
    server, bucket, users = auth_server
    res = run_exact_env(
        "impressions", "--bucket_name", bucket, "--date_partition", DAY, "--endpoint-url", server.endpoint_url,
        env=_auth_env(tmp_path, *users["reader"]),
    )  # fmt: skip
    assert res.code == 0, res.err


def test_wrong_secret_is_one_line_exit_2(auth_server, tmp_path):
    server, bucket, users = auth_server
    res = run_exact_env(
        "impressions", "--bucket_name", bucket, "--date_partition", DAY, "--endpoint-url", server.endpoint_url,
        env=_auth_env(tmp_path, users["reader"][0], SECRET),
    )  # fmt: skip
    assert res.code == 2, res.err
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: the AWS secret key does not match the access key at {server.endpoint_url}: "
        "check AWS_SECRET_ACCESS_KEY, AWS_PROFILE or config.yaml"
    )
    assert SECRET not in res.err


def test_unknown_access_key_is_one_line_exit_2(auth_server, tmp_path):
    server, bucket, _ = auth_server
    res = run_exact_env(
        "impressions", "--bucket_name", bucket, "--date_partition", DAY, "--endpoint-url", server.endpoint_url,
        env=_auth_env(tmp_path, "AKIAUNKNOWNKEY000000", "whatever"),
    )  # fmt: skip
    assert res.code == 2, res.err
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: the AWS access key is not known to {server.endpoint_url}: "
        "check AWS_ACCESS_KEY_ID, AWS_PROFILE or config.yaml"
    )


def test_access_denied_is_one_line_exit_2(auth_server, tmp_path):
    server, bucket, users = auth_server
    res = run_exact_env(
        "impressions", "--bucket_name", bucket, "--date_partition", DAY, "--endpoint-url", server.endpoint_url,
        env=_auth_env(tmp_path, *users["nobody"]),
    )  # fmt: skip
    assert res.code == 2, res.err
    assert res.err.strip().splitlines()[-1] == (
        f"logroll: error: access denied to s3://{bucket}: the credentials lack permission (s3:ListBucket, "
        "s3:GetObject, s3:PutObject); check the IAM or bucket policy"
    )


def test_credentials_from_an_aws_profile(auth_server, tmp_path):
    server, bucket, users = auth_server
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    key, secret = users["reader"]
    (home / ".aws" / "credentials").write_text(
        f"[ci]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        f"[stale]\naws_access_key_id = {key}\naws_secret_access_key = {SECRET}\n"
    )
    env = {
        **isolated_aws_env(home),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.endpoint_url,
    }
    args = ("impressions", "--bucket_name", bucket, "--date_partition", DAY)
    ok = run_exact_env(*args, env={**env, "AWS_PROFILE": "ci"})
    assert ok.code == 0, ok.err
    stale = run_exact_env(*args, env={**env, "AWS_PROFILE": "stale"})
    assert stale.code == 2 and "the AWS secret key does not match" in stale.err
