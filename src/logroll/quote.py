"""SQL text: names and strings from configs and data, quoted once, for every database."""

from __future__ import annotations


def ident(name: str) -> str:
    """A quoted SQL identifier: names from configs never reach SQL unquoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
