"""Mailchimp connector against a local HTTP server speaking the Marketing API 3.0 shapes.

No recorded Mailchimp exchanges exist in the shared corpus; the answers here follow the
API reference (campaign objects, problem+json errors, the send checklist) and the error
bodies users quoted in client-library issues.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from connectors._mailchimp_content import Schedule
from connectors.mailchimp import Mailchimp
from syndicator import config, registry
from syndicator.connector import Connector, ConnectorContext, Limits, TextOptions
from syndicator.errors import (
    AuthExpired,
    ConfigError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.models import AccountInfo, Draft, Image, ImageFile, Post, Receipt
from tests.connectors.support import RecordingServer, raises_without_secrets

API_KEY = "0123456789abcdef0123456789abcdef-us21"
KEY = "syndicator-12-34"
TITLE = f"syndicator {KEY}"
BASIC = "Basic " + base64.b64encode(f"syndicator:{API_KEY}".encode()).decode()
ARCHIVE = "https://mailchi.mp/example/hello-world"
NOW = datetime(2026, 8, 1, 14, 58, 20, tzinfo=UTC)
PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"


def campaign(status: str = "save", **extra: Any) -> dict[str, Any]:
    """A campaign object as Mailchimp returns it (the fields we read, and a few more)."""
    return {
        "id": "42b8e7c1a9",
        "web_id": 1234567,
        "type": "regular",
        "status": status,
        "archive_url": ARCHIVE,
        "long_archive_url": "https://us21.campaign-archive.com/?u=abc&id=42b8e7c1a9",
        "settings": {"title": TITLE, "subject_line": "Hello world"},
        **extra,
    }


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A Mailchimp problem+json error body."""
    return {
        "type": PROBLEM_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "7f4599dd-8e3b-4eff-91a6-92e3a627d599",
        **extra,
    }


class FakeMailchimp(RecordingServer):
    """Routes on a pytest-httpserver that answer and record what they were sent."""

    prefix = "/3.0"
    empty = ""  # 204 No Content

    def content_type(self, status: int) -> str | None:
        return "application/problem+json" if status >= 400 else "application/json"

    def campaigns(self, *found: dict[str, Any], once: bool = False) -> None:
        """GET /campaigns answering with `found`."""
        self.on("GET", "/campaigns", {"campaigns": list(found), "total_items": 7}, once=once)

    def requests(self) -> list[tuple[str, str]]:
        return [(s.method, s.path) for s in self.seen]


def load_image(image: Image, limits: Limits) -> ImageFile:
    raise AssertionError("Mailchimp links images; it never loads them")


def make(api_base: str | None, tmp_path: Path, timeout: float = 5.0, **options: Any) -> Mailchimp:
    """A connector for target "news" with the given options over the defaults."""
    context = ConnectorContext(
        target="news",
        text=TextOptions(utm={"utm_campaign": "blog"}),
        state_dir=tmp_path,
        load_image=load_image,
        timeout=timeout,
    )
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "list_id": "a1b2c3d4e5",
        "from_name": "Example Blog",
        "reply_to": "news@example.com",
    }
    if api_base is not None:
        values["api_base"] = api_base
    connector = Mailchimp({**values, **options}, context)
    connector.clock = lambda: NOW
    return connector


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[FakeMailchimp]:
    yield FakeMailchimp(httpserver)
    httpserver.check_assertions()


@pytest.fixture
def mc(httpserver: HTTPServer, tmp_path: Path) -> Mailchimp:
    return make(httpserver.url_for("/3.0"), tmp_path)


def post(**fields: Any) -> Post:
    values: dict[str, Any] = {
        "feed": "blog",
        "guid": "1",
        "url": "https://blog.example/p/1/",
        "title": "Hello world",
        "summary": "<p>What we did this spring, and why [&hellip;]</p>",
        "images": (Image("https://blog.example/cover.jpg", "Our team"),),
        "language": "en-GB",
    }
    return Post(**{**values, **fields})


