"""Where a stream's lines come from: standard input, or a file followed like `tail -F`.

Both hand out raw bytes as they arrive and wait with select(), so a signal (through the
wake-up pipe) or a quiet input never leaves the process stuck in a read.
"""

from __future__ import annotations

import logging
import os
import select
from pathlib import Path

from ..errors import Rotated, SourceNotFound

log = logging.getLogger("logroll")

READ_BYTES = 4 << 20  # a backlog is staged in few, large DuckDB passes


class StdinSource:
    name = "-"

    def __init__(self, fd: int = 0):
        self.fd = fd
        self.inode = None

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


class FollowSource:
    """A file read from a byte offset on, waiting for more at its end (`stop_at_eof`: not)."""

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

    def lag_bytes(self, position: int) -> int | None:
        try:
            return max(os.stat(self.path).st_size - position, 0)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        self.fh.close()
