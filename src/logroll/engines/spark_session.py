"""Starting (or joining) a SparkSession, with one-line errors instead of JVM stack traces.

Everything that can be checked before a JVM starts is checked first, because a missing Java
or an unreachable master otherwise shows up as a long Py4J trace or a minute-long hang.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from ..errors import UsageError, first_line
from ..units import DEFAULT_MEMORY_LIMIT, parse_size, percent

INSTALL_HINT = "pip install 'logroll[spark]'"
DEFAULT_MASTER = "local[*]"
CONNECT_TIMEOUT = 5.0  # seconds to open a TCP connection to a standalone master
EXECUTOR_TIMEOUT = 60.0  # seconds for a standalone master to give us at least one executor
EXECUTOR_TIMEOUT_KEY = "spark.logroll.executorTimeout"  # --conf to change it

# Settings the engine's results depend on; a user's --conf may not change them.
PINNED_SQL_CONF = {
    # Staged timestamps are wall-clock values (DuckDB TIMESTAMP): never shift them by a zone.
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.session.timeZone": "UTC",
    # INT96 would come back to DuckDB as a different type; micros is what DuckDB writes too.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

# Defaults a user's --conf may override.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    # Small days dominate: 200 shuffle partitions cost more in task overhead than they save.
    "spark.sql.shuffle.partitions": "16",
}

_LOCAL = re.compile(r"^local(\[(\*|\d+)(,\d+)?\])?$|^local-cluster\[\d+,\d+,\d+\]$")
_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{1}: %m%n
# Spark prints "Setting default log level" unless the first logger it makes has a level of its
# own equal to the root's.
logger.org.name = org
logger.org.level = error
"""


def import_pyspark() -> Any:
    """The pyspark module, or a UsageError with the install command."""
    # pyspark warns about the pandas version when it starts; logroll does not use its pandas API.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    try:
        import pyspark
        import pyspark.sql  # noqa: F401
    except ImportError:
        raise UsageError(f"the spark engine needs pyspark, which is not installed: {INSTALL_HINT}") from None
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pyspark 3.5 has no such loggers
        return pyspark
    # Spark's Python side logs every failed query as pages of JSON; the error itself is raised
    # and reported in one line.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    return pyspark


def required_java(spark_version: str) -> int:
    return 17 if int(spark_version.split(".")[0]) >= 4 else 8


def find_java(min_major: int) -> str:
    """Path of a java binary new enough for this pyspark, checked the way pyspark will look."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = str(Path(home) / "bin" / "java")
        if not os.access(java, os.X_OK):
            raise UsageError(
                f"JAVA_HOME is {home} but {java} is not an executable: point JAVA_HOME at a Java "
                f"{min_major}+ installation or unset it"
            )
    else:
        found = shutil.which("java")
        if not found:
            raise UsageError(
                f"the spark engine needs Java {min_major} or newer and none was found: install one "
                f"(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
            )
        java = found
    major = java_major(java)
    if major is not None and major < min_major:
        raise UsageError(
            f"Spark needs Java {min_major} or newer but {java} is Java {major}: install Java "
            f"{min_major}+ and set JAVA_HOME to it"
        )
    return java


def java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot run {java} ({exc}): fix the Java installation or JAVA_HOME") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_master(master: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail in seconds on a master that cannot work, instead of retrying for minutes."""
    if master.startswith("local"):
        if not _LOCAL.match(master):
            raise UsageError(f"--master {master!r}: use local, local[N], local[*] or spark://HOST:PORT")
        return
    if master == "yarn" or master.startswith(("k8s://", "mesos://")):
        return  # Spark's own launcher checks those
    if not master.startswith("spark://"):
        raise UsageError(
            f"--master {master!r}: use local[N], local[*], spark://HOST:PORT, yarn or k8s://HOST:PORT"
        )
    errors = []
    for hostport in master[len("spark://") :].split(","):  # HA: any reachable master will do
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"--master {master!r}: expected spark://HOST:PORT")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{hostport}: {exc.strerror or exc}")
    raise UsageError(
        f"cannot reach the Spark master {master} ({'; '.join(errors)}): start it, or check --master"
    )


def parse_conf(items: list[str] | dict[str, str] | None) -> dict[str, str]:
    """`--conf k=v` pairs as a dict; pinned settings cannot be overridden."""
    if not items:
        return {}
    pairs: dict[str, str] = {}
    if isinstance(items, dict):
        pairs = {str(k): str(v) for k, v in items.items()}
    else:
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--conf {item!r}: expected KEY=VALUE, e.g. --conf spark.executor.memory=4g")
            pairs[key.strip()] = value.strip()
    timeout = pairs.get(EXECUTOR_TIMEOUT_KEY)
    if timeout is not None and not re.fullmatch(r"\d+(\.\d+)?", timeout):
        raise UsageError(f"--conf {EXECUTOR_TIMEOUT_KEY}={timeout}: expected seconds, e.g. 60")
    for key, value in pairs.items():
        if key in PINNED_SQL_CONF and value != PINNED_SQL_CONF[key]:
            raise UsageError(
                f"--conf {key}={value}: logroll needs {key}={PINNED_SQL_CONF[key]} for outputs "
                f"identical to the duckdb engine's; leave it out"
            )
    return pairs


