"""URLs of sources, destinations, states and endpoints: their scheme, their #table, their
identity, and how they are shown (never with a secret).

    scheme("postgresql+psycopg://u:pw@h/db#t")  -> "postgresql+psycopg"
    split_table("duckdb:///x.duckdb#t")         -> ("duckdb:///x.duckdb", "t")
    redact_url("postgresql://u:p@w@h/db?password=x&sslmode=require")
                                                -> "postgresql://u:***@h/db?password=***&sslmode=require"
    identity("s3://b/results/", "http://k:s@127.0.0.1:9000") -> "s3://127.0.0.1:9000/b/results"

`redact_url` is the one place a URL loses its secrets: it parses the URL (never a pattern over
free text) and replaces the password of the user info (split on the *last* `@`, so a raw `@` in
a password hides it whole) and the value of every query parameter whose name says it is secret.
It also remembers what it removed, so that `scrub` can take those exact strings out of a
message written by a library that echoes the URL it was given (SQLAlchemy, psycopg, botocore).
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

MASK = "***"

# A query parameter is secret when its name holds one of these (password=, sslkey=, X-Amz-Signature=,
# access_token=, aws_secret_access_key=, sslpassword=, credential=...).
SECRET_NAMES = ("secret", "token", "key", "password", "passwd", "pwd", "signature", "credential")

# Secrets shorter than this are not scrubbed out of free text: "***" in place of every "ab" of a
# message would garble it; they are still never part of a URL logroll shows.
_MIN_SCRUB = 4
_seen: set[str] = set()
_seen_lock = threading.Lock()


def _is_secret_name(name: str) -> bool:
    lowered = unquote_plus(name).lower()
    return any(word in lowered for word in SECRET_NAMES)


def split_userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """(user, password, host[:port]) of a URL's netloc, split on its last `@`; None when absent."""
    if "@" not in netloc:
        return None, None, netloc
    userinfo, _, host = netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    return user, (password if sep else None), host


def _remember(*values: str | None) -> None:
    with _seen_lock:
        for v in values:
            if v:
                # libpq splits user info on the *first* @, so its messages may quote any piece
                # of a password holding a raw @ ("could not translate host name "tail@host"").
                for piece in {v, unquote(v), *v.split("@")}:
                    if piece:
                        _seen.add(piece)


def redact_url(url: str) -> str:
    """The URL with every secret replaced by ***: what logs, reports, errors and catalogs show.

    A plain path is returned as it is; a URL that cannot be parsed is shown as `scheme://***`.
    """
    text = str(url)
    if "://" not in text:
        return text
    kind = text.split("://", 1)[0]
    try:
        parts = urlsplit(text)
        user, password, host = split_userinfo(parts.netloc)
        if password is None and not host.startswith("[") and ":" in host:
            # `u:pa/ss@h` or `u:pa#ss@h`: a password holding a raw /, ? or #, cut short by the
            # parser; what follows the ':' is no port, and the rest may be the password's tail.
            port = host.rsplit(":", 1)[1]
            if port and not port.isdigit():
                return f"{kind}://{MASK}"
        netloc = parts.netloc
        if password is not None:
            _remember(password)
            netloc = f"{user}:{MASK}@{host}"
        query = _redact_query(parts.query)
        # Not urlunsplit: for a scheme it does not know (duckdb, parquet, sqlite) it drops an
        # empty netloc's "//", and duckdb:////abs/f.duckdb came back as duckdb://abs/f.duckdb.
        text = f"{kind}://{netloc}{parts.path}"
        return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    except ValueError:  # e.g. an unclosed [ in the host
        return f"{kind}://{MASK}"


def _redact_query(query: str) -> str:
    """The query string with secret values masked; every other parameter kept exactly as written."""
    if not query:
        return query
    out = []
    for item in query.split("&"):
        name, sep, value = item.partition("=")
        if sep and value and _is_secret_name(name):
            _remember(value, unquote_plus(value))
            out.append(f"{name}={MASK}")
        else:
            out.append(item)
    return "&".join(out)


def has_secret(url: str) -> bool:
    """Whether showing `url` as it is would show a secret."""
    return redact_url(url) != str(url)


def scrub(text: str) -> str:
    """`text` with every secret `redact_url` has removed from a URL in this process masked: for
    messages of libraries that echo the URL they were given."""
    with _seen_lock:
        secrets = sorted((s for s in _seen if len(s) >= _MIN_SCRUB), key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def without_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user and password, the user, the password): an endpoint URL written as
    http://KEY:SECRET@host carries credentials that belong in the client's options instead."""
    parts = urlsplit(url)
    user, password, host = split_userinfo(parts.netloc)
    _remember(password)
    if user is None:
        return url, None, None
    return (
        urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)),
        unquote(user),
        (unquote(password) if password is not None else None),
    )


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
    info = _postgres_fields(url)
    fields = (("host", "localhost"), ("port", "5432"), ("dbname", ""))
    if with_user:
        fields += (("user", ""),)
    return tuple(str(info.get(k) or d) for k, d in fields)


def _postgres_fields(url: str) -> dict[str, str]:
    """host, port, dbname and user of a PostgreSQL URL, as libpq reads them (query values win)."""
    conninfo = postgres_conninfo(url)[0]
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # no driver: the URL's own parts, which is what libpq reads too
        parts = urlsplit(conninfo)
        user, _, host = split_userinfo(parts.netloc)
        hostname, _, port = host.rpartition(":") if host.rpartition(":")[2].isdigit() else (host, "", "")
        fields = {
            "host": hostname,
            "port": port,
            "dbname": unquote(parts.path.lstrip("/")),
            "user": user or "",
        }
        for item in parts.query.split("&"):
            name, _, value = item.partition("=")
            if name in fields:
                fields[name] = unquote_plus(value)
        return fields
    return {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}


def endpoint_identity(endpoint: str | None) -> str:
    """host:port of an S3 endpoint (AWS itself when None: every *.amazonaws.com is one store)."""
    if not endpoint:
        return "s3.amazonaws.com:443"
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    host = (parts.hostname or "").lower()
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return "s3.amazonaws.com:443"
    port = parts.port or (80 if parts.scheme == "http" else 443)
    return f"{host}:{port}"


def identity(url: str, endpoint: str | None = None) -> str:
    """What makes two URLs the same destination or state, whatever their spelling.

    Object stores: scheme + endpoint (host:port) + bucket + path; databases: host:port/dbname and
    #table; files: the resolved path (and #table). User, password, query options and trailing
    slashes change nothing; two endpoints with one bucket name are two stores.
    """
    kind = scheme(url)
    if not kind or kind == "file":
        return f"file://{Path(url.removeprefix('file://')).expanduser().resolve()}"
    base, table = split_table(url)
    rest = base.split("://", 1)[1]
    if kind.startswith("postgres"):
        info = _postgres_fields(url)
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        return f"postgresql://{where}#{table or ''}"
    if kind in ("duckdb", "parquet", "sqlite"):
        return f"{kind}://{Path(local_path(rest)).absolute()}#{table or ''}"
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if kind in ("s3", "s3a"):
        return f"s3://{endpoint_identity(endpoint)}/{parts.hostname or ''}{path}"
    host = split_userinfo(parts.netloc)[2].lower()
    return f"{kind}://{host}{path}"
