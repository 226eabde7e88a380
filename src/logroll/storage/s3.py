"""S3 and S3-compatible stores: credentials, endpoint, retries, and errors a user can act on.

Where credentials come from, first match wins:
  1. `--aws-config PATH`, or `config.yaml` in the current directory, with an `aws:` section
     (seed 002's format: access_key_id, secret_access_key, region, endpoint_url);
  2. the standard AWS chain, resolved by botocore: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
     AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws/{credentials,config}, SSO, instance roles.
The endpoint: `--endpoint-url`, else the config file's `endpoint_url`, else AWS_ENDPOINT_URL_S3
or AWS_ENDPOINT_URL, else a profile's endpoint_url, else AWS itself.

Secrets live only in the options handed to s3fs: they are never logged, never put in a message,
and `describe()` says where credentials came from without saying what they are.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    ConfigError,
    LogrollError,
    SourceNotFound,
    StorageError,
    TransientError,
    UsageError,
    WriteConflict,
    first_line,
)
from ..urls import redact_url, without_userinfo

if TYPE_CHECKING:  # yaml and tenacity are imported when an S3 setting is read or an S3 call made
    from tenacity import RetryCallState

log = logging.getLogger("logroll")

T = TypeVar("T")

CONFIG_NAME = "config.yaml"
CONFIG_KEYS = ("access_key_id", "secret_access_key", "session_token", "region", "endpoint_url", "profile")

# botocore and s3fs each retry on their own (5 x 5 attempts); logroll retries once, here, so the
# policy is one thing a user can read and tune: LOGROLL_S3_ATTEMPTS, LOGROLL_S3_BACKOFF (seconds).
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 20.0

_THROTTLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "BandwidthLimitExceeded",
    "XAmzContentSHA256Mismatch",
}


def is_s3(url: str) -> bool:
    return url.startswith(("s3://", "s3a://"))


def bucket_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


# ---- configuration ------------------------------------------------------------------------
def load_config(path: str | Path | None) -> tuple[dict[str, str], str | None]:
    """The `aws:` section of PATH, or of ./config.yaml when PATH is None and that file exists.

    Returns (settings, the file it came from). A config.yaml without an `aws:` section is not
    ours to read (it may belong to another tool) and is ignored unless named explicitly.
    """
    explicit = path is not None
    file = Path(path).expanduser() if explicit else Path.cwd() / CONFIG_NAME
    if not file.is_file():
        if explicit:
            raise ConfigError(f"--aws-config {str(file)!r} does not exist: give the path of a YAML file")
        return {}, None
    import yaml

    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{file}: not valid YAML{at}; fix the file or pass --aws-config") from None
    section = doc.get("aws") if isinstance(doc, dict) else None
    if section is None:
        if explicit:
            raise ConfigError(
                f"{file}: no 'aws:' section; expected aws: {{access_key_id, secret_access_key, ...}}"
            )
        return {}, None
    if not isinstance(section, dict):
        raise ConfigError(f"{file}: 'aws' must be a mapping of {', '.join(CONFIG_KEYS)}")
    unknown = sorted(str(k) for k in section if k not in CONFIG_KEYS)
    if unknown:
        # Only key names are shown: a value may be a secret.
        raise ConfigError(
            f"{file}: unknown key(s) under aws: {', '.join(unknown)}; allowed: {', '.join(CONFIG_KEYS)}"
        )
    out = {k: str(v).strip() for k, v in section.items() if v is not None and str(v).strip()}
    if ("access_key_id" in out) != ("secret_access_key" in out):
        raise ConfigError(f"{file}: aws needs both access_key_id and secret_access_key, or neither")
    return out, str(file)


def env_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def storage_options(
    endpoint_url: str | None = None, aws_config: str | Path | None = None, profile: str | None = None
) -> dict[str, Any]:
    """s3fs options from flags, a config file and the AWS chain (in that order of precedence)."""
    conf, file = load_config(aws_config)
    endpoint = endpoint_url or conf.get("endpoint_url") or env_endpoint()
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise StorageError(f"endpoint URL {redact_url(endpoint)!r} must start with http:// or https://")
    opts: dict[str, Any] = {}
    key = secret = None
    if endpoint:
        # http://KEY:SECRET@host: botocore takes no user info in an endpoint; the pair is the
        # credentials (a config file's own pair wins), and the endpoint is shown without it.
        endpoint, key, secret = without_userinfo(endpoint)
        opts["endpoint_url"] = endpoint
    if "access_key_id" in conf:
        opts["key"] = conf["access_key_id"]
        opts["secret"] = conf["secret_access_key"]
        if "session_token" in conf:
            opts["token"] = conf["session_token"]
    elif key and secret:
        opts["key"], opts["secret"] = key, secret
        file = "the --endpoint-url"
    if conf.get("region"):
        opts["client_kwargs"] = {"region_name": conf["region"]}
    if profile or conf.get("profile"):
        opts["profile"] = profile or conf["profile"]
    if "key" not in opts:
        opts["_logroll_credentials"] = "the AWS default chain"
    else:
        opts["_logroll_credentials"] = file if file == "the --endpoint-url" else f"{file} (aws:)"
    return opts


def describe(options: dict[str, Any]) -> str:
    """Where the credentials and endpoint come from, without any secret."""
    creds = options.get("_logroll_credentials") or "the AWS default chain"
    if options.get("profile"):
        creds += f", profile {options['profile']!r}"
    return f"credentials from {creds}, endpoint {endpoint_of(options)}"


def endpoint_of(options: dict[str, Any]) -> str:
    """The endpoint as it may be shown (credentials in it masked)."""
    endpoint = options.get("endpoint_url") or env_endpoint()
    return redact_url(endpoint) if endpoint else "AWS S3"


def filesystem_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """What s3fs gets: the user's options plus logroll's timeouts and single retry layer."""
    opts = {k: v for k, v in (options or {}).items() if not k.startswith("_logroll")}
    config = dict(opts.pop("config_kwargs", None) or {})
    # Retries are done by `call` below (tenacity); botocore's own would multiply them.
    config.setdefault("retries", {"total_max_attempts": 1})
    config.setdefault("connect_timeout", 10)
    config.setdefault("read_timeout", 60)
    opts["config_kwargs"] = config
    # A listing is taken fresh for every run: a cached one would hide objects that arrived since.
    opts.setdefault("use_listings_cache", False)
    return opts


def tune(fs: Any) -> None:
    """s3fs retries retryable errors 5 times inside each call; logroll's `call` owns retrying."""
    if hasattr(fs, "retries"):
        fs.retries = 1


