"""LinkedIn connector against a local HTTP server speaking the documented Posts and Images APIs.

No recorded LinkedIn responses exist in the shared corpus; answers are the documented shapes
and the error bodies users reported (see ERRORS-REPORTED-IN-ISSUES.md), inline so they always run.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
import socket
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image as PILImage
from pytest_httpserver import HTTPServer

from connectors._linkedin_text import to_little
from connectors.linkedin import DEFAULT_VERSION, LinkedIn
from syndicator.connector import Connector, ConnectorContext, Limits, TextOptions
from syndicator.errors import (
    AuthExpired,
    ConfigError,
    DuplicateContent,
    MediaError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.models import AccountInfo, Card, Draft, Image, ImageFile, Post, Receipt
from tests.connectors.support import (
    RecordingServer,
    Seen,
    closed_port_url,
    raises_without_secrets,
)

TOKEN = "AQX-li-token-9f8e7d6c5b4a-SECRET"
KEY = "syndicator-12-34"
ORG = "urn:li:organization:2414183"
MEMBER = "urn:li:person:782bbtaQ"
SHARE = "urn:li:share:7141138937766391808"
IMAGE_URN = "urn:li:image:C4D00AAAAbBBBBBcccc"
LINK = "https://blog.example/p/1/"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "platform-recordings"

# The body a user of an RSS-to-LinkedIn tool got back (github.com/Arisamiga/Linkedin-RSS/issues/5).
DUPLICATE = {
    "errorDetailType": "com.linkedin.common.error.BadRequest",
    "message": "com.linkedin.content.common.exception.BadRequestResponseException:"
    f" Content is a duplicate of {SHARE}",
    "errorDetails": {
        "inputErrors": [
            {"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}
        ]
    },
    "status": 422,
}
INVALID_TOKEN = {"serviceErrorCode": 65600, "message": "Invalid access token", "status": 401}
EXPIRED_TOKEN = {
    "serviceErrorCode": 65601,
    "code": "EXPIRED_ACCESS_TOKEN",
    "message": "The token used in the request has expired",
    "status": 401,
}
THROTTLED = {
    "serviceErrorCode": 101,
    "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is"
    " reached.",
    "status": 429,
}


class FakeLinkedIn(RecordingServer):
    """Routes on a pytest-httpserver that answer and record what they were sent."""

    empty = ""  # 201 Created carries no body

    def created(self, urn: str = SHARE) -> None:
        """POST /rest/posts answers 201 with the new post's URN in `x-restli-id`."""
        self.on("POST", "/rest/posts", status=201, headers={"x-restli-id": urn})

    def upload(self, upload_url: str | None = None, status: int = 201) -> str:
        """The Images API: initializeUpload, then the PUT to the upload URL it hands out."""
        upload_url = upload_url or self.server.url_for("/dms-uploads/C4E10AQ/uploaded-image/0")
        value = {"uploadUrlExpiresAt": 1_800_000_000_000, "uploadUrl": upload_url}
        self.on("POST", "/rest/images", {"value": {**value, "image": IMAGE_URN}})
        if upload_url.startswith(self.server.url_for("/")):
            self.on("PUT", "/dms-uploads/C4E10AQ/uploaded-image/0", status=status)
        return upload_url


@functools.cache
def png() -> bytes:
    """A real 64x48 PNG made with Pillow."""
    out = io.BytesIO()
    PILImage.linear_gradient("L").resize((64, 48)).convert("RGB").save(out, "PNG")
    return out.getvalue()


def load_image(image: Image, limits: Limits) -> ImageFile:
    """The core's image loader, faked: a real PNG carrying the post's alt text."""
    return ImageFile(png(), "image/png", 64, 48, alt=image.alt, source_url=image.url)


