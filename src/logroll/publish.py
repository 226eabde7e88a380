"""Atomic, idempotent writes: an output is replaced only when its bytes change."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .storage.files import Storage, sha256_file

_MD5 = re.compile(r"[0-9a-f]{32}")


def publish(storage: Storage, local_file: Path, rel: str, recorded_sha: str | None) -> tuple[str, bool]:
    """Put `local_file` at DEST/rel unless the same bytes are already there.

    Returns (sha256, written). Local outputs are checked byte for byte; remote ones by their
    ETag (MD5) or the checksum the catalog recorded, which saves a download.
    """
    sha = sha256_file(local_file)
    storage.discard_stale_temps(rel)
    if storage.local:
        current = storage.checksum(rel)
    else:
        # One HEAD. An object put in one piece has the MD5 of its bytes as ETag: that compares
        # the bytes themselves, even when the catalog is new (another machine, lost state) or
        # someone replaced the object. A multipart ETag is not an MD5: trust the checksum the
        # catalog recorded when logroll put it.
        etag = storage.etag(rel)
        if etag is None:
            same = False
        elif _MD5.fullmatch(etag):
            same = etag == md5_file(local_file)
        else:
            same = recorded_sha == sha
        current = sha if same else None
    if current == sha:
        return sha, False
    storage.put_atomic(local_file, rel)
    return sha, True


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def keep_quarantine(dest: Storage, work_dir: Path, local: str | None) -> str | None:
    """Where a quarantine file lives for good: beside the outputs, under DEST/_logroll/.

    A local destination's work dir is already DEST/_logroll. A remote destination gets the file
    uploaded to DEST/_logroll/<its path in the work dir>, so rejected rows are never only on
    the machine that ran; the returned URI is what the catalog and the report point at.
    """
    if local is None or dest.local:
        return local
    path = Path(local)
    try:
        rel = path.relative_to(work_dir).as_posix()
    except ValueError:
        rel = f"quarantine/{path.name}"
    uri = dest.put_atomic(path, f"_logroll/{rel}")
    path.unlink(missing_ok=True)
    return uri
