"""The run report: what a run did, in numbers that add up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .dates import compact_days

# Outputs and quarantine files listed one per line in the summary; the rest are counted.
LIST_LIMIT = 20


@dataclass
class RunReport:
    pipeline: str
    run_id: int = 0
    status: str = "ok"  # ok | failed
    engine: str = "duckdb"
    state: str = ""
    files_seen: int = 0
    files_staged: int = 0
    files_rejected: list[dict[str, str]] = field(default_factory=list)
    files_failed: list[dict[str, str]] = field(default_factory=list)
    files_forgotten: list[str] = field(default_factory=list)  # gone from the source, rows retracted
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_in: int = 0
    rows_unique: int = 0
    duplicates: int = 0
    rows_out: int = 0
    partitions_built: list[str] = field(default_factory=list)
    partitions_failed: list[dict[str, str]] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)  # no input left: outputs removed
    days_missing: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    outputs_written: list[str] = field(default_factory=list)
    quarantine: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.files_staged
            or self.files_rejected
            or self.files_failed
            or self.partitions_built
            or self.partitions_failed
            or self.days_missing
            or self.files_forgotten
            or self.partitions_dropped
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nothing_to_do"] = self.nothing_to_do
        return d

    def summary(self) -> str:
        if self.nothing_to_do:
            return (
                f"{self.pipeline}: nothing to do ({self.files_seen} files seen, all already staged; "
                f"outputs up to date; state {self.state})"
            )
        lines = [
            f"{self.pipeline}: {self.status} in {self.seconds:.2f}s (run {self.run_id}, state {self.state})",
            f"  files staged {self.files_staged}, rejected {len(self.files_rejected)}, failed {len(self.files_failed)}"
            f" (of {self.files_seen} seen)",
            f"  rows read {self.rows_read:,} = valid {self.rows_valid:,} + rejected {self.rows_rejected:,}",
            f"  days built {len(self.partitions_built)}: rows in {self.rows_in:,} = unique {self.rows_unique:,}"
            f" + duplicates {self.duplicates:,}; rows out {self.rows_out:,}",
        ]
        for f in self.files_rejected:
            lines.append(f"  rejected {f['uri']}: {f['reason']}")
        for f in self.files_failed:
            lines.append(f"  FAILED {f['uri']}: {f['error']} (retried next run)")
        for p in self.partitions_failed:
            lines.append(f"  FAILED day {p['day']}: {p['error']}")
        for uri in self.files_forgotten:
            lines.append(f"  gone from the source, rows retracted: {uri}")
        if self.partitions_dropped:
            lines.append(f"  no input left, outputs removed: {compact_days(self.partitions_dropped)}")
        if self.days_missing:
            lines.append(f"  no input files for {compact_days(self.days_missing)}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        # A backfill touches hundreds of days: list the first few, count the rest.
        for q in self.quarantine[:LIST_LIMIT]:
            lines.append(f"  quarantine: {q}")
        if len(self.quarantine) > LIST_LIMIT:
            lines.append(
                f"  ... and {len(self.quarantine) - LIST_LIMIT} more quarantine files (--json lists them all)"
            )
        written = set(self.outputs_written)
        for o in self.outputs[:LIST_LIMIT]:
            mark = " (written)" if o in written else " (unchanged)"
            lines.append(f"  output: {o}{mark}")
        if len(self.outputs) > LIST_LIMIT:
            rest = self.outputs[LIST_LIMIT:]
            lines.append(
                f"  ... and {len(rest)} more outputs, {sum(1 for o in rest if o in written)} of them written"
                " (--json lists them all)"
            )
        return "\n".join(lines)