def make(
    api_base: str,
    tmp_path: Path,
    timeout: float = 5.0,
    text: TextOptions | None = None,
    **options: Any,
) -> LinkedIn:
    """A connector for target "li" with the given options over the defaults."""
    context = ConnectorContext(
        target="li",
        text=text or TextOptions(),
        state_dir=tmp_path,
        load_image=load_image,
        timeout=timeout,
    )
    return LinkedIn(
        {"api_base": api_base, "access_token": TOKEN, "author": ORG, **options}, context
    )


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[FakeLinkedIn]:
    yield FakeLinkedIn(httpserver)
    httpserver.check_assertions()  # no request went unanswered


@pytest.fixture
def li(httpserver: HTTPServer, tmp_path: Path) -> LinkedIn:
    return make(httpserver.url_for("/"), tmp_path)


def post(**fields: Any) -> Post:
    values: dict[str, Any] = {"feed": "blog", "guid": "1", "url": LINK, "title": "Hello world"}
    return Post(**{**values, **fields})


def draft(**fields: Any) -> Draft:
    values: dict[str, Any] = {
        "text": f"Hello world\n\n{LINK}",
        "link": LINK,
        "card": Card(LINK, "Hello world", "An excerpt"),
        "fields": {"kind": "article", "visibility": "PUBLIC"},
    }
    return Draft(**{**values, **fields})


def expect_error(kind: type[Exception], call: Any, match: str | None = None) -> Any:
    """Run `call`, expect `kind`; no secret in any part of the error."""
    return raises_without_secrets(kind, call, match, (TOKEN,))


def versioned(seen: Seen) -> bool:
    """The headers every versioned REST call must carry."""
    return (
        seen.headers["Authorization"] == f"Bearer {TOKEN}"
        and seen.headers["Linkedin-Version"] == DEFAULT_VERSION
        and seen.headers["X-Restli-Protocol-Version"] == "2.0.0"
    )


# --- options ---------------------------------------------------------------------------


def test_is_a_connector(li: LinkedIn) -> None:
    assert isinstance(li, Connector)
    assert LinkedIn.name == "linkedin" and LinkedIn.secret_keys == ("access_token",)
    assert LinkedIn.limits.max_chars == 3000 and LinkedIn.limits.max_images == 1
    assert LinkedIn.limits.image_types == ("image/jpeg", "image/png", "image/gif")
    assert LinkedIn.can_lookup


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"access_token": None}, "access_token"),
        ({"access_token": " "}, "access_token"),
        ({"author": None}, "author"),
        ({"author": "2414183"}, "author"),
        ({"author": "urn:li:organization:acme"}, "author"),
        ({"author": "urn:li:company:2414183"}, "author"),
        ({"api_base": "http://api.linkedin.com"}, "api_base"),
        ({"api_base": "api.linkedin.com"}, "api_base"),
        ({"version": "2026-07"}, "version"),
        ({"version": "202613"}, "version"),
        ({"visibility": "public"}, "visibility"),
        ({"link_style": "card"}, "link_style"),
        ({"token_expires": "in two months"}, "token_expires"),
        ({"token_expires": 60}, "token_expires"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, Any], key: str, tmp_path: Path) -> None:
    base = options.pop("api_base", "https://api.linkedin.com")
    with pytest.raises(ConfigError, match=key) as info:
        make(base, tmp_path, **options)
    assert TOKEN not in str(info.value)


def test_defaults_and_no_network(tmp_path: Path) -> None:
    context = ConnectorContext("li", TextOptions(), tmp_path, load_image)
    li = LinkedIn({"access_token": TOKEN, "author": MEMBER}, context)
    assert li.api_base == "https://api.linkedin.com" and li.version == DEFAULT_VERSION
    assert li.visibility == "PUBLIC" and li.link_style == "article" and li.token_expires is None


