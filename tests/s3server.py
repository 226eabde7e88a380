"""A real S3 API on 127.0.0.1 for tests, and a proxy in front of it that counts and breaks requests.

    with MotoServer() as moto:                      # `python -m moto.server` on a free port
        moto.client().create_bucket(Bucket="logs")  # boto3, straight to moto
        with S3Proxy(moto.endpoint_url) as proxy:   # point the code under test at proxy.endpoint_url
            proxy.fail(2, status=503)               # the next 2 requests get 503 SlowDown
            ...
            proxy.count("PUT")                      # requests that reached the proxy

Reusable by any test that needs S3 (the Spark engine's S3A included): the server is a separate
process, so anything that speaks HTTP can use it. The fixtures are in conftest.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Credentials for a moto server without authentication: any pair is accepted.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_aws_env(home: Path | None = None) -> dict[str, str]:
    """Environment for a subprocess that must see no AWS settings of the machine it runs on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no 1-second IMDS probe for instance roles
    if home is not None:
        env["HOME"] = str(home)
        env["AWS_CONFIG_FILE"] = str(home / ".aws" / "config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / ".aws" / "credentials")
    return env


class MotoServer:
    """`python -m moto.server` on 127.0.0.1 and a free port, for the duration of a `with`."""

    def __init__(self, startup_timeout: float = 60):
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_timeout = startup_timeout

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            env = {**isolated_aws_env(), **TEST_CREDENTIALS}
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError("moto server did not start")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def client(self, service: str = "s3", **credentials: str) -> Any:
        """A boto3 client talking straight to this server."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=credentials.get("key", TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=credentials.get("secret", TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
        )

    def require_auth(self) -> None:
        """From now on every request must be signed with an IAM user's access key (moto checks
        signatures and policies). Irreversible for this server: use a server of its own."""
        req = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form body would be parsed away
        )
        with urllib.request.urlopen(req, timeout=10):
            pass


# ---- the proxy ------------------------------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str  # with the query string
    status: int  # 0 when the connection was reset

    @property
    def is_listing(self) -> bool:
        return self.method == "GET" and "list-type=" in self.path


@dataclass
class Fault:
    """What to do to the next `times` requests that `match` (forever when times is None)."""

    match: Callable[[str, str], bool]
    times: int | None
    mode: str = "status"  # status | reset | truncate | delay
    status: int = 503
    code: str = "SlowDown"
    delay: float = 0.0
    hits: int = field(default=0)


def _object_get(method: str, path: str) -> bool:
    return method == "GET" and "list-type=" not in path and path.count("/") >= 2


class S3Proxy:
    """An HTTP proxy in front of an S3 endpoint: logs every request, injects faults on demand.

    Fault modes: `status` answers with an S3 error (503 SlowDown by default) without forwarding;
    `reset` drops the connection with a TCP reset before answering; `truncate` forwards, then
    sends half the body and resets; `delay` forwards after sleeping `delay` seconds.
    """

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight: dict[str, int] = {}
        self._flight: dict[str, int] = {}
        self.server: ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # -- controls --
    def fail(
        self,
        times: int | None,
        *,
        mode: str = "status",
        status: int = 503,
        code: str = "SlowDown",
        delay: float = 0.0,
        method: str | None = None,
        path_contains: str | None = None,
        objects_only: bool = False,
    ) -> Fault:
        def match(m: str, p: str) -> bool:
            if method and m != method:
                return False
            if path_contains and path_contains not in p:
                return False
            return not objects_only or _object_get(m, p)

        fault = Fault(match, times, mode, status, code, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()
            self.max_in_flight.clear()

    def count(
        self,
        method: str | None = None,
        *,
        objects_only: bool = False,
        listing: bool | None = None,
        state: bool | None = None,
    ) -> int:
        """Requests seen; `state` True/False: only / none of those on a `_logroll/` object."""
        with self.lock:
            seen = list(self.seen)
        out = 0
        for s in seen:
            if method and s.method != method:
                continue
            if state is not None and ("/_logroll/" in s.path.split("?")[0]) != state:
                continue
            if objects_only and not _object_get(s.method, s.path):
                continue
            if listing is not None and s.is_listing != listing:
                continue
            out += 1
        return out

    # -- server --
    def start(self) -> S3Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline().strip():
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _reset(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                self.close_connection = True

            def _handle(self) -> None:
                body = self._body()
                method, path = self.command, self.path
                kind = "object-get" if _object_get(method, path) else method
                fault = proxy._take_fault(method, path)
                with proxy.lock:
                    proxy._flight[kind] = proxy._flight.get(kind, 0) + 1
                    proxy.max_in_flight[kind] = max(proxy.max_in_flight.get(kind, 0), proxy._flight[kind])
                try:
                    self._serve(method, path, body, fault)
                finally:
                    with proxy.lock:
                        proxy._flight[kind] -= 1

            def _serve(self, method: str, path: str, body: bytes, fault: Fault | None) -> None:
                if fault is not None and fault.mode == "reset":
                    proxy._log(method, path, 0)
                    self._reset()
                    return
                if fault is not None and fault.mode == "status":
                    proxy._log(method, path, fault.status)
                    err = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                        f"<Message>injected by the test proxy</Message></Error>"
                    ).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(err)))
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(err)
                    return
                if fault is not None and fault.mode == "delay":
                    time.sleep(fault.delay)
                status, headers, payload = proxy._forward(method, path, dict(self.headers.items()), body)
                proxy._log(method, path, status if not (fault and fault.mode == "truncate") else 0)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() in (
                        "transfer-encoding",
                        "connection",
                        "keep-alive",
                        "content-length",
                        "date",
                        "server",
                    ):
                        continue
                    self.send_header(k, v)
                if method == "HEAD":
                    length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if fault is not None and fault.mode == "truncate":
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="s3-proxy").start()
        return self

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.times is None or fault.hits < fault.times) and fault.match(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _log(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, status))

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            # The Host header is kept as the client signed it (SigV4 signs it).
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                if k.lower() in ("connection", "keep-alive", "transfer-encoding", "expect", "content-length"):
                    continue
                conn.putheader(k, v)
            if body or method in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.getheaders(), payload
        finally:
            conn.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> S3Proxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# ---- helpers --------------------------------------------------------------------------------
def upload_tree(client: Any, bucket: str, root: Path, prefix: str = "") -> list[str]:
    """Put every file under `root` at s3://bucket/prefix/<relative path>; returns the keys."""
    keys = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        key = "/".join(x for x in (prefix.strip("/"), path.relative_to(root).as_posix()) if x)
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


def download_tree(client: Any, bucket: str, prefix: str = "", skip: str = "_logroll") -> dict[str, bytes]:
    """{key relative to prefix: bytes} for every object under prefix, `skip` folders left out."""
    out: dict[str, bytes] = {}
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(base) :]
            if skip and skip in rel.split("/"):
                continue
            out[rel] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return dict(sorted(out.items()))


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server
