"""Realistic multi-day samples with every anomaly (late rows, duplicates, bad rows, ...), one
module per pipeline, imported when asked for: `logroll demo PIPELINE DIR`."""

from __future__ import annotations

from ..registry import Registry

GENERATORS = Registry(
    "demo",
    {
        "impressions": "logroll.demo.impressions:impressions",
        "ingest": "logroll.demo.ingest:credit",
        "consolidate": "logroll.demo.consolidate:consolidate",
        "weblogs": "logroll.demo.weblogs:weblogs",
    },
)

__all__ = ["GENERATORS"]
