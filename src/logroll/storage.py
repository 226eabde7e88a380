"""File access through fsspec: list versions, fetch to a local spool, put outputs atomically.

Local paths, `s3://` (s3fs) and `memory://` go through the same small surface, so the rest of
logroll never asks which store it is talking to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from . import faults
from .errors import SourceNotFound, StorageError


@dataclass(frozen=True)
class FileVersion:
    """A file as listed: its identity is the uri, its version changes with its content."""

    uri: str
    size: int
    version: str


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


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

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        self.url = (
            url.rstrip("/")
            if not is_local(url)
            else str(Path(url.removeprefix("file://")).expanduser().absolute())
        )
        self.local = is_local(url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **(options or {}))
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot use {url!r}: {exc}") from None

    def uri(self, path: str) -> str:
        """Full URI of a path returned by the filesystem."""
        if self.local:
            return str(Path(path))
        return self.fs.unstrip_protocol(path)

    def exists(self, rel: str = "") -> bool:
        return bool(self.fs.exists(join(self.root, rel) if rel else self.root))

    def require_root(self, what: str) -> None:
        if not self.exists():
            raise SourceNotFound(f"{what} {self.url!r} does not exist: check the path (or bucket name)")

    def list_files(self, rel: str, suffixes: tuple[str, ...]) -> list[FileVersion]:
        """Every file below ROOT/rel whose name ends with one of `suffixes`, sorted by uri."""
        base = join(self.root, rel) if rel else self.root
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for path, info in found.items():
            name = posixpath.basename(path).lower()
            if info.get("type") == "directory" or name.startswith((".", "_")):
                continue
            if suffixes and not name.endswith(tuple(s.lower() for s in suffixes)):
                continue
            out.append(FileVersion(self.uri(path), int(info.get("size") or 0), _version_token(info)))
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
            self.fs.get_file(uri, tmp)
            yield Path(tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

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
            self.fs.put_file(str(local_file), dest)
        return self.uri(dest) if not self.local else dest


def _version_token(info: dict[str, Any]) -> str:
    size = int(info.get("size") or 0)
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"{size}:{str(etag).strip(chr(34))}"
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or ""
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    return f"{size}:{mtime}"