# ---- errors --------------------------------------------------------------------------------
def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _client_error(exc: BaseException) -> tuple[str, int] | None:
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict) and "Error" in response:
            code = str(response["Error"].get("Code") or "")
            status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            return code, status
    return None


def _named(exc: BaseException, *names: str) -> bool:
    return any(type(e).__name__ in names for e in _chain(exc))


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, timeouts and dropped connections: worth another try."""
    if isinstance(exc, LogrollError):
        return False
    found = _client_error(exc)
    if found is not None:
        code, status = found
        return (
            code in _THROTTLE_CODES
            or status in (429, 500, 502, 503, 504)
            or code
            in {
                "500",
                "502",
                "503",
                "504",
            }
        )
    if _named(exc, "NoCredentialsError", "PartialCredentialsError", "SSLError", "EndpointConnectionError"):
        # EndpointConnectionError is botocore's "could not connect": a wrong --endpoint-url looks
        # exactly like this, so it is retried only by `call(..., connect_retries=True)`.
        return False
    for e in _chain(exc):
        # (asyncio.TimeoutError and socket.timeout are TimeoutError since Python 3.11)
        if isinstance(e, ConnectionError | TimeoutError):
            return True
    return _named(
        exc,
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "ResponseStreamingError",
        "IncompleteReadError",
        "HTTPClientError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ClientOSError",
        "ClientConnectionError",
        "ClientConnectorError",
        "FSTimeoutError",
        "ResponseParserError",
        "IncompleteRead",
    )


def _is_connect_error(exc: BaseException) -> bool:
    return _named(exc, "EndpointConnectionError", "ClientConnectorError")


def translate(exc: BaseException, url: str, options: dict[str, Any] | None) -> LogrollError | None:
    """A one-line, actionable error for problems that no retry fixes; None when not one of those."""
    if isinstance(exc, LogrollError):
        return exc
    endpoint = endpoint_of(options or {})
    bucket = bucket_of(url) if "://" in url else url
    if _named(exc, "NoCredentialsError", "PartialCredentialsError"):
        return StorageError(
            f"no AWS credentials found for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE, or put an aws: section in config.yaml (or pass --aws-config)"
        )
    if _named(exc, "SSLError"):
        return StorageError(
            f"TLS handshake with {endpoint} failed: check --endpoint-url (http:// or https://)"
        )
    if _is_connect_error(exc):
        return StorageError(
            f"cannot connect to the S3 endpoint {endpoint}: check --endpoint-url / AWS_ENDPOINT_URL and the network"
        )
    found = _client_error(exc)
    if found is None:
        if isinstance(exc, PermissionError):
            return StorageError(f"access denied to {url}: check the credentials and the bucket policy")
        return None
    code, status = found
    if code in ("NoSuchBucket",):
        return SourceNotFound(f"bucket {bucket!r} does not exist at {endpoint}: check the bucket name")
    if code == "InvalidBucketName":
        return StorageError(f"{bucket!r} is not a valid bucket name: check the URL")
    if code == "InvalidAccessKeyId":
        return StorageError(
            f"the AWS access key is not known to {endpoint}: check AWS_ACCESS_KEY_ID, AWS_PROFILE or config.yaml"
        )
    if code == "SignatureDoesNotMatch":
        return StorageError(
            f"the AWS secret key does not match the access key at {endpoint}: "
            "check AWS_SECRET_ACCESS_KEY, AWS_PROFILE or config.yaml"
        )
    if code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken", "ExpiredTokenException"):
        return StorageError("the AWS session token has expired or is invalid: refresh your credentials")
    if code in ("AccessDenied", "AllAccessDisabled", "AccountProblem", "403") or status == 403:
        return StorageError(
            f"access denied to {url}: the credentials lack permission (s3:ListBucket, s3:GetObject, "
            "s3:PutObject); check the IAM or bucket policy"
        )
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
        return StorageError(
            f"bucket {bucket!r} is in another region: set AWS_DEFAULT_REGION (or region in config.yaml)"
        )
    return None


def one_line(exc: BaseException) -> str:
    """The first line of an error; for an S3 error response, its code and message."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict) and "Error" in response:
            code = str(response["Error"].get("Code") or "")
            message = str(response["Error"].get("Message") or "").strip()
            if code or message:
                return ": ".join(x for x in (code, message.splitlines()[0] if message else "") if x)
    return first_line(exc)


