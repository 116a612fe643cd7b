"""Short links through bit.ly (API v4), and their click counts.

Failures are the core's error kinds, so a caller treats a shortener like any platform.
Shortening is idempotent (bit.ly answers with the existing bitlink for a long URL it has
seen), so every failure before an answer is retryable. This module borrows the connectors'
HTTP helpers (`connectors._http`): one session factory and one error mapping for all.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors import _http
from syndicator.config import Settings
from syndicator.errors import AuthExpired, ConfigError, RateLimited, RetryableError

log = logging.getLogger(__name__)

UNITS = ("minute", "hour", "day", "week", "month")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_RATE_LIMITS = ("RATE_LIMIT_EXCEEDED", "MONTHLY_RATE_LIMIT_EXCEEDED")


class Bitly:
    """A bit.ly account, by its access token (Bearer), optionally limited to one group."""

    def __init__(
        self,
        token: str,
        *,
        api_base: str = "https://api-ssl.bitly.com",
        timeout: float = 10,
        user_agent: str = "syndicator",
        group_guid: str | None = None,
    ) -> None:
        """Validate the settings (ConfigError); no I/O."""
        if not isinstance(token, str) or not token.strip():
            raise ConfigError("bit.ly: token must be a non-empty string")
        parts = urlsplit(api_base)
        secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
        if not secure or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError("bit.ly: api_base must be an https:// URL")
        self.token = token.strip()
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.group_guid = group_guid or None
        self.session = _http.make_session(user_agent)
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def shorten(self, long_url: str) -> str:
        """The bitlink for `long_url` ("https://bit.ly/abc"); the same one on every call."""
        payload = {"long_url": long_url}
        if self.group_guid:
            payload["group_guid"] = self.group_guid
        link = _http.json_object(self._call("POST", "/v4/shorten", json=payload), "link")["link"]
        log.debug("shortened %s to %s", urlsplit(long_url).path, link)
        return str(link)

    def clicks(self, bitlink: str, *, unit: str = "day", units: int = -1) -> int:
        """Total clicks of a bitlink over the last `units` units (-1: all time)."""
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}")
        bare = bitlink.split("://", 1)[-1].strip("/")  # bit.ly names bitlinks without scheme
        path = f"/v4/bitlinks/{quote(bare, safe='/')}/clicks/summary"
        response = self._call("GET", path, params={"unit": unit, "units": units})
        return int(_http.json_object(response, "total_clicks")["total_clicks"])

    def check(self) -> str:
        """The login (or name) behind the token."""
        user = _http.json_object(self._call("GET", "/v4/user"))
        name = user.get("login") or user.get("name")
        if not name:
            raise RetryableError("GET /v4/user: unexpected answer without 'login'")
        return str(name)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; bit.ly's error names mapped to error kinds, the token kept out."""
        url = _http.join(self.api_base, path)
        response = _http.send(
            self.session, method, url, timeout=self.timeout, idempotent=True, **kwargs
        )
        if response.status_code < 400:
            return response
        body = _http.json_or_empty(response)
        code = str(body.get("message", "")) if isinstance(body, dict) else ""
        details = str(body.get("description", "")) if isinstance(body, dict) else ""
        message = ": ".join(p for p in (code, details) if p).replace(self.token, "[redacted]")
        text = f"{_http.describe(method, url)}: HTTP {response.status_code}: {message[:300]}"
        if code in _RATE_LIMITS or response.status_code == 429:
            wait = _next_month() if code == "MONTHLY_RATE_LIMIT_EXCEEDED" else None
            raise RateLimited(text, retry_after=wait or _http.retry_after(response.headers))
        if response.status_code == 403:  # FORBIDDEN: the token may not do this
            raise AuthExpired(text)
        _http.raise_for(response, message[:300], idempotent=True)
        return response


def _next_month(now: datetime | None = None) -> float:
    """Seconds until the first day of next month, 00:00 UTC, when bit.ly's quota resets."""
    now = now or datetime.now(UTC)
    start = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return (start - now).total_seconds()


def bitly_for(settings: Settings) -> Bitly | None:
    """The configured bit.ly account, or None when there is no [bitly] table."""
    account = settings.bitly
    if account is None:
        return None
    return Bitly(
        account.token,
        api_base=account.api_base,
        group_guid=account.group_guid,
        user_agent=settings.user_agent,
    )