def expect_error(kind: type[Exception], call: Any, match: str | None = None) -> Any:
    """Run `call`, expect `kind`; no secret in any part of the error."""
    return raises_without_secrets(kind, call, match, (API_KEY, API_KEY.split("-")[0]), exact=False)


# --- options ---------------------------------------------------------------------------


def test_is_a_connector(mc: Mailchimp) -> None:
    assert isinstance(mc, Connector)
    assert Mailchimp.name == "mailchimp" and Mailchimp.secret_keys == ("api_key",)
    assert Mailchimp.can_lookup and Mailchimp.limits.max_chars == 150


def test_datacenter_comes_from_the_key(tmp_path: Path) -> None:
    assert make(None, tmp_path).api_base == "https://us21.api.mailchimp.com/3.0"
    custom = make("https://proxy.example/mc/3.0/", tmp_path, api_key="plainkey")
    assert custom.api_base == "https://proxy.example/mc/3.0"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"api_key": None}, "api_key"),
        ({"api_key": "no-datacenter-here!"}, "api_key"),
        ({"api_key": "0123456789abcdef"}, "api_key"),
        ({"api_base": "http://us21.api.mailchimp.com/3.0"}, "api_base"),
        ({"list_id": None}, "list_id"),
        ({"list_id": " "}, "list_id"),
        ({"segment_id": "vip"}, "segment_id"),
        ({"segment_id": -3}, "segment_id"),
        ({"subject": "{title} {author}"}, "subject"),
        ({"subject": "{title}\n{url}"}, "subject"),
        ({"from_name": None}, "from_name"),
        ({"reply_to": None}, "reply_to"),
        ({"reply_to": "news at example.com"}, "reply_to"),
        ({"reply_to": "news@localhost"}, "reply_to"),
        ({"action": "publish"}, "action"),
        ({"action": "schedule"}, "schedule_at"),
        ({"action": "schedule", "schedule_at": "25:00"}, "schedule_at"),
        ({"action": "schedule", "schedule_at": "soon"}, "schedule_at"),
        ({"schedule_at": "09:00"}, "schedule_at"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, Any], key: str, tmp_path: Path) -> None:
    base = options.pop("api_base", None)
    with pytest.raises(ConfigError, match=f"'news' \\(mailchimp\\): {key}") as info:
        make(base, tmp_path, **options)
    assert API_KEY not in str(info.value) and "0123456789abcdef" not in str(info.value)


def test_options_need_no_network(tmp_path: Path) -> None:
    make(None, tmp_path, action="schedule", schedule_at="2h", segment_id="17", subject="{title}!")


# --- prepare ---------------------------------------------------------------------------


def test_prepare(mc: Mailchimp) -> None:
    draft = mc.prepare(post())
    link = "https://blog.example/p/1/?utm_source=mailchimp&utm_medium=email&utm_campaign=blog"
    assert draft.link == link
    assert draft.text == "Campaign (draft) to audience a1b2c3d4e5: Hello world"
    assert draft.images == (Image("https://blog.example/cover.jpg", "Our team"),)
    fields = draft.fields
    assert fields["subject"] == "Hello world"
    assert fields["preview_text"] == "What we did this spring, and why…"
    assert (fields["list_id"], fields["action"]) == ("a1b2c3d4e5", "draft")
    html = fields["html"]
    assert html.startswith('<!DOCTYPE html>\n<html lang="en-GB">')
    assert '<h1 style="margin:0;font-size:24px;' in html and ">Hello world</h1>" in html
    assert '<img src="https://blog.example/cover.jpg" alt="Our team" width="552"' in html
    assert ">What we did this spring, and why…</p>" in html
    assert f'<a href="{link.replace("&", "&amp;")}" style="display:inline-block;' in html
    assert ">Read more</a>" in html
    assert '<a href="*|UNSUB|*"' in html and "*|HTML:LIST_ADDRESS_HTML|*" in html
    assert "<style" not in html and "class=" not in html  # inline styles only
    assert draft.notes == ()


