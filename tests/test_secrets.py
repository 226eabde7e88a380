"""Secrets never printed (issue 15): a secret planted in each URL form, then every output channel
grepped for it: stdout, stderr (text and JSON logs), --json, status, the HTML report, the catalog's
tables, the crontab line, ingest reports, error messages and every file left on the machine.

The PostgreSQL server of the tests trusts every local connection, so a URL carrying any password
connects: the secrets below reach every code path a real password would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from logroll.demo.ingest import credit
from logroll.urls import redact_url, scrub
from s3server import TEST_CREDENTIALS, isolated_aws_env, upload_tree

from conftest import CliResult, run_exact_env

USERINFO = "uiSecret-1111"
QUERY = "qpSecret-2222"
RAW_AT = "atSecret-3333"  # the tail of a password holding a raw @
SSLKEY = "sslkeySecret-4444"
ENDPOINT = "epSecret-5555"
PLANTED = (USERINFO, QUERY, RAW_AT, SSLKEY, ENDPOINT)


def state_urls(pg_url: str) -> dict[str, str]:
    """One PostgreSQL state URL per way a secret gets into it."""
    host = pg_url.split("@", 1)[1]  # 127.0.0.1:PORT/DB
    return {
        "userinfo": f"postgresql://postgres:{USERINFO}@{host}",
        "query": f"postgresql://postgres@{host}?password={QUERY}&application_name=x",
        "sslkey": f"postgresql://postgres@{host}?sslkey=/nowhere/{SSLKEY}.key",
    }


def assert_clean(*texts: str, where: str) -> None:
    for text in texts:
        for secret in PLANTED:
            assert secret not in text, (
                f"{secret} printed in {where}: {text[max(0, text.find(secret) - 200) :][:400]}"
            )


def assert_files_clean(*roots: Path) -> None:
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                for secret in PLANTED:
                    assert secret.encode() not in data, f"{secret} written to {p}"


def pg_dump_text(url: str) -> str:
    """Every row of every table of a database, as text."""
    out = []
    with psycopg.connect(url) as con:
        tables = [r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for t in tables:
            out += [repr(row) for row in con.execute(f'SELECT * FROM "{t}"')]
    return "\n".join(out)


@pytest.fixture
def machine(tmp_path: Path) -> tuple[dict[str, str], Path]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {**isolated_aws_env(home), **TEST_CREDENTIALS, "LOGROLL_S3_BACKOFF": "0.05"}
    env.pop("XDG_CACHE_HOME", None)
    return env, work


def run(machine: tuple[dict[str, str], Path], *args: str) -> CliResult:
    env, work = machine
    res = run_exact_env(*args, env=env, cwd=work)
    assert_clean(res.out, res.err, where=f"the output of logroll {' '.join(args[:2])}")
    return res


def test_redact_url_hides_every_form():
    assert redact_url(f"postgresql://u:{USERINFO}@h/db") == "postgresql://u:***@h/db"
    assert redact_url(f"postgresql://u:raw@{RAW_AT}@h:5432/db#t") == "postgresql://u:***@h:5432/db#t"
    assert redact_url(f"postgresql://h/db?sslmode=require&password={QUERY}") == (
        "postgresql://h/db?sslmode=require&password=***"
    )
    assert redact_url(f"postgresql://h/db?sslkey=/k/{SSLKEY}&PGPASSWORD=x&aws_secret_access_key=y") == (
        "postgresql://h/db?sslkey=***&PGPASSWORD=***&aws_secret_access_key=***"
    )
    assert redact_url("https://h/x?X-Amz-Signature=abc&X-Amz-Credential=def&token=t&a=1") == (
        "https://h/x?X-Amz-Signature=***&X-Amz-Credential=***&token=***&a=1"
    )
    assert redact_url(f"http://AKIA:{ENDPOINT}@127.0.0.1:9000") == "http://AKIA:***@127.0.0.1:9000"
    assert redact_url(f"postgresql://u:pa/ss{RAW_AT}@h/db") == "postgresql://***"  # cut short by a raw /
    assert redact_url("/a/plain/path") == "/a/plain/path"
    # a URL with nothing to hide comes back as written: duckdb:////abs (an absolute path) once
    # came back as duckdb://abs, a host, in status and reports
    for plain in (
        "duckdb:////abs/t.duckdb#t",
        "duckdb:///rel.duckdb#t",
        "parquet:///rel/",
        "sqlite:////s.sqlite",
    ):
        assert redact_url(plain) == plain
    # A library that echoes what it was given: the exact strings redact_url removed are masked.
    assert scrub(f'could not translate host name "{RAW_AT}@h" to address') == (
        'could not translate host name "***@h" to address'
    )


@pytest.mark.slow  # about a minute: six commands for each of three URLs
def test_no_channel_of_a_run_shows_a_postgresql_state_secret(impressions_raw, tmp_path, pg_url, machine):
    dest = tmp_path / "results"
    for name, state in state_urls(pg_url).items():
        base = ("--dest", str(dest), "--state", state)
        res = run(machine, "-v", "run", "impressions", "--source", str(impressions_raw), *base, "--json")
        assert res.code == 0, (name, res.err)
        assert res.json()["state"] == redact_url(state)
        logs = run(
            machine, "run", "impressions", "--source", str(impressions_raw), *base, "--log-format", "json"
        )
        assert logs.code == 0, (name, logs.err)
        assert run(machine, "status", "impressions", *base).code == 0
        status = run(machine, "status", "impressions", *base, "--json")
        assert status.code == 0 and status.json()["state"] == redact_url(state), (name, status.err)
        html = tmp_path / f"{name}.html"
        assert run(machine, "report", "impressions", *base, "-o", str(html)).code == 0
        assert_clean(html.read_text(), where=f"the HTML report ({name})")
        cron = run(machine, "schedule", "impressions", "--cron", "0 23 * * *", "--source", str(impressions_raw),
                   *base, "--print-crontab")  # fmt: skip
        assert cron.code == 0 and "LOGROLL_STATE=..." in cron.err, (name, cron.err)
    assert_clean(pg_dump_text(pg_url), where="the catalog's tables (runs, bindings, files, ...)")
    assert_files_clean(tmp_path)


def test_errors_that_echo_the_url_show_no_secret(impressions_raw, tmp_path, pg_url, machine):
    host = pg_url.split("@", 1)[1].split("/", 1)[0]
    port = host.rsplit(":", 1)[1]
    dead = pg_url.replace(f":{port}/", ":1/")  # nothing listens there: the driver's message echoes the URL
    cases = {
        "raw @ in the password": f"postgresql://postgres:raw@{RAW_AT}@{host}/db",
        "wrong port, password": dead.replace("postgres@", f"postgres:{USERINFO}@"),
        "wrong port, ?password=": dead + f"?password={QUERY}",
        "bad option": f"postgresql://postgres:{USERINFO}@{host}/db?no_such_token={QUERY}",
        "not a URL": f"postgresql://postgres:{USERINFO}@[{host}/db",
    }
    read = ("status", "impressions")
    for what, state in cases.items():
        cmds = [("run", "impressions", "--source", str(impressions_raw))] + ([read] if "?" in state else [])
        for cmd in cmds:
            res = run(machine, *cmd, "--dest", str(tmp_path / "r"), "--state", state)
            assert res.code in (1, 2), (what, res.out, res.err)
            assert res.err.count("\n") <= 2 and "Traceback" not in res.err, (what, res.err)


def test_endpoint_credentials_are_used_and_never_shown(
    impressions_raw, tmp_path, moto_server, s3_bucket, machine
):
    upload_tree(moto_server.client(), s3_bucket, impressions_raw, prefix="raw")
    port = moto_server.endpoint_url.rsplit(":", 1)[1]
    endpoint = f"http://AKIAENDPOINT:{ENDPOINT}@127.0.0.1:{port}"
    env, work = machine
    bare = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    where = ("--dest", f"s3://{s3_bucket}/results", "--endpoint-url", endpoint)
    res = run((bare, work), "-v", "run", "impressions", "--source", f"s3://{s3_bucket}/raw", *where, "--json")
    assert res.code == 0, res.err
    assert "credentials from the --endpoint-url" in res.err
    assert f"endpoint http://127.0.0.1:{port}" in res.err  # the pair became credentials
    assert run((bare, work), "status", "impressions", *where).code == 0
    html = tmp_path / "r.html"
    assert run((bare, work), "report", "impressions", *where, "-o", str(html)).code == 0
    assert_clean(html.read_text(), where="the HTML report")
    cron = run((bare, work), "schedule", "impressions", "--cron", "0 23 * * *", "--source", f"s3://{s3_bucket}/raw",
               *where, "--print-crontab")  # fmt: skip
    assert cron.code == 0 and f"--endpoint-url http://127.0.0.1:{port}" in cron.out
    assert "AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=..." in cron.err
    catalog = moto_server.client().get_object(Bucket=s3_bucket, Key="results/_logroll/catalog.sqlite")
    assert_clean(catalog["Body"].read().decode("utf-8", "replace"), where="the catalog in the bucket")
    assert_files_clean(tmp_path)


def test_ingest_reports_show_no_secret(tmp_path, pg_url, machine):
    src = tmp_path / "drops"
    credit(src, days=1, files_per_day=2, rows=100)
    for name, state in state_urls(pg_url).items():
        dest = state.split("?")[0] + "#credit" if name != "query" else pg_url + "#credit"
        res = run(machine, "run", "ingest", "--source", str(src), "--dest", dest, "--state", state, "--json")
        assert res.code == 0, (name, res.err)
        status = run(machine, "status", "ingest", "--state", state, "--dest", dest, "--json")
        assert status.code == 0, (name, status.err)
        assert "***" in status.out or name == "sslkey"
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        (tmp_path / "work").mkdir()
    assert_clean(pg_dump_text(pg_url), where="the ingest tables")
    assert_files_clean(tmp_path)
