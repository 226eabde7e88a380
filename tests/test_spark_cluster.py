"""`--engine spark` through the real CLI: a standalone cluster on 127.0.0.1 started here from
pyspark's own spark-class (a master and one worker), and the one-line errors (exit 2) for
everything that can stop Spark before it starts."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from logroll import api, demo

from conftest import run_cli, tree_bytes

pytestmark = pytest.mark.spark
LOCAL = {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOCAL_HOSTNAME": "localhost"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    tails = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())
    raise AssertionError(f"{what} within {timeout} s; logs:\n{tails}")


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
        body = r.read()
    try:
        return json.loads(body)
    except ValueError:  # a master still starting serves its HTML page at /json/ for a moment
        return {}


def spark_home() -> Path:
    """pyspark's own Spark distribution (bin/spark-class, jars/); imported here, not at collection,
    so that `-m "not spark"` works without the spark extra."""
    import pyspark

    return Path(pyspark.__file__).parent


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.env = {
            **os.environ,
            **LOCAL,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOG_DIR": str(root / "logs"),
            "SPARK_WORKER_DIR": str(root / "work"),
        }

    def _start(self, name: str, *args: str) -> None:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.procs.append(
                subprocess.Popen(
                    [str(spark_home() / "bin" / "spark-class"), *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                )
            )

    def start(self) -> Cluster:
        self._start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port),
        )  # fmt: skip

        def up() -> bool:
            try:
                return master_state(self.ui_port).get("status") == "ALIVE"
            except OSError:
                return False

        wait_until(up, 90, "the master did not come up", self.logs)
        self._start(
            "worker",
            "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1", "--port", str(free_port()), "--webui-port", str(free_port()),
            "--cores", "1", "--memory", "2g", "--work-dir", str(self.root / "work"), self.url,
        )  # fmt: skip
        wait_until(lambda: master_state(self.ui_port).get("aliveworkers") == 1, 90, "no worker", self.logs)
        return self

    def stop(self) -> None:
        for p in reversed(self.procs):  # only the processes this fixture started
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c.start()
    finally:
        c.stop()


def test_run_on_a_standalone_cluster_matches_duckdb(cluster, tmp_path):
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=2, rows=3000)
    api.run("impressions", "2021-01-30", source=str(raw), dest=str(tmp_path / "duckdb"))
    r = run_cli(
        "run", "impressions", "2021-01-30", "--source", str(raw), "--dest", str(tmp_path / "spark"),
        "--engine", "spark", "--master", cluster.url,
        "--conf", "spark.executor.memory=1g", "--conf", "spark.executor.cores=1", "--json",
        env=LOCAL,
    )  # fmt: skip
    assert r.code == 0, r.err
    report = r.json()
    assert report["engine"] == "spark" and report["partitions_built"] == ["2021-01-30"]
    assert tree_bytes(tmp_path / "spark") == tree_bytes(tmp_path / "duckdb")
    apps = master_state(cluster.ui_port)["completedapps"]
    assert [a["name"] for a in apps].count("logroll") >= 1  # it really ran on the cluster


def test_master_without_room_for_an_executor_fails_in_time(cluster, tmp_path):
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=1, rows=300)
    started = time.monotonic()
    r = run_cli(
        "run", "impressions", "2021-01-29", "--source", str(raw), "--dest", str(tmp_path / "out"),
        "--engine", "spark", "--master", cluster.url,
        "--conf", "spark.executor.cores=4", "--conf", "spark.logroll.executorTimeout=5",
        env=LOCAL,
    )  # fmt: skip
    assert r.code == 1, r.err  # the day fails (and is retried next run); staging went through
    assert f"the Spark master {cluster.url} gave no executor within 5 s" in r.err
    assert time.monotonic() - started < 90


# ---- one-line errors, exit 2, no JVM started ----------------------------------------------------
@pytest.fixture
def raw(tmp_path) -> Path:
    demo.GENERATORS["impressions"](tmp_path / "raw", days=1, rows=100)
    return tmp_path / "raw"


def run_spark(raw: Path, *extra: str, env: dict[str, str] | None = None):
    return run_cli(
        "run", "impressions", "2021-01-29", "--source", str(raw), "--dest", str(raw.parent / "out"),
        "--engine", "spark", *extra, env=env, timeout=120,
    )  # fmt: skip


def one_line_error(r) -> str:
    assert r.code == 2, (r.code, r.err)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("logroll: error: "), r.err
    return lines[0].removeprefix("logroll: error: ")


def test_unreachable_master_fails_fast(raw):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    msg = one_line_error(run_spark(raw, "--master", f"spark://127.0.0.1:{port}"))
    assert msg == (
        f"cannot reach the Spark master spark://127.0.0.1:{port} (127.0.0.1:{port}: Connection refused): "
        "start it, or check --master"
    )
    assert time.monotonic() - started < 30


def test_no_java(raw):
    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": venv_bin, "JAVA_HOME": ""}
    if shutil.which("java", path=venv_bin):
        pytest.fail("the venv's bin holds a java: cannot hide Java for this test")
    from logroll.engines.spark_session import required_java

    msg = one_line_error(run_spark(raw, env=env))
    need = required_java(importlib.import_module("pyspark").__version__)  # 17 for Spark 4, 8 for 3.5
    assert msg.startswith(f"the spark engine needs Java {need} or newer and none was found: install one")


def test_java_home_pointing_nowhere(raw, tmp_path):
    msg = one_line_error(run_spark(raw, env={"JAVA_HOME": str(tmp_path / "nojava")}))
    assert msg.startswith(f"JAVA_HOME is {tmp_path / 'nojava'} but")


def test_pyspark_not_installed(raw):
    # sys.modules[name] = None is how Python itself makes `import name` fail
    code = (
        "import sys; sys.modules['pyspark'] = None; from logroll.cli import main; "
        f"sys.argv = ['logroll', 'run', 'impressions', '2021-01-29', '--source', {str(raw)!r}, "
        f"'--dest', {str(raw.parent / 'out')!r}, '--engine', 'spark']; main()"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == (
        "logroll: error: the spark engine needs pyspark, which is not installed: pip install 'logroll[spark]'"
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--engine", "sprak"], "unknown engine 'sprak': did you mean 'spark'? choose one of duckdb, spark"),
        (["--master", "local[2]"], "--master applies to --engine spark only, not to duckdb"),
        (["--engine", "spark", "--conf", "nonsense"], "--conf 'nonsense': expected KEY=VALUE"),
        (["--engine", "spark", "--conf", "spark.sql.session.timeZone=Europe/Paris"], "logroll needs"),
        (["--engine", "spark", "--master", "lokal[2]"], "--master 'lokal[2]': use local[N]"),
    ],
)
def test_bad_engine_options(raw, args, expected):
    r = run_cli(
        "run", "impressions", "2021-01-29", "--source", str(raw), "--dest", str(raw.parent / "out"), *args
    )  # fmt: skip
    assert expected in one_line_error(r)


def test_ingest_refuses_the_spark_engine(tmp_path):
    r = run_cli(
        "run", "ingest", "--source", str(tmp_path), "--dest", str(tmp_path / "o"), "--engine", "spark"
    )
    assert "ingest loads each file with DuckDB" in one_line_error(r)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = (
                    Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry))
    return found


def test_killed_mid_build_leaves_no_jvm_and_a_rerun_converges(tmp_path):
    """SIGKILL after Spark computed the day, before publishing; the JVM goes with the driver, and a
    rerun (here on DuckDB: the state is shared) writes exactly the reference outputs."""
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=1, rows=600)
    api.run("impressions", "2021-01-29", source=str(raw), dest=str(tmp_path / "reference"))
    dest = tmp_path / "out"
    killed = run_cli(
        "run", "impressions", "2021-01-29", "--source", str(raw), "--dest", str(dest),
        "--engine", "spark", "--master", "local[1]",
        env={**LOCAL, "LOGROLL_FAULT_AT": "build.computed:1"},
    )  # fmt: skip
    assert killed.code == -9, killed.err
    work = str(dest / "_logroll")
    wait_until(lambda: not _processes_mentioning(work), 30, "the driver's JVM outlived it", [])
    again = run_cli("run", "impressions", "2021-01-29", "--source", str(raw), "--dest", str(dest), "--json")
    assert again.code == 0, again.err
    assert again.json()["partitions_built"] == ["2021-01-29"]
    assert tree_bytes(dest) == tree_bytes(tmp_path / "reference")