def spark_memory(limit: str) -> str:
    """DuckDB-style '2GB' / '512MB' / '50%' (of RAM) as a JVM size ('2g', '512m')."""
    pct = percent(limit)
    if pct is not None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return f"{max(256, int(total * pct / 100 / 2**20))}m"
    size = parse_size(limit)  # the one parser says what a bad size is
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]i?b?)?\s*", limit.lower())
    if not m:  # e.g. 1.5GB: the JVM takes whole numbers only
        return f"{max(1, size // 2**20)}m"
    unit = (m.group(2) or "m")[0]
    return f"{m.group(1)}{unit}"


class SessionHandle:
    """A SparkSession and whether this process started it (and so must stop it)."""

    def __init__(self, session: Any, owned: bool):
        self.session = session
        self.owned = owned

    def stop(self) -> None:
        if self.owned:
            self.session.stop()


def preflight(master: str | None, threads: int | None = None) -> Any:
    """Every check that needs no JVM: pyspark installed, master well-formed and reachable, Java
    present and new enough. Returns the active SparkSession to join, if the process has one."""
    pyspark = import_pyspark()
    from pyspark.sql import SparkSession

    active = _running_session(SparkSession)
    if active is not None:
        running = active.sparkContext.master
        if master and master != running:
            raise UsageError(
                f"this process already runs a SparkSession on {running}: stop it first, "
                f"or pass --master {running}"
            )
        return active
    check_master(master_url(master, threads))
    java = find_java(required_java(pyspark.__version__))
    if not os.environ.get("JAVA_HOME"):
        # pyspark's launcher finds java through JAVA_HOME or PATH; pin the one we checked.
        os.environ["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
    return None


def _running_session(session_cls: Any) -> Any:
    """The process's SparkSession, if one runs. getActiveSession() only sees the calling
    thread's; --parallel workers build in threads of their own, so look at the default too."""
    active = session_cls.getActiveSession() or getattr(session_cls, "_instantiatedSession", None)
    if active is None or active.sparkContext._jsc is None:  # stopped
        return None
    return active


def master_url(master: str | None, threads: int | None = None) -> str:
    return master or (f"local[{int(threads)}]" if threads else DEFAULT_MASTER)


def open_session(
    master: str | None,
    conf: dict[str, str],
    work_dir: Path,
    memory_limit: str = DEFAULT_MEMORY_LIMIT["spark"],
    threads: int | None = None,
    executor_timeout: float = EXECUTOR_TIMEOUT,
) -> SessionHandle:
    """Join the process's active SparkSession (a notebook's, or a test session's) or start one."""
    active = preflight(master, threads)
    if active is not None:
        _pin(active)
        return SessionHandle(active, owned=False)
    from pyspark.sql import SparkSession

    master = master_url(master, threads)
    spark_dir = Path(work_dir) / "spark"
    (spark_dir / "local").mkdir(parents=True, exist_ok=True)
    log4j = spark_dir / "log4j2.properties"
    log4j.write_text(_LOG4J)
    settings = {
        **DEFAULT_CONF,
        "spark.app.name": "logroll",
        "spark.local.dir": str(spark_dir / "local"),
        "spark.sql.warehouse.dir": str(spark_dir / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j}",
    }
    if master.startswith("local"):
        # In local mode the executors live in the driver's JVM: its heap is the engine's memory.
        settings["spark.driver.memory"] = spark_memory(memory_limit)
    user_java = conf.get("spark.driver.extraJavaOptions")
    settings.update(conf)
    if user_java:
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j} {user_java}"
    settings.update(PINNED_SQL_CONF)

    builder = SparkSession.builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: Py4J/PySpark errors are pages long
        first = first_line(exc)
        raise UsageError(
            f"Spark did not start on {master}: {first}; check --master, --conf and Java"
        ) from None
    handle = SessionHandle(session, owned=True)
    try:
        session.sparkContext.setLogLevel("ERROR")
        if master.startswith("spark://"):
            timeout = conf.get(EXECUTOR_TIMEOUT_KEY)
            _wait_for_executor(session, master, float(timeout) if timeout else executor_timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


def _pin(session: Any) -> None:
    for key, value in PINNED_SQL_CONF.items():
        session.conf.set(key, value)


def _wait_for_executor(session: Any, master: str, timeout: float) -> None:
    """A master with no free worker accepts the app and then waits forever: give up in time."""
    sc = session.sparkContext
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The driver counts as one entry; a second one is a registered executor.
        if sc._jsc.sc().getExecutorMemoryStatus().size() > 1:
            return
        if sc._jsc.sc().isStopped():
            break
        time.sleep(0.2)
    raise UsageError(
        f"the Spark master {master} gave no executor within {timeout:.0f} s: start a worker with free "
        f"cores and memory, or lower spark.executor.memory / spark.executor.cores with --conf"
    )