@pytest.mark.parametrize(
    "value",
    [date(2027, 1, 31), datetime(2027, 1, 31), "2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)],
)
def test_token_expires_forms(value: Any, tmp_path: Path) -> None:
    li = make("https://api.linkedin.com", tmp_path, token_expires=value)
    assert li.token_expires == datetime(2027, 1, 31, tzinfo=UTC)


# --- little text format ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plain", "little"),
    [
        ("Our results (Q3) are in", r"Our results \(Q3\) are in"),
        (
            "[a] {b} <c> d|e @f *g* _h_ ~i~ j\\k",
            r"\[a\] \{b\} \<c\> d\|e \@f \*g\* \_h\_ \~i\~ j\\k",
        ),
        ("#News #ÉvénementsSpéciaux", r"{hashtag|\#|News} {hashtag|\#|ÉvénementsSpéciaux}"),
        (
            "Tags: #News, (#Tag) #été!",
            r"Tags: {hashtag|\#|News}, \({hashtag|\#|Tag}\) {hashtag|\#|été}!",
        ),
        ("C# beats #1, foo#bar, &#39; #a_b", r"C\# beats \#1, foo\#bar, &\#39; \#a\_b"),
        ("# alone", r"\# alone"),
        (
            "https://blog.example/my_post/?utm_source=linkedin&utm_medium=social",
            "https://blog.example/my_post/?utm_source=linkedin&utm_medium=social",
        ),
        ("(see https://blog.example/a_b)", r"\(see https://blog.example/a_b\)"),
        (
            "https://en.wikipedia.org/wiki/Foo_(bar).",
            "https://en.wikipedia.org/wiki/Foo_%28bar%29.",
        ),
        ("https://x.example/p/[1]/*@x", "https://x.example/p/%5B1%5D/%2A%40x"),
        ("https://x.example/a#frag_1 #Tag", r"https://x.example/a#frag_1 {hashtag|\#|Tag}"),
        ("Q&A: 50% off, 3 < 4 > 2", r"Q&A: 50% off, 3 \< 4 \> 2"),
        ("👍🏽 émoji, 日本語テキスト", "👍🏽 émoji, 日本語テキスト"),
        ("", ""),
    ],
)
def test_to_little(plain: str, little: str) -> None:
    assert to_little(plain) == little


def test_to_little_leaves_no_reserved_character_unescaped() -> None:
    text = "(a) [b] {c} <d> |e| @f *g* _h_ ~i~ \\j #1 #Tag https://x.example/(k)_l"
    little = to_little(text)
    outside = re.sub(r"\{hashtag\|\\#\|\w+\}|\\.|https://\S+", "", little)
    assert not set(outside) & set("\\|{}@[]()<>#*_~")


_TEMPLATE_OR_ESCAPE = re.compile(r"\{hashtag\|\\#\|([^}]*)\}|\\(.)", re.DOTALL)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_to_little_round_trips_text_without_links(text: str) -> None:
    """Undoing the escapes and templates gives the text back, and nothing reserved is left."""
    little = to_little(text.replace("http", "htp"))
    undone = _TEMPLATE_OR_ESCAPE.sub(lambda m: "#" + m[1] if m[1] is not None else m[2], little)
    assert undone == text.replace("http", "htp")
    assert not set(_TEMPLATE_OR_ESCAPE.sub("", little)) & set("\\|{}@[]()<>#*_~")


# --- prepare ---------------------------------------------------------------------------


def test_prepare_article_with_thumbnail(li: LinkedIn) -> None:
    images = (Image("https://blog.example/a.png", "A chart"), Image("https://blog.example/b.png"))
    summary = "<p>Numbers (and more) for Q3 [&hellip;]</p>"
    result = li.prepare(
        post(title="Results (Q3) are in", summary=summary, categories=("News",), images=images)
    )
    assert result.text == r"Results \(Q3\) are in" + f"\n\n{LINK}\n\n" + r"{hashtag|\#|News}"
    assert result.link == LINK
    assert result.card == Card(LINK, "Results (Q3) are in", "Numbers (and more) for Q3…", images[0])
    assert result.images == images[:1]
    assert result.fields == {"kind": "article", "visibility": "PUBLIC"}
    assert result.notes == ("1 more image(s) left out: one per post",)


