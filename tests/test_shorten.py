"""bit.ly client against a local HTTP server speaking the documented API v4 shapes."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from syndicator.errors import (
    AuthExpired,
    ConfigError,
    ConnectorError,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.shorten import Bitly, _next_month

TOKEN = "4f2c0b7e9d1a8c3e5f6a7b8c9d0e1f2a3b4c5d6e"
LONG = "https://blog.example/p/1/?utm_source=x&utm_medium=social"
BITLINK = {
    "created_at": "2026-08-01T14:58:20+0000",
    "id": "bit.ly/3xYzAbC",
    "link": "https://bit.ly/3xYzAbC",
    "custom_bitlinks": [],
    "long_url": LONG,
    "archived": False,
    "tags": [],
    "deeplinks": [],
    "references": {"group": "https://api-ssl.bitly.com/v4/groups/Ba1bc23dE4F"},
}


class FakeBitly:
    """Routes on a pytest-httpserver that answer and record what they were sent."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.seen: list[tuple[str, str, dict[str, str], dict[str, str], Any]] = []

    def on(
        self,
        method: str,
        path: str,
        body: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        def handler(request: Request) -> Response:
            data = request.get_data()
            self.seen.append(
                (
                    request.method,
                    request.path,
                    dict(request.headers),
                    request.args.to_dict(),
                    json.loads(data) if data else None,
                )
            )
            time.sleep(delay)
            text = body if isinstance(body, str) else json.dumps(body)
            return Response(text, status, headers, content_type="application/json")

        self.server.expect_request(path, method=method).respond_with_handler(handler)


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[FakeBitly]:
    yield FakeBitly(httpserver)
    httpserver.check_assertions()


def client(api: FakeBitly, **options: Any) -> Bitly:
    return Bitly(TOKEN, api_base=api.server.url_for("/"), **options)


def bitly_error(message: str, description: str = "", resource: str = "bitlinks") -> dict:
    """bit.ly's v4 error body."""
    return {"message": message, "resource": resource, "description": description}


def expect_error(kind: type[ConnectorError], call: Any, match: str | None = None) -> ConnectorError:
    with pytest.raises(kind, match=match) as info:
        call()
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.args)
    return info.value


# --- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "api_base"),
    [
        ("", "https://api-ssl.bitly.com"),
        ("  ", "https://api-ssl.bitly.com"),
        (TOKEN, "http://api-ssl.bitly.com"),
        (TOKEN, "api-ssl.bitly.com"),
        (TOKEN, "https://api-ssl.bitly.com/?token=x"),
    ],
)
def test_invalid_settings(token: str, api_base: str) -> None:
    with pytest.raises(ConfigError, match="bit.ly") as info:
        Bitly(token, api_base=api_base)
    assert TOKEN not in str(info.value)


# --- shorten ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201])  # 200: bit.ly had this long URL already
def test_shorten(api: FakeBitly, status: int) -> None:
    api.on("POST", "/v4/shorten", BITLINK, status)
    assert client(api, user_agent="syndicator/0.1").shorten(LONG) == "https://bit.ly/3xYzAbC"
    [(method, path, headers, _, body)] = api.seen
    assert (method, path) == ("POST", "/v4/shorten")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "syndicator/0.1"
    assert body == {"long_url": LONG}


