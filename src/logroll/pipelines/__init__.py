"""Pipeline registry: presets ship as modules here, imported only when asked for."""

from __future__ import annotations

from ..errors import UsageError
from ..registry import Registry
from .base import Column, Output, Pipeline

# A preset module holds PIPELINE, and STREAM when it can run as a stream.
PRESETS = Registry(
    "pipeline",
    {
        "impressions": "logroll.pipelines.impressions:PIPELINE",
        "consolidate": "logroll.pipelines.consolidate:PIPELINE",
        "weblogs": "logroll.pipelines.weblogs:PIPELINE",
    },
)

__all__ = ["Column", "Output", "Pipeline", "PRESETS", "get_pipeline", "available"]


def available(extra: dict[str, Pipeline] | None = None) -> list[str]:
    return sorted(set(PRESETS) | set(extra or {}))


def get_pipeline(name: str, declared: dict[str, Pipeline] | None = None) -> Pipeline:
    """Find a pipeline by name among the user's declared ones, then the presets."""
    if declared and name in declared:
        return declared[name]
    if name in PRESETS:
        return PRESETS[name]  # type: ignore[no-any-return]
    names = available(declared)
    hint = PRESETS.hint(name, names)
    raise UsageError(f"unknown pipeline {name!r}: {hint}known pipelines: {', '.join(names)}")
