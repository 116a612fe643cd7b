"""The one HTTP session factory and error mapping every connector uses.

Error messages are built from the method, the URL *path* and the platform's own error
text, never from headers or query strings, so tokens cannot leak through exceptions.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from syndicator.errors import (
    AuthExpired,
    ConnectorError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)

RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")


def make_session(user_agent: str) -> requests.Session:
    """A session with our User-Agent; timeouts are passed on every call by `send`."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    session.trust_env = False  # never route platform calls through an env-configured proxy
    return session


def join(base: str, path: str) -> str:
    """Join a configurable API base URL and a path."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def describe(method: str, url: str) -> str:
    """`POST /api/v1/statuses`: enough to locate a failure, nothing secret."""
    return f"{method} {urlsplit(url).path}"


def where(response: requests.Response) -> str:
    """`describe` for the request behind a response."""
    return describe(response.request.method or "?", response.request.url or "")


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    idempotent: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """Send one request; transport failures become error kinds, HTTP errors are left to `raise_for`.

    A failure after the request may have been sent is `OutcomeUnknown` unless the request
    is idempotent (a GET, or a POST the platform de-duplicates by key).
    """
    where = describe(method, url)
    try:
        return session.request(method, url, timeout=(min(timeout, 10.0), timeout), **kwargs)
    except requests.ConnectTimeout:
        raise RetryableError(f"{where}: connect timed out") from None
    except requests.ConnectionError as exc:
        if _before_send(exc) or idempotent:
            raise RetryableError(f"{where}: connection failed") from None
        raise OutcomeUnknown(f"{where}: connection lost after sending") from None
    except requests.Timeout:
        if idempotent:
            raise RetryableError(f"{where}: read timed out") from None
        raise OutcomeUnknown(f"{where}: no answer within {timeout:g}s") from None
    except requests.RequestException as exc:
        raise RetryableError(f"{where}: {type(exc).__name__}") from None


def _before_send(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before any byte of the request was sent."""
    text = repr(exc.args)
    markers = ("NewConnectionError", "Connection refused", "NameResolutionError", "Max retries")
    return any(m in text for m in markers) and "RemoteDisconnected" not in text


MAX_WAIT = 7 * 86400.0  # a platform asking for longer is capped: the target is re-tried then


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait (at most a week), from Retry-After or a reset header."""
    wait = _retry_after(headers, now)
    return None if wait is None else min(wait, MAX_WAIT)


def _retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date) or a reset header.

    Reset headers hold epoch seconds, delta seconds or, as Mastodon sends, an ISO-8601 time.
    """
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        if value.strip().isascii() and value.strip().isdigit():
            return float(value)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    for name in RESET_HEADERS:
        value = (headers.get(name) or "").strip()
        if value.isascii() and value.replace(".", "", 1).isdigit():
            reset = float(value)
            # epoch seconds vs. delta seconds (IETF RateLimit headers use deltas)
            return max(0.0, reset - now) if reset > 1_000_000_000 else reset
        if value:
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    return None


def raise_for(
    response: requests.Response,
    message: str,
    *,
    idempotent: bool = False,
) -> None:
    """Map an HTTP error status to an error kind; return quietly on success.

    `message` is the platform's error text extracted by the caller (never the raw body,
    which may echo credentials).
    """
    status = response.status_code
    if status < 400:
        return
    text = f"{where(response)}: HTTP {status}: {message}".rstrip(": ")
    if status == 429:
        raise RateLimited(text, retry_after=retry_after(response.headers))
    if status == 401:
        raise AuthExpired(text)
    if status in (408, 503) or (status >= 500 and idempotent):
        raise RetryableError(text, retry_after=retry_after(response.headers))
    if status >= 500:  # 500/502/504 may come after the platform acted on the request
        raise OutcomeUnknown(text, retry_after=retry_after(response.headers))
    raise PermanentError(text)


def json_or_empty(response: requests.Response) -> Any:
    """The response body as JSON, or {} when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return {}


def json_object(
    response: requests.Response,
    key: str | None = None,
    kind: type[ConnectorError] = RetryableError,
) -> dict[str, Any]:
    """The JSON object of a successful answer, which must hold `key` when one is given.

    Anything else raises `kind`: retryable by default, OutcomeUnknown for the answer to a
    write that may have landed.
    """
    body = json_or_empty(response)
    if not isinstance(body, dict) or (key is not None and key not in body):
        missing = f" without {key!r}" if key is not None else ""
        raise kind(f"{where(response)}: unexpected answer{missing}")
    return body
