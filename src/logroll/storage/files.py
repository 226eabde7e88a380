"""File access through fsspec: list versions, fetch to a local spool, put outputs atomically.

Local paths, `s3://` (s3fs) and `memory://` go through the same small surface, so the rest of
logroll never asks which store it is talking to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import logging
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import faults
from ..errors import ListingError, SourceNotFound, StorageError, TransientError, UsageError, WriteConflict
from ..proc import pid_alive
from ..registry import Registry
from . import s3

log = logging.getLogger("logroll")

# Stores that need an extra: the registry says what to install when its driver is missing.
PROTOCOLS = Registry(
    "store", {"s3": "s3fs"}, extras={"s3": "s3"}, missing="{name}:// paths need {module}: {hint}"
)


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


def cache_root() -> Path:
    """Where this machine keeps working copies: $XDG_CACHE_HOME/logroll, else ~/.cache/logroll."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "logroll"


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
        if self.is_s3:
            PROTOCOLS.module("s3")  # s3fs is the [s3] extra: say so rather than fsspec's "Install s3fs"
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

    def require_folder(self, what: str) -> None:
        """A local path given as a folder must not be a file (a file would be read as an empty
        folder, or written under as if it were one)."""
        path = Path(self.url)
        if self.local and path.exists() and not path.is_dir():
            raise UsageError(
                f"{what} {self.url} is a file, not a folder: pass the folder it is in "
                f"({path.parent}) or the folder the results should go to"
            )

    def require_root(self, what: str) -> None:
        self.require_folder(f"--{what}" if what in ("source", "dest") else what)
        if self.is_s3:
            # An S3 prefix with no objects is an empty folder, not an error: only the bucket
            # must exist (and be readable with these credentials).
            s3.check_bucket(self.fs, self.url, self.options)
            return
        if not self.exists():
            raise SourceNotFound(f"{what} {self.url!r} does not exist: check the path (or bucket name)")

    def list_files(
        self,
        rel: str,
        suffixes: tuple[str, ...],
        exclude: tuple[str, ...] = (),
        follow_symlinks: bool = False,
    ) -> list[FileVersion]:
        """`scan`, for callers that cannot go on without a full listing: anything that could not
        be listed raises ListingError."""
        files, unreadable = self.scan(rel, suffixes, exclude, follow_symlinks)
        if unreadable:
            first = unreadable[0]
            more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
            raise ListingError(
                f"cannot list {first.uri}{more}: {first.error}; fix its permissions and run again"
            )
        return files

    def scan(
        self,
        rel: str,
        suffixes: tuple[str, ...],
        exclude: tuple[str, ...] = (),
        follow_symlinks: bool = False,
    ) -> tuple[list[FileVersion], list[Unreadable]]:
        """Every file below ROOT/rel whose name ends with one of `suffixes`, sorted by uri, and
        what could not be listed (an unreadable folder is never taken for an empty one).

        Paths with a hidden or `_`-prefixed folder below the root (`_logroll/`) and paths under
        `exclude` (uris, e.g. a destination inside the source) are skipped. A symbolic link to
        anything outside the root is skipped with one warning line, unless `follow_symlinks`.
        """
        base = join(self.root, rel) if rel else self.root
        skip = tuple(e.rstrip("/") + "/" for e in exclude)
        unreadable: list[Unreadable] = []
        if self.local:
            found, unreadable = _walk_local(self.root, base, skip, follow_symlinks)
        else:

            def find() -> dict[str, Any]:
                try:
                    return self.fs.find(base, detail=True)
                except FileNotFoundError:
                    if self.is_s3:
                        s3.check_bucket(self.fs, self.url, self.options)  # a missing bucket says so
                    return {}

            found = self._call(find, "listing", self.uri(base))
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
        return sorted(out, key=lambda f: f.uri), unreadable

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

    # ---- whole small objects: identity, lease, catalog ---------------------------------
    def read_object(self, rel: str) -> tuple[bytes, str] | None:
        """(bytes, ETag) of ROOT/rel, None when absent. A local file's ETag is its MD5, as S3's."""
        path = join(self.root, rel)
        if self.local:
            try:
                data = Path(path).read_bytes()
            except FileNotFoundError:
                return None
            return data, hashlib.md5(data, usedforsecurity=False).hexdigest()
        if self.is_s3:
            return self._call(lambda: s3.get_object(self.fs, path), "reading", self.uri(path))

        def cat() -> tuple[bytes, str] | None:  # other stores: no ETag to trust, the MD5 stands in
            try:
                data = self.fs.cat_file(path)
            except FileNotFoundError:
                return None
            return data, hashlib.md5(data, usedforsecurity=False).hexdigest()

        return self._call(cat, "reading", self.uri(path))

    def write_object(
        self, rel: str, data: bytes, *, if_match: str | None = None, create: bool = False
    ) -> str:
        """Put `data` at ROOT/rel and return its ETag: over the object whose ETag is `if_match`
        only, or (`create`) only where there is none. Losing either raises WriteConflict."""
        path = join(self.root, rel)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if self.local:
            return self._write_local(Path(path), data, md5, if_match, create)
        if not self.is_s3:  # a store without conditional writes never holds a state (workspace.py)
            self._call(lambda: self.fs.pipe_file(path, data), "writing", self.uri(path))
            return md5
        try:
            return self._call(
                lambda: s3.put_object(self.fs, path, data, if_match, create), "writing", self.uri(path)
            )
        except WriteConflict:
            # A PUT whose answer was lost and was retried finds its own bytes there: that is a success.
            if self.etag(rel) == md5:
                return md5
            raise

    def _write_local(self, path: Path, data: bytes, md5: str, if_match: str | None, create: bool) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        if create and if_match is None:
            try:
                with open(path, "xb") as fh:
                    fh.write(data)
                    os.fsync(fh.fileno())
            except FileExistsError:
                raise WriteConflict(f"{path} exists already") from None
            return md5
        current = self.read_object(str(path.relative_to(self.root)))
        if if_match is not None and (current is None or current[1] != if_match):
            raise WriteConflict(f"{path} changed meanwhile")
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return md5

    def tree(self, rel: str) -> list[tuple[str, int, dt.datetime | None]]:
        """(path relative to ROOT, size, modified) of every file below ROOT/rel, sorted."""
        base = join(self.root, rel)

        def find() -> dict[str, Any]:
            try:
                return self.fs.find(base, detail=True)
            except FileNotFoundError:
                return {}

        root = self.root.replace(os.sep, "/").rstrip("/") + "/"
        found = self._call(find, "listing", self.uri(base))
        return sorted(
            (p.replace(os.sep, "/").removeprefix(root), int(i.get("size") or 0), _modified(i))
            for p, i in found.items()
            if i.get("type") != "directory"
        )

    def remove(self, *rels: str) -> None:
        """Delete the files ROOT/rel if they are there (outputs no longer written, unreferenced parts)."""
        paths = [join(self.root, r) for r in rels]
        if not paths:
            return
        if self.local:
            for p in paths:
                Path(p).unlink(missing_ok=True)
            return

        def rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(paths)

        self._call(rm, "deleting", self.uri(paths[0]))

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