def test_prepare_escapes_everything_from_the_post(mc: Mailchimp) -> None:
    hostile = "<script>alert('x')</script> & *|EMAIL|*"
    draft = mc.prepare(
        post(
            title=hostile,
            summary=f"<p>{hostile.replace('<', '&lt;')}</p>",
            url='https://blog.example/p/1/?a="><script>',
            images=(Image('https://blog.example/x.jpg?"onerror="alert(1)', hostile),),
        )
    )
    html = draft.fields["html"]
    assert "<script>" not in html and "*|EMAIL|*" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; *&#124;EMAIL|*" in html
    assert '?&quot;onerror=&quot;alert(1)"' in html
    assert "*|EMAIL|*" not in draft.fields["subject"]


def test_prepare_subject_template_and_limit(tmp_path: Path) -> None:
    mc = make(None, tmp_path, subject="New on the blog: {title}", read_more="Lire la suite")
    draft = mc.prepare(post(title="word " * 60, images=(), language=None, summary=""))
    assert draft.fields["subject"].startswith("New on the blog: word word")
    assert len(draft.fields["subject"]) <= 150 and draft.fields["subject"].endswith("…")
    assert draft.fields["preview_text"] == ""
    assert draft.images == ()
    html = draft.fields["html"]
    assert "<img" not in html and ">Lire la suite</a>" in html and "<html>" in html


def test_prepare_schedule_and_segment(tmp_path: Path) -> None:
    mc = make(None, tmp_path, action="schedule", schedule_at="15:07", segment_id=42)
    draft = mc.prepare(post())
    assert draft.fields["schedule_at"] == "15:07" and draft.fields["segment_id"] == 42
    assert draft.notes == ("scheduled for the next 15:07 UTC (rounded up to a quarter hour)",)
    assert draft.text.startswith("Campaign (schedule) to audience a1b2c3d4e5 (segment 42): ")


def test_prepare_is_pure(mc: Mailchimp) -> None:
    assert mc.prepare(post()) == mc.prepare(post())


# --- schedule times ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("15:07", "2026-08-01T15:15:00+00:00"),  # later today, rounded up
        ("15:00", "2026-08-01T15:00:00+00:00"),
        ("14:59", "2026-08-01T15:00:00+00:00"),  # rounds up to a time still ahead
        ("14:45", "2026-08-02T14:45:00+00:00"),  # passed today: tomorrow
        ("23:50", "2026-08-02T00:00:00+00:00"),  # rounding crosses midnight
        ("90m", "2026-08-01T16:30:00+00:00"),
        ("2h", "2026-08-01T17:00:00+00:00"),
        ("1d", "2026-08-02T15:00:00+00:00"),
        ("0m", "2026-08-01T15:00:00+00:00"),
    ],
)
def test_schedule_times_are_on_a_quarter_hour(rule: str, expected: str) -> None:
    schedule = Schedule.parse(rule)
    assert schedule is not None
    assert schedule.time_after(NOW).isoformat() == expected


def test_schedule_keeps_a_minute_of_lead() -> None:
    almost = datetime(2026, 8, 1, 14, 59, 30, tzinfo=UTC)
    assert Schedule("0m").time_after(almost).isoformat() == "2026-08-01T15:15:00+00:00"
    assert Schedule.parse("15:00").time_after(almost).isoformat().startswith("2026-08-02T15:00")  # type: ignore[union-attr]


# --- publish ---------------------------------------------------------------------------


