"""S3 settings, error classes and the prefetching spool, in process (fast; tests/test_s3.py runs the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from logroll.errors import ConfigError, SourceNotFound, StorageError, TransientError, UsageError
from logroll.pipelines import transformations
from logroll.storage import s3
from logroll.storage.files import Storage
from logroll.storage.prefetch import Prefetcher

SECRET = "never-print-this-0xC0FFEE"


@pytest.fixture
def no_aws_env(monkeypatch, tmp_path):
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(path: Path, **aws: str) -> Path:
    path.write_text("aws:\n" + "".join(f"  {k}: {v}\n" for k, v in aws.items()))
    return path


def test_config_yaml_in_the_current_folder_gives_keys_region_and_endpoint(no_aws_env):
    write_config(
        no_aws_env / "config.yaml",
        access_key_id="AKIAFILE",
        secret_access_key=SECRET,
        region="eu-west-2",
        endpoint_url="http://127.0.0.1:9000",
    )
    opts = s3.storage_options()
    assert opts["key"] == "AKIAFILE" and opts["secret"] == SECRET
    assert opts["client_kwargs"] == {"region_name": "eu-west-2"}
    assert opts["endpoint_url"] == "http://127.0.0.1:9000"
    text = s3.describe(opts)
    assert "config.yaml" in text and "http://127.0.0.1:9000" in text and SECRET not in text


def test_endpoint_precedence_flag_then_file_then_environment(no_aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://from-env:1")
    assert s3.storage_options()["endpoint_url"] == "http://from-env:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://from-env-s3:2")
    assert s3.storage_options()["endpoint_url"] == "http://from-env-s3:2"
    write_config(no_aws_env / "config.yaml", endpoint_url="http://from-file:3")
    assert s3.storage_options()["endpoint_url"] == "http://from-file:3"
    assert s3.storage_options("http://from-flag:4")["endpoint_url"] == "http://from-flag:4"
    # No keys in the file: credentials still come from the AWS chain.
    assert "key" not in s3.storage_options() and "AWS default chain" in s3.describe(s3.storage_options())


def test_a_config_yaml_without_aws_section_is_someone_elses(no_aws_env):
    (no_aws_env / "config.yaml").write_text("database: {host: x}\n")
    assert s3.load_config(None) == ({}, None)
    with pytest.raises(ConfigError, match="no 'aws:' section"):
        s3.load_config(no_aws_env / "config.yaml")  # named explicitly: it must have one


def test_config_errors_name_keys_never_values(no_aws_env):
    bad = write_config(no_aws_env / "c.yaml", access_key="AKIA", secret_key=SECRET)
    with pytest.raises(ConfigError) as err:
        s3.load_config(bad)
    assert "access_key, secret_key" in str(err.value) and SECRET not in str(err.value)
    half = write_config(no_aws_env / "h.yaml", access_key_id="AKIA")
    with pytest.raises(ConfigError, match="both access_key_id and secret_access_key"):
        s3.load_config(half)
    (no_aws_env / "y.yaml").write_text("aws: {access_key_id: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        s3.load_config(no_aws_env / "y.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        s3.load_config(no_aws_env / "missing.yaml")
    with pytest.raises(StorageError, match="must start with http"):
        s3.storage_options("127.0.0.1:9000")


def test_options_only_for_s3_urls(no_aws_env):
    (no_aws_env / "config.yaml").write_text("aws: [broken\n")
    assert s3.options_for(["/data/raw", "results"]) is None  # a local run never reads it
    with pytest.raises(ConfigError):
        s3.options_for(["s3://logs", "results"])


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_client_error("SlowDown", 503), True),
        (_client_error("InternalError", 500), True),
        (_client_error("503", 503), True),
        (_client_error("RequestTimeout", 400), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError(), True),
        (_client_error("NoSuchBucket", 404), False),
        (_client_error("AccessDenied", 403), False),
        (NoCredentialsError(), False),
        (EndpointConnectionError(endpoint_url="http://x"), False),
    ],
)
def test_transient_faults(exc, transient):
    assert s3.is_transient(exc) is transient


def test_translated_errors_are_usage_errors_with_a_next_step():
    assert isinstance(s3.translate(_client_error("NoSuchBucket", 404), "s3://b/x", None), SourceNotFound)
    for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        err = s3.translate(_client_error(code, 403), "s3://b/x", None)
        assert isinstance(err, StorageError) and err.exit_code == 2 and ": " in str(err)
    assert isinstance(s3.translate(NoCredentialsError(), "s3://b", None), StorageError)
    assert s3.translate(_client_error("SlowDown", 503), "s3://b", None) is None


def test_call_retries_then_says_how_many_attempts(monkeypatch):
    monkeypatch.setenv("LOGROLL_S3_ATTEMPTS", "3")
    monkeypatch.setenv("LOGROLL_S3_BACKOFF", "0")
    tries = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise _client_error("SlowDown", 503)
        return "ok"

    assert s3.call(flaky, "fetching", "s3://b/k") == "ok" and len(tries) == 3

    def always() -> None:
        raise _client_error("SlowDown", 503)

    with pytest.raises(TransientError, match=r"fetching s3://b/k failed after 3 attempts \(SlowDown: m\)"):
        s3.call(always, "fetching", "s3://b/k")

    def denied() -> None:
        tries.append(1)
        raise _client_error("AccessDenied", 403)

    tries.clear()
    with pytest.raises(StorageError, match="access denied to s3://b/k"):
        s3.call(denied, "fetching", "s3://b/k")
    assert len(tries) == 1  # no retry can fix a denial


def test_transformations_are_pipeline_outputs_plus_seed_aliases():
    from logroll.pipelines import get_pipeline

    pipe = get_pipeline("impressions")
    assert transformations.available(pipe) == ["aggregate_impressions", "daily_agg"]
    assert transformations.select(pipe, "aggregate_impressions") is pipe
    assert transformations.select(pipe, "daily_agg") is pipe
    with pytest.raises(UsageError, match="did you mean 'aggregate_impressions'"):
        transformations.select(pipe, "aggregate_impression")


@pytest.mark.parametrize("name", ["logs", "s3://ad-logs", "a.b-c", "x" * 63])
def test_bucket_names(name):
    assert s3.bucket_url(name).startswith("s3://")


@pytest.mark.parametrize("name", ["ab", "Logs", "under_score", "x" * 64, "a/b", "-ab"])
def test_bad_bucket_names(name):
    with pytest.raises(UsageError):
        s3.bucket_url(name)


# ---- the spool ------------------------------------------------------------------------------------
def s3_storage(moto_server, url: str) -> Storage:
    from s3server import TEST_CREDENTIALS

    return Storage(
        url,
        {
            "endpoint_url": moto_server.endpoint_url,
            "key": TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "secret": TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
    )


def test_prefetcher_copies_each_object_and_removes_the_spool(moto_server, s3_bucket, tmp_path):
    client = moto_server.client()
    bodies = {f"2021/01/30/f{i}.csv": f"h\n{i}\n".encode() * (i + 1) for i in range(7)}
    for key, body in bodies.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    src = s3_storage(moto_server, f"s3://{s3_bucket}")
    files = src.list_files("2021/01/30", (".csv",))
    spool = tmp_path / "spool"
    seen = {}
    with Prefetcher(src, files, spool, concurrency=2) as fetcher:
        for f in reversed(files):  # any order works (parallel workers take files as they come)
            with fetcher.take(f) as path:
                seen[f.uri] = path.read_bytes()
            assert not path.exists()  # each copy goes as soon as it has been staged
    assert seen == {f"s3://{s3_bucket}/{k}": v for k, v in bodies.items()}
    assert not any(spool.rglob("*.csv"))

    # Stopping half way (a crash in the consumer) leaves nothing behind either.
    with pytest.raises(RuntimeError), Prefetcher(src, files, spool, concurrency=3) as fetcher:
        with fetcher.take(files[0]):
            raise RuntimeError("stage failed")
    assert not any(spool.rglob("*"))


def test_prefetcher_reads_local_files_in_place(impressions_raw, tmp_path):
    src = Storage(str(impressions_raw))
    files = src.list_files("", (".csv",))
    with Prefetcher(src, files, tmp_path / "spool") as fetcher:
        with fetcher.take(files[0]) as path:
            assert path == Path(files[0].uri)
        assert path.exists()
    assert not (tmp_path / "spool").exists()


def test_a_fetch_of_another_size_than_listed_fails_the_file(moto_server, s3_bucket, tmp_path):
    client = moto_server.client()
    client.put_object(Bucket=s3_bucket, Key="2021/01/30/a.csv", Body=b"h\n1\n")
    src = s3_storage(moto_server, f"s3://{s3_bucket}")
    (listed,) = src.list_files("2021/01/30", (".csv",))
    client.put_object(Bucket=s3_bucket, Key="2021/01/30/a.csv", Body=b"h\n1\n2\n")  # replaced meanwhile
    with pytest.raises(TransientError, match="changed while being read"):
        src.fetch(listed.uri, tmp_path / "a.csv", size=listed.size)
