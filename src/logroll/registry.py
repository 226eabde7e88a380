"""Plugins by name, imported only when chosen: pipelines, engines, sinks, demos.

    ENGINES = Registry("engine", {"duckdb": "logroll.engines.duckdb_engine:DuckDBEngine", ...})
    ENGINES["duckdb"]          # imports the module, returns the class
    closest("duckbd", ENGINES) # 'duckdb': the one home of "did you mean ...?"

A module that cannot be imported for want of a driver says what to install (the entry's extra).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any

from .errors import UsageError


def closest(name: str, names: Iterable[str]) -> str | None:
    """The known name closest to a mistyped one, if any is close enough."""
    found = difflib.get_close_matches(name, list(names), n=1)
    return found[0] if found else None


def did_you_mean(name: str, names: Iterable[str], shown: str = "{!r}") -> str:
    """'did you mean 'duckdb'? ' (with the trailing space), or '' when nothing is close."""
    close = closest(name, names)
    return f"did you mean {shown.format(close)}? " if close else ""


class Registry(Mapping[str, Any]):
    """name -> "module:attribute" (or "module" for the module itself), loaded on first use."""

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, str],
        extras: Mapping[str, str] | None = None,
        missing: str = "the {kind} {name} needs {module}: {hint}",
    ):
        self.kind = kind
        self.paths = dict(entries)
        self.extras = dict(extras or {})
        self.missing = missing

    def __getitem__(self, name: str) -> Any:
        path = self.paths[name]
        module_name, _, attr = path.partition(":")
        mod = self.module(name)
        return getattr(mod, attr) if attr else mod

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def module(self, name: str) -> ModuleType:
        """The entry's module, imported now; a missing driver is a UsageError with its install hint."""
        module_name = self.paths[name].partition(":")[0]
        try:
            return importlib.import_module(module_name)
        except ImportError as exc:
            extra = self.extras.get(name)
            hint = f"pip install 'logroll[{extra}]'" if extra else "reinstall logroll"
            missing = exc.name or "a driver"
            raise UsageError(
                self.missing.format(kind=self.kind, name=name, module=missing, hint=hint)
            ) from None

    def hint(self, name: str, names: Iterable[str] | None = None, shown: str = "{!r}") -> str:
        return did_you_mean(name, self if names is None else names, shown)
