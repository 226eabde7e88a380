"""File access through fsspec: list versions, fetch to a local spool, put outputs atomically.

Local paths, `s3://` (s3fs) and `memory://` go through the same small surface, so the rest of
logroll never asks which store it is talking to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import faults
from ..errors import SourceNotFound, StorageError, TransientError
from ..proc import pid_alive
from . import s3


@dataclass(frozen=True)
class FileVersion:
    """A file as listed: its identity is the uri, its version changes with its content."""

    uri: str
    size: int
    version: str
    # Last-modified time (UTC, naive) when the store reports one; the ingest scanner resumes from it.
    modified: dt.datetime | None = field(default=None, compare=False)


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_url(url: str) -> str:
    """How a local root is spelled everywhere (reports, the catalog's uris): absolute, ~ expanded."""
    return str(Path(url.removeprefix("file://")).expanduser().absolute())


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return str(Path(base.removeprefix("file://"), *parts))
    return posixpath.join(base.rstrip("/"), *parts)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Storage:
    """One root URL (a source or a destination) and its filesystem."""

    tables = False  # outputs are files (sinks.destination.TableDestination writes tables)

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        self.url = url.rstrip("/") if not is_local(url) else local_url(url)
        self.local = is_local(url)
        self.is_s3 = s3.is_s3(self.url)
        # Store options (credentials) go to object stores only, never to a local filesystem.
        self.options = dict(options or {}) if not self.local else {}
        fs_options = s3.filesystem_options(self.options) if self.is_s3 else self.options
        import fsspec  # here: a run with nothing to do lists a local source without it (cli/quick.py)

        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **fs_options)
        except (ImportError, ValueError, TypeError) as exc:
            raise StorageError(f"cannot use {url!r}: {exc}") from None
        s3.tune(self.fs)

    def _call(self, fn: Any, what: str, url: str | None = None) -> Any:
        """Local calls run as they are; remote ones retry transient faults and explain fatal ones."""
        if self.local:
            return fn()
        return s3.call(fn, what, url or self.url, self.options)

    def uri(self, path: str) -> str:
        """Full URI of a path returned by the filesystem."""
        if self.local:
            return str(Path(path))
        return self.fs.unstrip_protocol(path)

    def exists(self, rel: str = "") -> bool:
        path = join(self.root, rel) if rel else self.root
        return bool(self._call(lambda: self.fs.exists(path), "checking", self.uri(path)))

    def require_root(self, what: str) -> None:
        if self.is_s3:
            # An S3 prefix with no objects is an empty folder, not an error: only the bucket
            # must exist (and be readable with these credentials).
            s3.check_bucket(self.fs, self.url, self.options)
            return
        if not self.exists():
            raise SourceNotFound(f"{what} {self.url!r} does not exist: check the path (or bucket name)")

    def list_files(
        self, rel: str, suffixes: tuple[str, ...], exclude: tuple[str, ...] = ()
    ) -> list[FileVersion]:
        """Every file below ROOT/rel whose name ends with one of `suffixes`, sorted by uri.

        Paths with a hidden or `_`-prefixed folder below the root (`_logroll/`) and paths under
        `exclude` (uris, e.g. a destination inside the source) are skipped.
        """
        base = join(self.root, rel) if rel else self.root

        def find() -> dict[str, Any]:
            try:
                return self.fs.find(base, detail=True)
            except FileNotFoundError:
                if self.is_s3:
                    s3.check_bucket(self.fs, self.url, self.options)  # a missing bucket says so
                return {}

        found = self._call(find, "listing", self.uri(base))
        skip = tuple(e.rstrip("/") + "/" for e in exclude)
        root = self.root.replace(os.sep, "/").rstrip("/") + "/"
        out = []
        for path, info in found.items():
            name = posixpath.basename(path).lower()
            if info.get("type") == "directory" or name.startswith((".", "_")):
                continue
            inner = path.replace(os.sep, "/").removeprefix(root)
            if any(part.startswith((".", "_")) for part in inner.split("/")[:-1]):
                continue
            if skip and self.uri(path).startswith(skip):
                continue
            if suffixes and not name.endswith(tuple(s.lower() for s in suffixes)):
                continue
            out.append(
                FileVersion(self.uri(path), int(info.get("size") or 0), _version_token(info), _modified(info))
            )
        return sorted(out, key=lambda f: f.uri)

    @contextlib.contextmanager
    def local_copy(self, uri: str, spool: Path) -> Iterator[Path]:
        """A local path to read `uri` from: the file itself when local, else a spooled copy."""
        if self.local:
            yield Path(uri)
            return
        spool.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=spool, suffix=posixpath.splitext(uri)[1])
        os.close(fd)
        try:
            self.fetch(uri, Path(tmp))
            yield Path(tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def fetch(self, uri: str, target: Path, size: int | None = None) -> None:
        """Copy the object `uri` whole to the local file `target`, retrying transient faults.

        With `size` (from the listing) a copy of another length is refused: the object was
        replaced after the listing, and the next run sees it as the new version it is.
        """

        def get() -> None:
            self.fs.get_file(uri, str(target))
            got = os.path.getsize(target)
            if size is not None and got != size:
                raise TransientError(
                    f"{uri} changed while being read ({got} bytes, listed with {size}); "
                    "the next run stages its new version"
                )

        self._call(get, "fetching", uri)

    # ---- destination side -------------------------------------------------------------
    def checksum(self, rel: str) -> str | None:
        """sha256 of an existing output, or None when it is not there."""
        path = join(self.root, rel)
        if self.local:
            return sha256_file(path) if os.path.exists(path) else None
        try:
            with self.fs.open(path, "rb") as fh:
                h = hashlib.sha256()
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
                return h.hexdigest()
        except FileNotFoundError:
            return None

    def put_atomic(self, local_file: Path, rel: str) -> str:
        """Publish a finished local file at ROOT/rel; readers never see a partial file."""
        dest = join(self.root, rel)
        if self.local:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{dest}.tmp-{os.getpid()}"
            shutil.copyfile(local_file, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            faults.point("publish.tmp_written")
            os.replace(tmp, dest)
        else:
            # An object PUT is all-or-nothing: the object appears whole or not at all.
            self._call(lambda: self.fs.put_file(str(local_file), dest), "uploading", self.uri(dest))
        return self.uri(dest) if not self.local else dest

    def etag(self, rel: str) -> str | None:
        """The ETag of the object at ROOT/rel (unquoted), or None when there is no such object."""
        path = join(self.root, rel)

        def head() -> str | None:
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return None
            return str(info.get("ETag") or info.get("etag") or "").strip('"')

        return self._call(head, "checking", self.uri(path))

    def discard_stale_temps(self, rel: str) -> None:
        """Remove the temporaries of `put_atomic` that a killed process left beside ROOT/rel."""
        if not self.local:
            return  # object puts leave no temporaries
        dest = Path(join(self.root, rel))
        for tmp in dest.parent.glob(glob.escape(dest.name) + ".tmp-*"):
            pid = tmp.name.rsplit("-", 1)[1]
            # Our own pid is stale too: this process is not in the middle of a put here.
            if pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
                tmp.unlink(missing_ok=True)


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    if isinstance(mtime, dt.datetime):
        return mtime.astimezone(dt.UTC).replace(tzinfo=None) if mtime.tzinfo else mtime
    if isinstance(mtime, (int, float)):
        return dt.datetime.fromtimestamp(float(mtime), dt.UTC).replace(tzinfo=None)
    return None


def _version_token(info: dict[str, Any]) -> str:
    size = int(info.get("size") or 0)
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"{size}:{str(etag).strip(chr(34))}"
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or ""
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    return f"{size}:{mtime}"
