"""What staging one file version hands back, and the folder its parts go to."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Staged:
    rows_read: int
    rows_valid: int
    rows_rejected: int
    parts: dict[str, tuple[int, str]] = field(default_factory=dict)
    quarantine: str | None = None
    part_dir: Path | None = None  # where the parts were written
    # The independent count: records = header + skipped + blank + rows_read, where rows_read =
    # rows_valid + rows_rejected (JSON: records are non-blank lines or array elements, and blank
    # lines; no header, nothing skipped).
    records: int = 0
    header: int = 0
    blank: int = 0
    skipped: int = 0

    def counts(self) -> dict[str, int]:
        """What the catalog records of the file version."""
        return {
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "records": self.records,
            "records_header": self.header,
            "records_blank": self.blank,
            "records_skipped": self.skipped,
        }


def file_key(uri: str, version: str) -> str:
    """A stable folder name for one file version's staged output."""
    return hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()[:20]


def part_dir_for(staged_root: Path, uri: str, version: str) -> Path:
    """A folder to stage a file version into that does not exist yet.

    An existing one may be what the catalog points at (`--force` re-stages the same version):
    rewriting it in place, a kill would leave the catalog pointing at half-written parts. The
    parts a commit replaces are removed after it; leftovers of a killed run by the garbage
    collection.
    """
    part_dir = staged_root / file_key(uri, version)
    if part_dir.exists():
        part_dir = part_dir.with_name(f"{part_dir.name}-{secrets.token_hex(4)}")
    return part_dir