# ---- retries -------------------------------------------------------------------------------
def _policy() -> tuple[int, float]:
    try:
        attempts = max(1, int(os.environ.get("LOGROLL_S3_ATTEMPTS", DEFAULT_ATTEMPTS)))
        backoff = max(0.0, float(os.environ.get("LOGROLL_S3_BACKOFF", DEFAULT_BACKOFF)))
    except ValueError:
        raise ConfigError("LOGROLL_S3_ATTEMPTS must be an integer and LOGROLL_S3_BACKOFF a number") from None
    return attempts, backoff


def call(
    fn: Callable[[], T],
    what: str,
    url: str,
    options: dict[str, Any] | None = None,
    connect_attempts: int | None = None,
) -> T:
    """Run one store operation, retrying transient faults with exponential backoff and jitter.

    Faults no retry fixes (missing bucket, bad credentials, denied access, unreachable
    endpoint) become a one-line StorageError; a transient fault that outlasts the retries is
    raised as a TransientError saying how many attempts were made. `connect_attempts` caps the
    attempts when the endpoint refuses connections (a wrong --endpoint-url looks just like that).
    """
    from tenacity import Retrying, stop_after_attempt, wait_none, wait_random_exponential

    attempts, backoff = _policy()
    max_connect = min(connect_attempts or attempts, attempts)

    def retryable(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return False
        if _is_connect_error(exc):
            return state.attempt_number < max_connect
        return is_transient(exc)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s %s: %s; retrying (attempt %d of %d)",
            what,
            url,
            one_line(exc) if exc else "?",
            state.attempt_number + 1,
            attempts,
        )

    retrying = Retrying(
        retry=retryable,
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=backoff, max=MAX_BACKOFF) if backoff else wait_none(),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except Exception as exc:
        fatal = translate(exc, url, options)
        if fatal is not None:
            raise fatal from None
        if is_transient(exc):
            made = retrying.statistics.get("attempt_number", attempts)
            raise TransientError(
                f"{what} {url} failed after {made} attempts ({one_line(exc)}); run again to retry"
            ) from exc
        raise