def test_publish_as_draft(api: FakeMailchimp, mc: Mailchimp) -> None:
    draft = mc.prepare(post())
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {"html": draft.fields["html"]})
    assert mc.publish(draft, key=KEY) == Receipt("42b8e7c1a9", ARCHIVE)
    assert api.requests() == [
        ("GET", "/3.0/campaigns"),
        ("POST", "/3.0/campaigns"),
        ("PUT", "/3.0/campaigns/42b8e7c1a9/content"),
    ]
    find, create, content = api.seen
    assert all(s.headers["Authorization"] == BASIC for s in api.seen)
    assert find.args == {
        "count": "50",
        "sort_field": "create_time",
        "sort_dir": "DESC",
        "fields": "campaigns.id,campaigns.status,campaigns.settings.title,"
        "campaigns.archive_url,campaigns.long_archive_url",
    }
    assert create.headers["Content-Type"] == "application/json"
    assert create.json == {
        "type": "regular",
        "recipients": {"list_id": "a1b2c3d4e5"},
        "settings": {
            "subject_line": "Hello world",
            "preview_text": "What we did this spring, and why…",
            "title": TITLE,
            "from_name": "Example Blog",
            "reply_to": "news@example.com",
        },
    }
    assert content.json == {"html": draft.fields["html"]}


def test_publish_to_a_segment_and_send(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, segment_id="42", action="send")
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    api.on("POST", "/campaigns/42b8e7c1a9/actions/send", None, 204)
    mc.publish(mc.prepare(post()), key=KEY)
    assert api.seen[1].json["recipients"] == {
        "list_id": "a1b2c3d4e5",
        "segment_opts": {"saved_segment_id": 42},
    }
    assert api.requests()[-1] == ("POST", "/3.0/campaigns/42b8e7c1a9/actions/send")
    assert api.seen[-1].json is None


def test_publish_scheduled(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, action="schedule", schedule_at="90m")
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    api.on("POST", "/campaigns/42b8e7c1a9/actions/schedule", None, 204)
    mc.publish(mc.prepare(post()), key=KEY)
    assert api.seen[-1].json == {"schedule_time": "2026-08-01T16:30:00+00:00"}


def test_publish_keeps_the_drafts_action_and_schedule(api: FakeMailchimp, tmp_path: Path) -> None:
    # approved as "schedule at 15:07"; the config changed since: the draft wins
    scheduled = make(None, tmp_path, action="schedule", schedule_at="15:07").prepare(post())
    mc = make(api.server.url_for("/3.0"), tmp_path, action="draft")
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    api.on("POST", "/campaigns/42b8e7c1a9/actions/schedule", None, 204)
    mc.publish(scheduled, key=KEY)
    assert api.seen[-1].json == {"schedule_time": "2026-08-01T15:15:00+00:00"}


def test_failure_between_steps_never_creates_a_second_campaign(
    api: FakeMailchimp, tmp_path: Path
) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    draft = mc.prepare(post())
    api.campaigns(once=True)
    api.on("POST", "/campaigns", campaign(), once=True)
    api.on("PUT", "/campaigns/42b8e7c1a9/content", "<html>busy</html>", 500, once=True)
    expect_error(RetryableError, lambda: mc.publish(draft, key=KEY), "HTTP 500")
    # the retry finds the campaign by its title and finishes the remaining steps
    api.campaigns(campaign(), once=True)
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {}, once=True)
    api.on("POST", "/campaigns/42b8e7c1a9/actions/send", None, 204, once=True)
    assert mc.publish(draft, key=KEY) == Receipt("42b8e7c1a9", ARCHIVE)
    assert api.requests().count(("POST", "/3.0/campaigns")) == 1
    assert api.requests()[-1] == ("POST", "/3.0/campaigns/42b8e7c1a9/actions/send")


