"""The one place that fetches feeds: conditional GET with timeouts, a size cap and a deadline.

Parsing lives in `feedparse`; `parse` and `ParsedFeed` are re-exported here so the poller
needs one import. Error messages show URLs without userinfo or query: both may hold secrets.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from syndicator.errors import FeedError
from syndicator.feedparse import ParsedFeed, parse
from syndicator.urls import redact

__all__ = ["FetchResult", "ParsedFeed", "fetch", "parse", "redact"]

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchResult:
    """One answer from a feed server: 200 with a body, or 304 (not modified) without."""

    status: int
    body: bytes | None
    headers: dict[str, str]
    etag: str | None
    last_modified: str | None
    url: str


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = 20.0,
    max_bytes: int = 10_000_000,
    deadline: float = 60.0,
    user_agent: str = "syndicator/0.1",
    session: requests.Session | None = None,
) -> FetchResult:
    """GET a feed, conditionally when validators are given; raise FeedError on any failure.

    `timeout` bounds the connect and each read. `deadline` bounds the whole exchange as
    seen from here, so a server dripping a byte a second cannot hold the poller; only the
    status line and headers escape it (they are bounded per read by `timeout`).
    """
    where = redact(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedError(f"only http(s) feed URLs can be fetched, not {where!r}")
    headers = {"User-Agent": user_agent, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    limits = _Limits(min(timeout, deadline), max_bytes, deadline, time.monotonic() + deadline)
    if session is not None:
        return _get(session, url, headers, limits)
    with requests.Session() as own:
        return _get(own, url, headers, limits)


@dataclass(frozen=True)
class _Limits:
    """The bounds of one fetch, handed down together."""

    timeout: float
    max_bytes: int
    deadline: float
    deadline_at: float  # time.monotonic() value


def _get(http: requests.Session, url: str, headers: dict[str, str], limits: _Limits) -> FetchResult:
    """One GET through `http`; HTTP errors and transport failures become FeedError."""
    where = redact(url)
    try:
        response = http.get(
            url, headers=headers, timeout=(limits.timeout, limits.timeout), stream=True
        )
    except requests.RequestException as exc:
        raise FeedError(_transport_message(exc, where, limits.timeout)) from None
    with response:
        final = response.url or url
        if response.status_code >= 400:
            raise FeedError(f"HTTP {response.status_code} from {redact(final)}")
        body = None if response.status_code == 304 else _read(response, limits, redact(final))
    log.debug(
        "fetched %s: HTTP %s, %d bytes", redact(final), response.status_code, len(body or b"")
    )
    return FetchResult(
        status=response.status_code,
        body=body,
        headers={key.lower(): value for key, value in response.headers.items()},
        # a 304 need not repeat the validators: keep the ones that still hold
        etag=response.headers.get("ETag") or headers.get("If-None-Match"),
        last_modified=response.headers.get("Last-Modified") or headers.get("If-Modified-Since"),
        url=final,
    )


def _read(response: requests.Response, limits: _Limits, where: str) -> bytes:
    """The decoded body, at most `max_bytes` of it, before the deadline.

    A timer shuts the socket down at the deadline: checking the clock between reads is not
    enough, as one read of a chunk (or of a chunk-size line) can block for as long as the
    server keeps dripping bytes.
    """
    expired = threading.Event()
    seconds = max(limits.deadline_at - time.monotonic(), 0.0)
    timer = threading.Timer(seconds, _cut, args=(response, expired))
    timer.daemon = True
    timer.start()
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > limits.max_bytes:
                raise FeedError(f"feed larger than {limits.max_bytes} bytes: {where}")
            chunks.append(chunk)
    except requests.RequestException as exc:
        if not expired.is_set():
            kind = type(exc).__name__
            raise FeedError(f"reading {where} failed ({kind})") from None
    finally:
        timer.cancel()
    if expired.is_set():
        raise FeedError(f"feed not received within the {limits.deadline:g}s deadline: {where}")
    return b"".join(chunks)


def _cut(response: requests.Response, expired: threading.Event) -> None:
    """Deadline reached: make the blocked read return by shutting the socket down."""
    expired.set()
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: the read has ended anyway
            sock.shutdown(socket.SHUT_RDWR)


def _transport_message(exc: requests.RequestException, where: str, timeout: float) -> str:
    """A FeedError message for a failure before any response arrived."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"connection to {where} timed out after {timeout:g}s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer from {where} within {timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error with {where}"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to {where}"
    if isinstance(exc, requests.TooManyRedirects):
        return f"too many redirects from {where}"
    if isinstance(exc, requests.exceptions.InvalidSchema | requests.exceptions.InvalidURL):
        return f"{where} redirected to a URL that cannot be fetched"
    return f"request to {where} failed ({type(exc).__name__})"
