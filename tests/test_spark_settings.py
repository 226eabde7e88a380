"""Spark engine settings without a JVM: logroll.yaml / LOGROLL_* / flags layering, --conf and
--master checks (the CLI's exit codes and messages are in test_spark_cluster.py)."""

from __future__ import annotations

import socket

import pytest

from logroll import config
from logroll.engines import engine_settings
from logroll.engines.spark_session import check_master, parse_conf, spark_memory
from logroll.errors import UsageError

YAML = """
engine: spark
spark_master: spark://10.0.0.5:7077
spark_conf:
  spark.executor.memory: 4g
  spark.sql.shuffle.partitions: 8
"""


def resolve(tmp_path, flags=None, env=None):
    path = tmp_path / "logroll.yaml"
    path.write_text(YAML)
    return config.resolve("impressions", str(path), flags or {}, env or {})[1]


def test_file_settings_reach_the_engine(tmp_path):
    opts = resolve(tmp_path)
    assert opts["engine"] == "spark" and opts["spark_master"] == "spark://10.0.0.5:7077"
    assert opts["spark_conf"] == {"spark.executor.memory": "4g", "spark.sql.shuffle.partitions": "8"}
    assert engine_settings(opts["engine"], opts["spark_master"], opts["spark_conf"])["master"] == (
        "spark://10.0.0.5:7077"
    )


def test_env_overrides_file_and_flags_override_env(tmp_path):
    env = {"LOGROLL_SPARK_MASTER": "local[2]", "LOGROLL_SPARK_CONF": "spark.executor.cores=2 a.b=c"}
    opts = resolve(tmp_path, env=env)
    assert opts["spark_master"] == "local[2]"
    assert opts["spark_conf"] == {"spark.executor.cores": "2", "a.b": "c"}
    opts = resolve(tmp_path, flags={"spark_master": "local[1]"}, env=env)
    assert opts["spark_master"] == "local[1]"


def test_switching_to_duckdb_by_flag_drops_the_files_spark_settings(tmp_path):
    opts = resolve(tmp_path, flags={"engine": "duckdb"})
    assert "spark_master" not in opts and "spark_conf" not in opts
    assert engine_settings("duckdb", opts.get("spark_master"), opts.get("spark_conf")) == {}


def test_spark_flags_with_another_engine_are_an_error():
    with pytest.raises(UsageError, match="^--master and --conf apply to --engine spark only, not to duckdb$"):
        engine_settings("duckdb", "local[2]", ["a=b"])


def test_bad_env_conf_names_the_variable(tmp_path):
    with pytest.raises(UsageError, match="LOGROLL_SPARK_CONF: expected KEY=VALUE items"):
        resolve(tmp_path, env={"LOGROLL_SPARK_CONF": "nonsense"})


def test_conf_parsing_and_pinned_settings():
    assert parse_conf(["spark.executor.memory = 4g", "x=a=b"]) == {"spark.executor.memory": "4g", "x": "a=b"}
    assert parse_conf({"spark.sql.session.timeZone": "UTC"}) == {"spark.sql.session.timeZone": "UTC"}
    with pytest.raises(UsageError, match="logroll needs spark.sql.timestampType=TIMESTAMP_NTZ"):
        parse_conf(["spark.sql.timestampType=TIMESTAMP_LTZ"])
    with pytest.raises(UsageError, match="expected seconds"):
        parse_conf(["spark.logroll.executorTimeout=soon"])


@pytest.mark.parametrize(
    "master", ["local", "local[*]", "local[4]", "local[2,3]", "yarn", "k8s://https://k:6443"]
)
def test_masters_accepted_without_a_connection(master):
    check_master(master)


@pytest.mark.parametrize("master", ["lokal[2]", "local[x]", "spark://nohostport", "mesos", "127.0.0.1:7077"])
def test_malformed_masters(master):
    with pytest.raises(UsageError, match="^--master"):
        check_master(master)


def test_a_listening_standalone_master_passes_and_standbys_are_tried():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead = closed.getsockname()[1]
        check_master(f"spark://127.0.0.1:{dead},127.0.0.1:{port}")
        with pytest.raises(UsageError, match=f"cannot reach the Spark master spark://127.0.0.1:{dead} "):
            check_master(f"spark://127.0.0.1:{dead}", timeout=2)


def test_memory_limit_as_jvm_size():
    assert spark_memory("2GB") == "2g"
    assert spark_memory("512MB") == "512m"
    assert spark_memory("4GiB") == "4g"
    assert spark_memory("50%").endswith("m") and int(spark_memory("50%")[:-1]) >= 256
    with pytest.raises(UsageError):
        spark_memory("lots")


def test_a_master_kept_in_the_environment_does_not_stop_a_duckdb_run(cli, tmp_path):
    from logroll import demo

    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=1, rows=300)
    env = {"LOGROLL_SPARK_MASTER": "local[2]"}
    res = cli("run", "impressions", "--source", str(raw), "--dest", str(tmp_path / "out"), env=env)
    assert res.code == 0, res.err
    given = cli(
        "run", "impressions", "--source", str(raw), "--dest", str(tmp_path / "o2"), "--master", "local[2]"
    )
    assert given.code == 2 and "--master applies to --engine spark only" in given.err
