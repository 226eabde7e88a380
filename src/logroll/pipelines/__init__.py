"""Pipeline registry: presets ship as modules here, imported only when asked for."""

from __future__ import annotations

import difflib
import importlib

from ..errors import UsageError
from .base import Column, Output, Pipeline

PRESETS: dict[str, str] = {
    "impressions": "logroll.pipelines.impressions",
    "consolidate": "logroll.pipelines.consolidate",
    "weblogs": "logroll.pipelines.weblogs",
}

__all__ = ["Column", "Output", "Pipeline", "PRESETS", "get_pipeline", "available"]


def available(extra: dict[str, Pipeline] | None = None) -> list[str]:
    return sorted(set(PRESETS) | set(extra or {}))


def get_pipeline(name: str, declared: dict[str, Pipeline] | None = None) -> Pipeline:
    """Find a pipeline by name among the user's declared ones, then the presets."""
    if declared and name in declared:
        return declared[name]
    if name in PRESETS:
        return importlib.import_module(PRESETS[name]).PIPELINE
    names = available(declared)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"unknown pipeline {name!r}: {hint}known pipelines: {', '.join(names)}")