@dataclass(frozen=True)
class Unreadable:
    """A folder of the source that could not be listed, and why."""

    uri: str
    error: str


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk_local(
    root: str, base: str, skip: tuple[str, ...], follow_symlinks: bool
) -> tuple[dict[str, dict[str, Any]], list[Unreadable]]:
    """Files below `base` with their size and mtime, and the folders that could not be read.

    Unlike fsspec's walk, an unreadable folder is reported, not passed over; folders that are
    skipped anyway (hidden, `_`-prefixed, under `skip`) are not entered at all; and a link out of
    `root` is not followed unless asked (its target is never named: it is not ours to show).
    """
    real_root = os.path.realpath(root)
    found: dict[str, dict[str, Any]] = {}
    unreadable: list[Unreadable] = []
    seen: set[str] = set()  # real paths of folders entered: a link loop ends here
    stack = [base]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if not follow_symlinks and not _inside(real, real_root):
            log.warning(
                "skipped %s: a link to outside the source folder (pass --follow-symlinks to read it)", folder
            )
            continue
        if real in seen:
            continue
        seen.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            if folder != base:
                unreadable.append(Unreadable(folder, "it vanished while being listed"))
            continue  # a day folder that does not exist holds no files
        except OSError as exc:
            unreadable.append(Unreadable(folder, exc.strerror or type(exc).__name__))
            continue
        for e in entries:
            if e.name.startswith((".", "_")) or (skip and (e.path + os.sep).startswith(skip)):
                continue
            try:
                is_dir = e.is_dir()
                if e.is_symlink() and not is_dir and not follow_symlinks:
                    if not _inside(os.path.realpath(e.path), real_root):
                        log.warning(
                            "skipped %s: a link to outside the source folder (pass --follow-symlinks to read it)",
                            e.path,
                        )
                        continue
                if is_dir:
                    stack.append(e.path)
                elif e.is_file():
                    st = e.stat()
                    found[e.path] = {"type": "file", "size": st.st_size, "mtime": st.st_mtime}
            except OSError as exc:  # a dangling link, or a file gone between the listing and its stat
                if not e.is_symlink():
                    unreadable.append(Unreadable(e.path, exc.strerror or type(exc).__name__))
    return found, unreadable


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