def test_prepare_image_style(tmp_path: Path) -> None:
    li = make("https://api.linkedin.com", tmp_path, link_style="image", visibility="LOGGED_IN")
    image = Image("https://blog.example/a.png", "A chart")
    result = li.prepare(post(images=(image,)))
    assert result.fields == {"kind": "image", "visibility": "LOGGED_IN"}
    assert result.images == (image,) and result.card is None and LINK in result.text
    without = li.prepare(post())
    assert without.fields["kind"] == "article" and without.card == Card(LINK, "Hello world")


def test_prepare_applies_utm_to_text_and_card(tmp_path: Path) -> None:
    text = TextOptions(utm={"source": "linkedin", "medium": "social"})
    result = make("https://api.linkedin.com", tmp_path, text=text).prepare(post())
    tracked = LINK + "?utm_source=linkedin&utm_medium=social"
    assert result.link == tracked and result.card is not None and result.card.url == tracked
    assert result.text.endswith(tracked)  # underscores in a link are not escaped


def test_prepare_fits_3000_once_escaped(li: LinkedIn) -> None:
    text = TextOptions(template="{title}\n\n{summary}\n\n{url}")
    li.context = ConnectorContext("li", text, li.context.state_dir, load_image)
    result = li.prepare(post(summary="(x) " * 1000))
    assert len(result.text) <= 3000 and result.text.endswith(LINK)
    assert len(result.text) > 2900  # the budget is not wasted


# --- publish ---------------------------------------------------------------------------


def test_publish_article_without_thumbnail(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.created()
    receipt = li.publish(draft(), key=KEY)
    assert receipt == Receipt(SHARE, f"https://www.linkedin.com/feed/update/{SHARE}/")
    [request] = api.seen
    assert (request.method, request.path) == ("POST", "/rest/posts") and versioned(request)
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "author": ORG,
        "commentary": f"Hello world\n\n{LINK}",
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
        "content": {
            "article": {"source": LINK, "title": "Hello world", "description": "An excerpt"}
        },
    }


def test_publish_article_with_thumbnail(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.upload()
    api.created()
    li.publish(draft(images=(Image("https://blog.example/a.png", "A chart"),)), key=KEY)
    init, put, created = api.seen
    assert (init.method, init.path, init.args) == (
        "POST",
        "/rest/images",
        {"action": "initializeUpload"},
    )
    assert versioned(init) and init.json == {"initializeUploadRequest": {"owner": ORG}}
    assert (put.method, put.path) == ("PUT", "/dms-uploads/C4E10AQ/uploaded-image/0")
    assert put.data == png() and put.headers["Authorization"] == f"Bearer {TOKEN}"
    assert put.headers["Content-Type"] == "application/octet-stream"
    assert created.json["content"]["article"]["thumbnail"] == IMAGE_URN


def test_publish_image_post(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.upload()
    api.created()
    image = Image("https://blog.example/a.png", "A chart")
    li.publish(draft(images=(image,), card=None, fields={"kind": "image"}), key=KEY)
    body = api.seen[-1].json
    assert body["content"] == {"media": {"id": IMAGE_URN, "altText": "A chart"}}
    assert body["commentary"] == f"Hello world\n\n{LINK}"


def test_upload_url_on_another_host_gets_no_token(api: FakeLinkedIn, li: LinkedIn) -> None:
    elsewhere = api.server.url_for("/dms-uploads/C4E10AQ/uploaded-image/0")
    elsewhere = elsewhere.replace("//localhost:", "//127.0.0.1:")  # same server, another host
    api.upload(elsewhere)
    api.on("PUT", "/dms-uploads/C4E10AQ/uploaded-image/0", status=201)
    api.created()
    li.publish(draft(images=(Image("https://blog.example/a.png"),)), key=KEY)
    put = api.seen[1]
    assert put.method == "PUT" and "Authorization" not in put.headers
    assert put.headers["Host"].startswith("127.0.0.1:")


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("https://www.linkedin.com/dms-uploads/C4E/uploaded-image/0?ca=x&m=y", True),
        ("https://api.linkedin.com/mediaUpload/C4E", True),
        ("http://www.linkedin.com/dms-uploads/C4E", False),
        ("https://linkedin.com.evil.example/x", False),
        ("https://evil.example/www.linkedin.com", False),
    ],
)
def test_token_only_goes_to_linkedin(url: str, trusted: bool, tmp_path: Path) -> None:
    assert make("https://api.linkedin.com", tmp_path)._trusted(url) is trusted


