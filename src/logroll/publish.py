"""Atomic, idempotent writes: an output is replaced only when its bytes change."""

from __future__ import annotations

from pathlib import Path

from .storage import Storage, sha256_file


def publish(storage: Storage, local_file: Path, rel: str, recorded_sha: str | None) -> tuple[str, bool]:
    """Put `local_file` at DEST/rel unless the same bytes are already there.

    Returns (sha256, written). Local outputs are checked byte for byte; remote ones against
    the checksum the catalog recorded when they were put, which saves a download.
    """
    sha = sha256_file(local_file)
    if storage.local:
        current = storage.checksum(rel)
    else:
        current = recorded_sha if recorded_sha and storage.exists(rel) else None
    if current == sha:
        return sha, False
    storage.put_atomic(local_file, rel)
    return sha, True
