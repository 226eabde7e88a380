"""Where a stream's lines come from: standard input, a file followed like `tail -F`, or a
compressed file (read whole, once: an archive does not grow).

They hand out raw bytes as they arrive and wait with select(), so a signal (through the
wake-up pipe) or a quiet input never leaves the process stuck in a read.
"""

from __future__ import annotations

import logging
import os
import select
from pathlib import Path
from typing import Any

from ..errors import Rotated, SourceNotFound
from ..stage.decode import compression_of, decompressed_chunks
from ..stage.dialect import Dialect

log = logging.getLogger("logroll")

READ_BYTES = 4 << 20  # a backlog is staged in few, large DuckDB passes


class StdinSource:
    name = "-"
    failure: str | None = None  # a plain input cannot be damaged

    def __init__(self, fd: int = 0):
        self.fd = fd
        self.inode = None

    def identity(self) -> dict[str, Any]:
        return {"inode": None}

    def read(self, timeout: float, wake_fd: int | None) -> bytes | None:
        """New bytes, b"" when nothing came within `timeout`, None at end of input."""
        fds = [self.fd] + ([wake_fd] if wake_fd is not None else [])
        ready, _, _ = select.select(fds, [], [], max(timeout, 0))
        if self.fd not in ready:
            return b""
        data = os.read(self.fd, READ_BYTES)
        return data if data else None

    def lag_bytes(self, position: int) -> int | None:
        return None

    def close(self) -> None:
        pass


def follow_source(
    path: str, state: dict[str, Any], stop_at_eof: bool, compression: str = "auto"
) -> FollowSource | ArchiveSource:
    """The source for `--follow path`, resumed from the checkpoint `state`; `compression`: the
    pipeline's input.compression (auto: by suffix)."""
    offset, inode = int(state.get("offset", 0)), state.get("inode")
    kind = compression_of(Path(path), Dialect(compression=compression))
    if kind != "none":
        return ArchiveSource(path, offset, inode, state.get("archive_size"), kind)
    return FollowSource(path, offset, inode, stop_at_eof)


class FollowSource:
    """A file read from a byte offset on, waiting for more at its end (`stop_at_eof`: not)."""

    failure: str | None = None

    def __init__(self, path: str, offset: int, inode: int | None, stop_at_eof: bool = False):
        self.path = str(Path(path).expanduser().absolute())
        self.name = self.path
        self.stop_at_eof = stop_at_eof
        try:
            self.fh = open(self.path, "rb")
        except FileNotFoundError:
            raise SourceNotFound(f"--follow {path}: no such file; check the path") from None
        st = os.fstat(self.fh.fileno())
        self.inode = st.st_ino
        self.resumed = True
        if offset and (inode != st.st_ino or st.st_size < offset):
            log.warning(
                "%s was replaced or truncated since the last checkpoint (byte %d): reading it from the start",
                self.path,
                offset,
            )
            offset = 0
            self.resumed = False
        self.start_offset = offset
        self.fh.seek(offset)

    def read(self, timeout: float, wake_fd: int | None) -> bytes | None:
        data = self.fh.read(READ_BYTES)
        if data:
            return data
        if self.stop_at_eof:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # being rotated: wait for the new file
        if st is not None and (st.st_ino != self.inode or st.st_size < self.fh.tell()):
            self.fh.close()
            self.fh = open(self.path, "rb")
            self.inode = os.fstat(self.fh.fileno()).st_ino
            log.warning("%s was replaced or truncated: reading the new file from the start", self.path)
            raise Rotated()
        select.select([wake_fd] if wake_fd is not None else [], [], [], max(timeout, 0))
        return b""

    def identity(self) -> dict[str, Any]:
        return {"inode": self.inode}

    def lag_bytes(self, position: int) -> int | None:
        try:
            return max(os.stat(self.path).st_size - position, 0)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        self.fh.close()


class ArchiveSource:
    """A compressed file (.gz, .zst, .bz2, .xz) given to --follow: an archive cannot be tailed, so
    it is read whole, once, and the input ends. The checkpoint's offset counts decompressed
    bytes: a restart decompresses again and skips them, so a file read to its end gives nothing
    more; another archive under the name (inode or size changed) is read from its start. A
    truncated or corrupt archive ends the input early, with `failure` saying why."""

    def __init__(self, path: str, offset: int, inode: int | None, size: int | None, kind: str):
        self.path = str(Path(path).expanduser().absolute())
        self.name = self.path
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise SourceNotFound(f"--follow {path}: no such file; check the path") from None
        self.inode, self.size = st.st_ino, st.st_size
        self.resumed = True
        if offset and (inode != st.st_ino or size != st.st_size):
            log.warning(
                "%s is another archive than at the last checkpoint: reading it from the start", self.path
            )
            offset = 0
            self.resumed = False
        self.start_offset = offset
        self._skip = offset
        self._failure: list[str] = []
        self._chunks = decompressed_chunks(Path(self.path), kind, self._failure, chunk=READ_BYTES)

    @property
    def failure(self) -> str | None:
        return self._failure[0] if self._failure else None

    def identity(self) -> dict[str, Any]:
        return {"inode": self.inode, "archive_size": self.size}

    def read(self, timeout: float, wake_fd: int | None) -> bytes | None:
        for data in self._chunks:
            if self._skip:  # committed before a restart
                if len(data) <= self._skip:
                    self._skip -= len(data)
                    continue
                data, self._skip = data[self._skip :], 0
            if data:
                return data
        return None

    def lag_bytes(self, position: int) -> int | None:
        return None

    def close(self) -> None:
        self._chunks.close()