def test_a_campaign_already_sent_is_left_alone(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    other = {**campaign(), "id": "other", "settings": {"title": "syndicator syndicator-12-3"}}
    api.campaigns(other, campaign("sending"))
    assert mc.publish(mc.prepare(post()), key=KEY) == Receipt("42b8e7c1a9", ARCHIVE)
    assert api.requests() == [("GET", "/3.0/campaigns")]


def test_receipt_without_archive_url(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.campaigns(campaign("sent", archive_url=""), campaign("sent", id="x", settings={}))
    assert mc.publish(mc.prepare(post()), key=KEY).url.startswith(  # type: ignore[union-attr]
        "https://us21.campaign-archive.com/"
    )
    api.seen.clear()
    api.server.clear()
    api.campaigns({"id": "42b8e7c1a9", "status": "sent", "settings": {"title": TITLE}})
    assert mc.publish(mc.prepare(post()), key=KEY) == Receipt("42b8e7c1a9", None)


# --- errors ----------------------------------------------------------------------------


def test_invalid_key_is_auth_expired(api: FakeMailchimp, mc: Mailchimp) -> None:
    detail = "Your API key may be invalid, or you've attempted to access the wrong datacenter."
    api.on("GET", "/campaigns", problem(401, "API Key Invalid", detail), 401)
    expect_error(AuthExpired, lambda: mc.publish(mc.prepare(post()), key=KEY), "API Key Invalid")


@pytest.mark.parametrize(
    ("status", "title", "detail"),
    [
        (403, "Forbidden", "The API key provided is linked to a different datacenter"),
        (403, "User Disabled", "This account has been disabled."),
        (503, "Compliance Related", "This account is currently on compliance hold."),
    ],
)
def test_account_problems_are_auth_expired(
    api: FakeMailchimp, mc: Mailchimp, status: int, title: str, detail: str
) -> None:
    api.campaigns()
    api.on("POST", "/campaigns", problem(status, title, detail), status)
    expect_error(AuthExpired, lambda: mc.publish(mc.prepare(post()), key=KEY), title)


def test_429_is_rate_limited_briefly(api: FakeMailchimp, mc: Mailchimp) -> None:
    body = problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous")
    api.on("GET", "/campaigns", body, 429)
    error = expect_error(RateLimited, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert error.retry_after == 60.0
    api.server.clear()
    api.on("GET", "/campaigns", body, 429, {"Retry-After": "5"})
    assert (
        expect_error(RateLimited, lambda: mc.lookup(mc.prepare(post()), key=KEY)).retry_after == 5
    )


def test_invalid_resource_lists_the_field_errors(api: FakeMailchimp, mc: Mailchimp) -> None:
    errors = [{"field": "settings.reply_to", "message": "This value should be a valid email."}]
    body = problem(400, "Invalid Resource", "The resource submitted could not be validated.")
    api.campaigns()
    api.on("POST", "/campaigns", {**body, "errors": errors}, 400)
    error = expect_error(PermanentError, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert str(error) == (
        "POST /3.0/campaigns: HTTP 400: Invalid Resource: The resource submitted could not be"
        " validated.; settings.reply_to: This value should be a valid email."
    )


def test_not_ready_to_send_lists_the_checklist(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    not_ready = problem(400, "Bad Request", "Your Campaign is not ready to send.")
    api.on("POST", "/campaigns/42b8e7c1a9/actions/send", not_ready, 400)
    checklist = {
        "is_ready": False,
        "items": [
            {"type": "success", "id": 0, "heading": "Subject line", "details": "Set."},
            {
                "type": "error",
                "id": 1,
                "heading": "Audience",
                "details": 'Your segment of list "News" is empty.',
            },
            {"type": "warning", "id": 2, "heading": "Tracking", "details": "Off."},
        ],
    }
    api.on("GET", "/campaigns/42b8e7c1a9/send-checklist", checklist)
    error = expect_error(PermanentError, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert str(error) == (
        "POST /3.0/campaigns/42b8e7c1a9/actions/send: HTTP 400: Bad Request: Your Campaign is"
        ' not ready to send.; checklist: Audience: Your segment of list "News" is empty.;'
        " campaign 42b8e7c1a9 is kept as a draft in Mailchimp"
    )


def test_not_ready_to_schedule_without_a_checklist(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, action="schedule", schedule_at="2h")
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    cannot = problem(400, "Bad Request", "This campaign cannot be scheduled: .")
    api.on("POST", "/campaigns/42b8e7c1a9/actions/schedule", cannot, 400)
    api.on("GET", "/campaigns/42b8e7c1a9/send-checklist", "<html>oops</html>", 500)
    expect_error(
        PermanentError,
        lambda: mc.publish(mc.prepare(post()), key=KEY),
        r"cannot be scheduled: \.; campaign 42b8e7c1a9 is kept as a draft",
    )


def test_404_is_permanent(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.campaigns()
    detail = "The requested resource could not be found."
    api.on("POST", "/campaigns", problem(404, "Resource Not Found", detail), 404)
    expect_error(PermanentError, lambda: mc.publish(mc.prepare(post()), key=KEY), "Not Found")


def test_500_on_create_is_unknown(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.campaigns()
    api.on("POST", "/campaigns", problem(500, "Internal Server Error", "oops"), 500)
    error = expect_error(OutcomeUnknown, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert str(error) == "POST /3.0/campaigns: HTTP 500: Internal Server Error: oops"


def test_503_on_create_is_retryable(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.campaigns()
    api.on("POST", "/campaigns", "<html>down</html>", 503)
    error = expect_error(RetryableError, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert type(error) is RetryableError


def test_500_on_send_is_retryable(api: FakeMailchimp, tmp_path: Path) -> None:
    # a repeated send cannot send twice: the retry sees status "sending" and stops
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    api.campaigns(campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    api.on("POST", "/campaigns/42b8e7c1a9/actions/send", "<html>oops</html>", 500)
    error = expect_error(RetryableError, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert type(error) is RetryableError


def test_read_timeout_on_create_is_unknown(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, timeout=0.2)
    api.campaigns()
    api.on("POST", "/campaigns", campaign(), delay=0.5)
    expect_error(OutcomeUnknown, lambda: mc.publish(mc.prepare(post()), key=KEY), "no answer")


def test_read_timeout_on_search_is_retryable(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, timeout=0.2)
    api.on("GET", "/campaigns", {"campaigns": []}, delay=0.5)
    error = expect_error(RetryableError, lambda: mc.publish(mc.prepare(post()), key=KEY))
    assert "read timed out" in str(error)


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mc = make(f"http://127.0.0.1:{port}/3.0", tmp_path)
    expect_error(RetryableError, lambda: mc.publish(mc.prepare(post()), key=KEY), "failed")


@pytest.fixture
def reset_on_post() -> Iterator[str]:
    """A server that answers GET /campaigns with none, and resets every POST once read."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(5)

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                if head.startswith(b"GET"):
                    answer = b'{"campaigns": []}'
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close"
                        + f"\r\nContent-Length: {len(answer)}\r\n\r\n".encode()
                        + answer
                    )
                    continue
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/3.0"
    server.close()
    thread.join(5)


def test_reset_after_sending_the_create_is_unknown(reset_on_post: str, tmp_path: Path) -> None:
    mc = make(reset_on_post, tmp_path)
    expect_error(OutcomeUnknown, lambda: mc.publish(mc.prepare(post()), key=KEY), "lost after")


def test_error_text_echoing_the_key_is_redacted(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.campaigns()
    api.on("POST", "/campaigns", problem(400, "Bad Request", f"bad key {API_KEY}"), 400)
    expect_error(PermanentError, lambda: mc.publish(mc.prepare(post()), key=KEY), "redacted")


def test_no_secret_in_debug_logs(
    api: FakeMailchimp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    api.campaigns()
    api.on("POST", "/campaigns", campaign())
    api.on("PUT", "/campaigns/42b8e7c1a9/content", {})
    api.on("POST", "/campaigns/42b8e7c1a9/actions/send", None, 204)
    mc.publish(mc.prepare(post()), key=KEY)
    assert "/3.0/campaigns?count=50" in caplog.text  # urllib3's request lines were captured
    assert f"campaign 42b8e7c1a9 done: send (key {KEY})" in caplog.text
    assert API_KEY not in caplog.text and BASIC.split()[1] not in caplog.text


# --- lookup ----------------------------------------------------------------------------


def test_lookup_not_found(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.campaigns({**campaign(), "settings": {"title": "Spring newsletter"}})
    assert mc.lookup(mc.prepare(post()), key=KEY) is None
    assert api.requests() == [("GET", "/3.0/campaigns")]


def test_lookup_finds_a_sent_campaign(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    api.campaigns(campaign("sent"))
    assert mc.lookup(mc.prepare(post()), key=KEY) == Receipt("42b8e7c1a9", ARCHIVE)


def test_lookup_of_an_unfinished_send_is_none(api: FakeMailchimp, tmp_path: Path) -> None:
    # created but never sent: None, so the core calls publish, which finishes this campaign
    mc = make(api.server.url_for("/3.0"), tmp_path, action="send")
    api.campaigns(campaign("save"))
    assert mc.lookup(mc.prepare(post()), key=KEY) is None


def test_lookup_of_a_draft_checks_its_content(api: FakeMailchimp, mc: Mailchimp) -> None:
    draft = mc.prepare(post())
    api.campaigns(campaign("save"))
    api.on("GET", "/campaigns/42b8e7c1a9/content", {"html": draft.fields["html"]}, once=True)
    assert mc.lookup(draft, key=KEY) == Receipt("42b8e7c1a9", ARCHIVE)
    assert api.seen[-1].args == {"fields": "html"}
    api.on("GET", "/campaigns/42b8e7c1a9/content", {"html": ""}, once=True)
    assert mc.lookup(draft, key=KEY) is None  # created, content never set


# --- check -----------------------------------------------------------------------------


def test_check(api: FakeMailchimp, tmp_path: Path) -> None:
    mc = make(api.server.url_for("/3.0"), tmp_path, segment_id=42)
    api.on("GET", "/ping", {"health_status": "Everything's Chimpy!"})
    audience = {"id": "a1b2c3d4e5", "name": "Blog readers", "stats": {"member_count": 1280}}
    api.on("GET", "/lists/a1b2c3d4e5", audience)
    api.on("GET", "/lists/a1b2c3d4e5/segments/42", {"id": 42, "name": "VIP", "member_count": 17})
    assert mc.check() == AccountInfo(
        "Blog readers",
        details=(
            "1280 subscribed members",
            "action: draft",
            "datacenter us21",
            "segment VIP: 17 members",
        ),
    )
    assert all(s.headers["Authorization"] == BASIC for s in api.seen)


def test_check_with_a_bad_key(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.on("GET", "/ping", problem(401, "API Key Invalid", "Your API key may be invalid"), 401)
    expect_error(AuthExpired, mc.check)


def test_check_with_an_unknown_audience(api: FakeMailchimp, mc: Mailchimp) -> None:
    api.on("GET", "/ping", {"health_status": "Everything's Chimpy!"})
    body = problem(404, "Resource Not Found", "The requested resource could not be found.")
    api.on("GET", "/lists/a1b2c3d4e5", body, 404)
    expect_error(PermanentError, mc.check, "GET /3.0/lists/a1b2c3d4e5: HTTP 404")


def test_draft_round_trips_through_storage(mc: Mailchimp) -> None:
    draft = mc.prepare(post())
    assert Draft.from_dict(json.loads(json.dumps(draft.to_dict()))) == draft


def test_built_from_the_config_file_like_any_connector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILCHIMP_API_KEY", API_KEY)
    path = tmp_path / "config.toml"
    path.write_text(
        """
[syndicator]
state_dir = "state"

[[feeds]]
name = "blog"
url = "https://blog.example/feed/"

[targets.newsletter]
type = "mailchimp"
api_key = "${MAILCHIMP_API_KEY}"
list_id = "a1b2c3d4e5"
segment_id = 42
from_name = "Example Blog"
reply_to = "news@example.com"
action = "schedule"
schedule_at = "09:00"
utm = { campaign = "newsletter" }
"""
    )
    settings = config.load(path)
    [connector] = registry.build(settings, load_image=load_image).values()
    assert isinstance(connector, Mailchimp) and API_KEY in settings.secrets
    assert connector.api_base == "https://us21.api.mailchimp.com/3.0"
    assert connector.segment_id == 42 and connector.schedule == Schedule.parse("09:00")
    assert "utm_campaign=newsletter" in connector.prepare(post()).fields["html"]