def check_bucket(fs: Any, url: str, options: dict[str, Any] | None) -> None:
    """Fail fast, with a one-line reason, when the bucket of `url` cannot be listed.

    ListObjectsV2 (not HeadBucket) because its error body says *why*: NoSuchBucket,
    AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch.
    """
    bucket = bucket_of(url)
    # Two connection attempts only: an endpoint that refuses them is most likely a wrong URL.
    call(lambda: fs.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1), "listing", url, options, 2)


def options_for(
    urls: list[str | None], endpoint_url: str | None = None, aws_config: str | Path | None = None
) -> dict[str, Any] | None:
    """Storage options for a command touching `urls`: resolved (and config.yaml read) only when
    one of them is on S3, so a local run never depends on AWS settings."""
    if not any(u and is_s3(u) for u in urls):
        if endpoint_url:
            log.warning("--endpoint-url is ignored: neither source nor destination is an s3:// URL")
        return None
    opts = storage_options(endpoint_url, aws_config)
    log.info("S3: %s", describe(opts))
    return opts


# ---- whole objects with their ETag, and conditional writes ---------------------------------------
def _is_conflict(exc: BaseException) -> bool:
    found = _client_error(exc)
    if found is None:
        return False
    code, status = found
    # 412: If-Match / If-None-Match failed; 409: AWS's answer to two conditional writes at once.
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409") or status in (412, 409)


def get_object(fs: Any, path: str) -> tuple[bytes, str] | None:
    """(the bytes, the ETag) of one object from one response, so they always belong together;
    None when there is no such object."""
    from fsspec.asyn import sync

    bucket, key, _ = fs.split_path(path)

    async def get() -> tuple[bytes, str] | None:
        try:
            resp = await fs._call_s3("get_object", Bucket=bucket, Key=key)
        except FileNotFoundError:
            return None
        try:
            data = await resp["Body"].read()
        finally:
            resp["Body"].close()
        return data, str(resp.get("ETag") or "").strip('"')

    return sync(fs.loop, get)


def put_object(fs: Any, path: str, data: bytes, if_match: str | None = None, create: bool = False) -> str:
    """PUT `data` at `path` and return its new ETag. `if_match`: only over the object with that
    ETag; `create`: only if there is no object yet. Either failing raises WriteConflict."""
    bucket, key, _ = fs.split_path(path)
    match: dict[str, str] = {}
    if if_match is not None:
        match["IfMatch"] = f'"{if_match}"'
    elif create:
        match["IfNoneMatch"] = "*"
    try:
        out = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **match)
    except Exception as exc:
        if _is_conflict(exc) or (if_match is not None and isinstance(exc, FileNotFoundError)):
            raise WriteConflict(f"s3://{bucket}/{key} changed meanwhile") from None
        raise
    fs.invalidate_cache(path)
    return str(out.get("ETag") or "").strip('"')


# S3's rules for bucket names: 3-63 characters, lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def bucket_url(name: str) -> str:
    """s3://NAME for a bucket name (an s3:// prefix is accepted), checked against S3's rules."""
    bucket = name.strip().removeprefix("s3://").rstrip("/")
    if not _BUCKET.match(bucket):
        raise UsageError(f"bucket name {name!r} is not valid: use 3-63 lowercase letters, digits, '.' or '-'")
    return f"s3://{bucket}"