def test_image_loader_errors_propagate(api: FakeLinkedIn, li: LinkedIn, tmp_path: Path) -> None:
    def broken(image: Image, limits: Limits) -> ImageFile:
        raise MediaError("too big")

    li.context = ConnectorContext("li", TextOptions(), tmp_path, broken)
    with pytest.raises(MediaError):
        li.publish(draft(images=(Image("https://blog.example/a.png"),)), key=KEY)
    assert api.seen == []


def test_created_without_id(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on("POST", "/rest/posts", status=201)
    assert li.publish(draft(), key=KEY) == Receipt("")


def test_publish_logs_no_secret(
    api: FakeLinkedIn, li: LinkedIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.upload()
    api.created()
    li.publish(li.prepare(post(images=(Image("https://blog.example/a.png"),))), key=KEY)
    assert SHARE in caplog.text and "/rest/posts" in caplog.text  # urllib3 logged the calls
    assert TOKEN not in caplog.text


def test_draft_carries_no_secret(li: LinkedIn) -> None:
    result = li.prepare(post(images=(Image("https://blog.example/a.png"),)))
    assert TOKEN not in json.dumps(result.to_dict())


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [INVALID_TOKEN, EXPIRED_TOKEN])
def test_401_is_auth_expired(api: FakeLinkedIn, li: LinkedIn, body: dict[str, Any]) -> None:
    api.on("POST", "/rest/posts", body, 401)
    error = expect_error(AuthExpired, lambda: li.publish(draft(), key=KEY), str(body["message"]))
    assert str(body["serviceErrorCode"]) in str(error)


def test_403_missing_permission_is_auth_expired(api: FakeLinkedIn, li: LinkedIn) -> None:
    body = {
        "status": 403,
        "serviceErrorCode": 100,
        "code": "ACCESS_DENIED",
        "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260701",
    }
    api.on("POST", "/rest/posts", body, 403)
    expect_error(AuthExpired, lambda: li.publish(draft(), key=KEY), "Not enough permissions")


def test_426_sunset_version_pauses_the_target(api: FakeLinkedIn, li: LinkedIn) -> None:
    body = {"status": 426, "code": "NONEXISTENT_VERSION", "message": "Version is not active"}
    api.on("POST", "/rest/posts", body, 426)
    expect_error(
        AuthExpired, lambda: li.publish(draft(), key=KEY), f"{DEFAULT_VERSION} is no longer"
    )


def test_422_duplicate(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on("POST", "/rest/posts", DUPLICATE, 422)
    error = expect_error(DuplicateContent, lambda: li.publish(draft(), key=KEY), "DUPLICATE_POST")
    assert f"Content is a duplicate of {SHARE}" in str(error)
    assert "BadRequestResponseException" not in str(error)


def test_400_is_permanent(api: FakeLinkedIn, li: LinkedIn) -> None:
    body = {"status": 400, "message": "/commentary: length of 3200 exceeds 3000"}
    api.on("POST", "/rest/posts", body, 400)
    expect_error(PermanentError, lambda: li.publish(draft(), key=KEY), "exceeds 3000")


def test_429_with_retry_after(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on(
        "POST",
        "/rest/posts",
        {"status": 429, "message": "Too Many Requests"},
        429,
        {"Retry-After": "120"},
    )
    assert expect_error(RateLimited, lambda: li.publish(draft(), key=KEY)).retry_after == 120


def test_429_daily_limit_waits_until_utc_midnight(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on("POST", "/rest/posts", THROTTLED, 429)
    error = expect_error(RateLimited, lambda: li.publish(draft(), key=KEY), "DAY limit")
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert abs(error.retry_after - (midnight - now).total_seconds()) < 5


def test_429_without_hint_leaves_the_pause_to_the_core(api: FakeLinkedIn, li: LinkedIn) -> None:
    # as WordPress.com's LinkedIn sharing got it (github.com/Automattic/wp-calypso/issues/32007)
    message = "Resource level throttle limit for calls to this resource is reached."
    body = {"serviceErrorCode": 101, "message": message, "status": 429}
    api.on("POST", "/rest/posts", body, 429)
    assert expect_error(RateLimited, lambda: li.publish(draft(), key=KEY)).retry_after is None


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_on_post_is_outcome_unknown(api: FakeLinkedIn, li: LinkedIn, status: int) -> None:
    api.on("POST", "/rest/posts", "<html>oops</html>", status)
    expect_error(OutcomeUnknown, lambda: li.publish(draft(), key=KEY), f"HTTP {status}")


def test_503_on_post_is_retryable(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on("POST", "/rest/posts", {"status": 503, "message": "Service Unavailable"}, 503)
    expect_error(RetryableError, lambda: li.publish(draft(), key=KEY), "HTTP 503")


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_image_registration_is_retryable(
    api: FakeLinkedIn, li: LinkedIn, status: int
) -> None:
    api.on("POST", "/rest/images", {"message": "Internal Server Error"}, status)
    image = (Image("https://blog.example/a.png"),)
    expect_error(RetryableError, lambda: li.publish(draft(images=image), key=KEY), f"HTTP {status}")
    assert [s.path for s in api.seen] == ["/rest/images"]


def test_5xx_on_image_put_is_retryable(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.upload(status=500)
    image = (Image("https://blog.example/a.png"),)
    expect_error(RetryableError, lambda: li.publish(draft(images=image), key=KEY), "HTTP 500")
    assert "/rest/posts" not in [s.path for s in api.seen]


def test_rejected_image_is_a_media_error(api: FakeLinkedIn, li: LinkedIn) -> None:
    """So the core can post without the image instead (on_image_error)."""
    api.upload(status=400)
    image = (Image("https://blog.example/a.png"),)
    expect_error(
        MediaError,
        lambda: li.publish(draft(images=image), key=KEY),
        "image upload refused: PUT /dms-uploads/.*HTTP 400",
    )


def test_refused_image_registration_is_a_media_error(api: FakeLinkedIn, li: LinkedIn) -> None:
    body = {"status": 422, "message": "Owner is not valid for this upload"}
    api.on("POST", "/rest/images", body, 422)
    image = (Image("https://blog.example/a.png"),)
    expect_error(MediaError, lambda: li.publish(draft(images=image), key=KEY), "Owner is not")


def test_error_text_echoing_the_token_is_redacted(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on("POST", "/rest/posts", {"status": 400, "message": f"bad header Bearer {TOKEN}"}, 400)
    expect_error(PermanentError, lambda: li.publish(draft(), key=KEY), "redacted")


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    li = make(closed_port_url(), tmp_path)
    expect_error(RetryableError, lambda: li.publish(draft(), key=KEY), "connection failed")


def test_read_timeout_on_post_is_outcome_unknown(api: FakeLinkedIn, tmp_path: Path) -> None:
    api.on("POST", "/rest/posts", status=201, headers={"x-restli-id": SHARE}, delay=0.6)
    li = make(api.server.url_for("/"), tmp_path, timeout=0.2)
    expect_error(OutcomeUnknown, lambda: li.publish(draft(), key=KEY), "no answer within")


def test_read_timeout_on_upload_is_retryable(api: FakeLinkedIn, tmp_path: Path) -> None:
    api.on("POST", "/rest/images", {"value": {"uploadUrl": "x", "image": IMAGE_URN}}, delay=0.6)
    li = make(api.server.url_for("/"), tmp_path, timeout=0.2)
    image = (Image("https://blog.example/a.png"),)
    expect_error(RetryableError, lambda: li.publish(draft(images=image), key=KEY), "timed out")


@pytest.fixture
def resetting() -> Iterator[str]:
    """A server on 127.0.0.1 that reads each request, then resets the connection unanswered."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.settimeout(0.3)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_reset_after_sending_the_post_is_outcome_unknown(resetting: str, tmp_path: Path) -> None:
    li = make(resetting, tmp_path)
    expect_error(OutcomeUnknown, lambda: li.publish(draft(), key=KEY), "after sending")


def test_reset_during_upload_is_retryable(api: FakeLinkedIn, li: LinkedIn, resetting: str) -> None:
    api.upload(f"{resetting}/dms-uploads/C4E10AQ/uploaded-image/0")
    image = (Image("https://blog.example/a.png"),)
    expect_error(RetryableError, lambda: li.publish(draft(images=image), key=KEY), "connection")
    assert "/rest/posts" not in [s.path for s in api.seen]


# --- lookup ----------------------------------------------------------------------------


def shared(urn: str, commentary: str, source: str | None = None) -> dict[str, Any]:
    """A post as the Posts API finder returns it."""
    item: dict[str, Any] = {
        "id": urn,
        "author": ORG,
        "commentary": commentary,
        "visibility": "PUBLIC",
        "lifecycleState": "PUBLISHED",
        "publishedAt": 1_764_000_000_000,
        "distribution": {"feedDistribution": "MAIN_FEED"},
    }
    if source:
        item["content"] = {"article": {"source": source, "title": "Hello world"}}
    return item


def test_lookup_finds_the_article(api: FakeLinkedIn, li: LinkedIn) -> None:
    elements = [
        shared("urn:li:share:1", "Other", "https://blog.example/p/2/"),
        shared("urn:li:share:2", "Hello", LINK + "?utm_source=linkedin"),
    ]
    api.on("GET", "/rest/posts", {"elements": elements, "paging": {"start": 0, "count": 20}})
    found = li.lookup(draft(), key=KEY)
    assert found == Receipt(
        "urn:li:share:2", "https://www.linkedin.com/feed/update/urn:li:share:2/"
    )
    [request] = api.seen
    assert versioned(request) and request.headers["X-Restli-Method"] == "FINDER"
    assert request.args == {"author": ORG, "q": "author", "count": "20"}
    assert "author=urn%3Ali%3Aorganization%3A2414183" in request.query


def test_lookup_finds_the_link_in_the_commentary(api: FakeLinkedIn, li: LinkedIn) -> None:
    link = "https://blog.example/p/(1)/"
    commentary = to_little(f"Hello (world)\n\n{link}\n\n#News")
    api.on("GET", "/rest/posts", {"elements": [shared("urn:li:ugcPost:3", commentary)]})
    assert li.lookup(draft(link=link), key=KEY) == Receipt(
        "urn:li:ugcPost:3", "https://www.linkedin.com/feed/update/urn:li:ugcPost:3/"
    )


def test_lookup_not_found(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on(
        "GET", "/rest/posts", {"elements": [shared("urn:li:share:1", "https://blog.example/p/10/")]}
    )
    assert li.lookup(draft(), key=KEY) is None


def test_lookup_without_link_asks_nothing(api: FakeLinkedIn, li: LinkedIn) -> None:
    assert li.lookup(draft(link=None), key=KEY) is None and api.seen == []


def test_lookup_forbidden_is_permanent(api: FakeLinkedIn, li: LinkedIn) -> None:
    body = {"status": 403, "serviceErrorCode": 100, "message": "Not enough permissions"}
    api.on("GET", "/rest/posts", body, 403)
    expect_error(PermanentError, lambda: li.lookup(draft(), key=KEY), "check the profile by hand")


@pytest.mark.parametrize(
    ("status", "body"), [(500, {"message": "oops"}), (429, THROTTLED), (401, INVALID_TOKEN)]
)
def test_lookup_failures_stay_unknown(
    api: FakeLinkedIn, li: LinkedIn, status: int, body: Any
) -> None:
    api.on("GET", "/rest/posts", body, status)
    expect_error(
        OutcomeUnknown, lambda: li.lookup(draft(), key=KEY), f"lookup failed: .*HTTP {status}"
    )


# --- check -----------------------------------------------------------------------------


def test_check_organization(api: FakeLinkedIn, tmp_path: Path) -> None:
    expires = datetime.now(UTC) + timedelta(days=40)
    li = make(api.server.url_for("/"), tmp_path, token_expires=expires)
    organization = {"id": 2414183, "localizedName": "Devtestco", "vanityName": "devtestco"}
    api.on("GET", "/rest/organizations/2414183", organization)
    info = li.check()
    assert info == AccountInfo(
        f"Devtestco ({ORG})",
        expires,
        (f"LinkedIn-Version {DEFAULT_VERSION}", f"access token expires on {expires.date()}"),
    )
    assert versioned(api.seen[0])


def test_check_person_and_token_expiring_soon(api: FakeLinkedIn, tmp_path: Path) -> None:
    expires = datetime.now(UTC) + timedelta(days=3, hours=1)
    li = make(api.server.url_for("/"), tmp_path, author=MEMBER, token_expires=expires)
    api.on("GET", "/v2/userinfo", {"sub": "782bbtaQ", "name": "John Doe", "email_verified": True})
    info = li.check()
    assert info.account == f"John Doe ({MEMBER})" and info.expires_at == expires
    assert info.details[-1] == (
        f"access token expires in 3 day(s), on {expires.date()}: re-authorise soon"
    )
    [request] = api.seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Linkedin-Version" not in request.headers  # /v2/userinfo is OpenID Connect, unversioned


def test_check_warns_about_another_member_and_an_expired_token(
    api: FakeLinkedIn, tmp_path: Path
) -> None:
    li = make(api.server.url_for("/"), tmp_path, author=MEMBER, token_expires="2026-01-01")
    api.on("GET", "/v2/userinfo", {"sub": "someoneElse", "name": "Jane Roe"})
    info = li.check()
    assert "the token belongs to urn:li:person:someoneElse: posts will fail" in info.details
    assert info.details[-1] == (
        "access token expired on 2026-01-01: re-authorise and update access_token"
    )


def test_check_without_permission_to_read_the_page(api: FakeLinkedIn, li: LinkedIn) -> None:
    body = {"status": 403, "message": "Not enough permissions"}
    api.on("GET", "/rest/organizations/2414183", body, 403)
    info = li.check()
    assert info.account == ORG
    assert (
        "cannot read /rest/organizations/2414183 (HTTP 403): Not enough permissions" in info.details
    )


def test_check_with_bad_token(api: FakeLinkedIn, li: LinkedIn) -> None:
    api.on("GET", "/rest/organizations/2414183", INVALID_TOKEN, 401)
    expect_error(AuthExpired, li.check, "Invalid access token")


# --- reported shapes (skipped without ../shared/corpus) ---------------------------------


def test_reported_invalid_token_body(api: FakeLinkedIn, li: LinkedIn) -> None:
    """The 401 body quoted in the corpus's issue summary, as LinkedIn sent it."""
    file = CORPUS / "ERRORS-REPORTED-IN-ISSUES.md"
    if not file.exists():
        pytest.skip("shared corpus not available")
    row = next(
        line for line in file.read_text().splitlines() if line.startswith("| invalid token | 401")
    )
    body = re.search(r"`(\{.*\})`", row)
    assert body is not None
    api.on("POST", "/rest/posts", body.group(1), 401)
    expect_error(AuthExpired, lambda: li.publish(draft(), key=KEY), "Invalid access token")
