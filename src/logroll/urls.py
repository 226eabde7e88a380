"""URLs of sources, destinations and states: their scheme, their #table, their identity, and
how they are shown (never with a password).

    scheme("postgresql+psycopg://u:pw@h/db#t") -> "postgresql+psycopg"
    split_table("duckdb:///x.duckdb#t")        -> ("duckdb:///x.duckdb", "t")
    redact_url("postgresql://u:pw@h/db")           -> "postgresql://u:***@h/db"
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_PASSWORD = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***: what logs, reports and errors show."""
    return _PASSWORD.sub(r"\1***\3", str(url))


def scheme(url: str) -> str:
    """The lower-cased scheme, or "" for a plain path."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def split_table(url: str) -> tuple[str, str | None]:
    """(the URL without its #fragment, the fragment: a table name), the fragment None when absent."""
    base, sep, table = url.partition("#")
    return base, (table if sep else None)


def local_path(rest: str) -> str:
    """The file path of `scheme:///path` (`rest` is what follows `scheme://`): relative after three
    slashes, absolute after four, as in SQLAlchemy's sqlite URLs."""
    if rest.startswith("/"):
        rest = rest[1:]
    return str(Path(rest).expanduser()) if rest else ""


def file_of(url: str) -> Path:
    """The local file or folder of a `duckdb:///...` or `parquet:///...` URL (fragment dropped)."""
    return Path(local_path(split_table(url)[0].split("://", 1)[1]))


def postgres_conninfo(url: str) -> tuple[str, str | None]:
    """(libpq conninfo URL without the #fragment, the fragment)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, "")), (parts.fragment or None)


def postgres_key(url: str, with_user: bool = True) -> tuple[str, ...]:
    """(host, port, database[, user]) of a PostgreSQL URL (any driver suffix, #fragment ignored)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(postgres_conninfo(url.replace("+psycopg", "", 1))[0])
    fields = (("host", "localhost"), ("port", "5432"), ("dbname", ""))
    if with_user:
        fields += (("user", ""),)
    return tuple(str(info.get(k) or d) for k, d in fields)


def identity(dest: str) -> str:
    """What makes two --dest URLs the same destination: database and table, or file and table."""
    kind = scheme(dest)
    rest, _, table = dest.split("://", 1)[1].partition("#")
    if kind.startswith("postgres"):
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(postgres_conninfo(dest)[0])
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        return f"postgresql://{where}#{table}"
    return f"{kind}://{Path(local_path(rest)).absolute()}#{table}"