def test_shorten_in_a_group(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", BITLINK, 201)
    client(api, group_guid="Ba1bc23dE4F").shorten(LONG)
    assert api.seen[0][4] == {"long_url": LONG, "group_guid": "Ba1bc23dE4F"}


def test_answer_without_link_is_retryable(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", {"id": "bit.ly/x"})
    expect_error(RetryableError, lambda: client(api).shorten(LONG), "without 'link'")


# --- clicks and check ------------------------------------------------------------------


def test_clicks(api: FakeBitly) -> None:
    summary = {"unit_reference": "2026-08-01T14:58:20+0000", "total_clicks": 57, "units": 7}
    api.on("GET", "/v4/bitlinks/bit.ly/3xYzAbC/clicks/summary", {**summary, "unit": "day"})
    bitly = client(api)
    assert bitly.clicks("https://bit.ly/3xYzAbC", units=7) == 57
    assert bitly.clicks("bit.ly/3xYzAbC", unit="week") == 57
    (method, _, headers, args, _), second = api.seen
    assert method == "GET" and headers["Authorization"] == f"Bearer {TOKEN}"
    assert args == {"unit": "day", "units": "7"}
    assert second[3] == {"unit": "week", "units": "-1"}


def test_clicks_unit_is_checked(api: FakeBitly) -> None:
    with pytest.raises(ValueError, match="unit"):
        client(api).clicks("bit.ly/x", unit="year")


def test_check(api: FakeBitly) -> None:
    user = {"login": "exampleblog", "name": "Example Blog", "default_group_guid": "Ba1bc23dE4F"}
    api.on("GET", "/v4/user", user)
    assert client(api).check() == "exampleblog"
    assert api.seen[0][2]["Authorization"] == f"Bearer {TOKEN}"


def test_check_falls_back_to_the_name(api: FakeBitly) -> None:
    api.on("GET", "/v4/user", {"name": "Example Blog"})
    assert client(api).check() == "Example Blog"


# --- errors ----------------------------------------------------------------------------


def test_rate_limited(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", bitly_error("RATE_LIMIT_EXCEEDED"), 429)
    error = expect_error(RateLimited, lambda: client(api).shorten(LONG), "RATE_LIMIT_EXCEEDED")
    assert error.retry_after is None  # bit.ly sends no reset header: the caller's default


def test_monthly_limit_waits_for_next_month(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", bitly_error("MONTHLY_RATE_LIMIT_EXCEEDED"), 429)
    error = expect_error(RateLimited, lambda: client(api).shorten(LONG), "MONTHLY")
    now = datetime.now(UTC)
    start = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert error.retry_after == pytest.approx((start - now).total_seconds(), abs=5)


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 8, 31, 23, 0, tzinfo=UTC), 3600.0),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), 60.0),  # into January
        (datetime(2026, 2, 1, 0, 0, tzinfo=UTC), 28 * 86400.0),
    ],
)
def test_next_month(now: datetime, seconds: float) -> None:
    assert _next_month(now) == seconds


def test_invalid_token_is_auth_expired(api: FakeBitly) -> None:
    api.on("GET", "/v4/user", bitly_error("INVALID_ACCESS_TOKEN", resource="user"), 401)
    expect_error(AuthExpired, client(api).check, "HTTP 401: INVALID_ACCESS_TOKEN")


def test_forbidden_is_auth_expired(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", bitly_error("FORBIDDEN"), 403)
    expect_error(AuthExpired, lambda: client(api).shorten(LONG), "POST /v4/shorten: HTTP 403")


def test_invalid_long_url_is_permanent(api: FakeBitly) -> None:
    body = bitly_error("INVALID_ARG_LONG_URL", "The value provided is invalid.")
    body["errors"] = [{"field": "long_url", "error_code": "invalid"}]
    api.on("POST", "/v4/shorten", body, 400)
    error = expect_error(PermanentError, lambda: client(api).shorten("not a url"))
    assert str(error) == (
        "POST /v4/shorten: HTTP 400: INVALID_ARG_LONG_URL: The value provided is invalid."
    )


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(api: FakeBitly, status: int) -> None:
    api.on("POST", "/v4/shorten", bitly_error("INTERNAL_ERROR"), status)
    error = expect_error(RetryableError, lambda: client(api).shorten(LONG), f"HTTP {status}")
    assert type(error) is RetryableError  # shortening again cannot create a second link


def test_read_timeout_is_retryable(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", BITLINK, delay=0.5)
    bitly = client(api, timeout=0.2)
    expect_error(RetryableError, lambda: bitly.shorten(LONG), "read timed out")


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bitly = Bitly(TOKEN, api_base=f"http://127.0.0.1:{port}")
    expect_error(RetryableError, lambda: bitly.shorten(LONG), "connection failed")


def test_error_echoing_the_token_is_redacted(api: FakeBitly) -> None:
    api.on("POST", "/v4/shorten", bitly_error("FORBIDDEN", f"token {TOKEN} lacks access"), 403)
    expect_error(AuthExpired, lambda: client(api).shorten(LONG), "redacted")


def test_no_token_in_debug_logs(api: FakeBitly, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api.on("POST", "/v4/shorten", BITLINK, 201)
    api.on("GET", "/v4/user", {"login": "exampleblog"})
    bitly = client(api)
    bitly.shorten(LONG)
    bitly.check()
    assert "POST /v4/shorten" in caplog.text and "https://bit.ly/3xYzAbC" in caplog.text
    assert TOKEN not in caplog.text
