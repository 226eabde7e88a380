"""logroll: files keep landing in a bucket; turn them into clean, deduplicated per-day results."""

from __future__ import annotations

from typing import Any

__all__ = ["run", "status", "LogrollError", "RunReport"]
__version__ = "0.1.0"

# Imported on first use: `import logroll.anything` would otherwise load every engine, the catalog
# and the CLI's dependencies (three quarters of a second), which a run with nothing to do never needs.
_LAZY = {"run": "api", "status": "api", "LogrollError": "errors", "RunReport": "report"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
