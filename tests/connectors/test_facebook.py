"""Facebook Page connector against a local HTTP server speaking the Graph API's shapes.

Answers come inline (always run) and, when `../shared/corpus` is beside the repository,
from bodies the python-facebook authors captured from the real Graph API.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import facebook
import pytest
from PIL import Image as PILImage
from pytest_httpserver import HTTPServer

from connectors.facebook import FacebookPage
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
from syndicator.models import AccountInfo, Draft, Image, ImageFile, Post, Receipt
from tests.connectors.support import (
    RecordingServer,
    Seen,
    closed_port_url,
    raises_without_secrets,
)

TOKEN = "EAAGpage-token-7f3e9c1d-SECRET"
KEY = "syndicator-12-34"
PAGE = "1000001"
EVENTS = "2000002"
NEWS = "2000003"
DEFAULT = "2000009"
LINK = "https://blog.example/2026/10/open-day/"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "platform-recordings"


def png() -> bytes:
    """A real (tiny) PNG made with Pillow."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (4, 3), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()


class FakeGraph(RecordingServer):
    """Routes on a pytest-httpserver that answer like the Graph API and record requests."""

    def content_type(self, status: int) -> str | None:
        return "application/json; charset=UTF-8"


def load_image(image: Image, limits: Limits) -> ImageFile:
    """The core's image loader, faked: real PNG bytes carrying the post's alt text."""
    assert limits is FacebookPage.limits
    return ImageFile(PNG, "image/png", 4, 3, alt=image.alt, source_url=image.url)


def make(
    api_base: str,
    tmp_path: Path,
    *,
    timeout: float = 5.0,
    text: TextOptions | None = None,
    loader: Any = load_image,
    **options: Any,
) -> FacebookPage:
    """A connector for target "fb" with the given options over the defaults."""
    context = ConnectorContext("fb", text or TextOptions(), tmp_path, loader, timeout=timeout)
    defaults: dict[str, Any] = {
        "page_id": PAGE,
        "access_token": TOKEN,
        "albums": {"events": EVENTS, "News": int(NEWS)},
        "api_base": api_base,
    }
    return FacebookPage({**defaults, **options}, context)


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[FakeGraph]:
    graph = FakeGraph(httpserver)
    yield graph
    # A handler still sleeping after a client timeout must not answer the next test's request.
    with graph.busy:
        httpserver.check_assertions()  # no request went unanswered


@pytest.fixture
def fb(httpserver: HTTPServer, tmp_path: Path) -> FacebookPage:
    return make(httpserver.url_for("/"), tmp_path)


def post(**fields: Any) -> Post:
    values: dict[str, Any] = {"feed": "blog", "guid": "1", "url": LINK, "title": "Open day"}
    return Post(**{**values, **fields})


def graph_error(code: int, message: str = "boom", subcode: int | None = None) -> dict[str, Any]:
    """The Graph API's error envelope."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": {**error, "fbtrace_id": "A1m6KK6iBqvjzPeQd4DYbKM"}}


def no_token_in(seen: Seen) -> None:
    """The token travels in the Authorization header only: never in a URL or a form."""
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "access_token" not in seen.args and "access_token" not in seen.form


def expect_error(kind: type[Exception], call: Any, match: str | None = None) -> Any:
    """Run `call`, expect `kind`; no secret in any part of the error."""
    return raises_without_secrets(kind, call, match, (TOKEN,))


def feed_draft(**fields: Any) -> Draft:
    return Draft(**{"text": f"Open day\n\n{LINK}", "link": LINK, **fields})


def photo_draft(**fields: Any) -> Draft:
    images = (Image("https://blog.example/open-day.png", "Visitors at the door"),)
    return feed_draft(**{"images": images, "album": EVENTS, **fields})


# --- options ---------------------------------------------------------------------------


def test_is_a_connector(fb: FacebookPage) -> None:
    assert isinstance(fb, Connector)
    assert FacebookPage.name == "facebook" and FacebookPage.secret_keys == ("access_token",)
    assert FacebookPage.can_lookup
    limits = FacebookPage.limits
    assert (limits.max_chars, limits.counting, limits.max_images) == (63206, "chars", 1)
    assert limits.max_image_bytes == 4_000_000
    assert limits.image_types == ("image/jpeg", "image/png")


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"page_id": None}, "page_id"),
        ({"page_id": "my-page"}, "page_id"),
        ({"page_id": True}, "page_id"),
        ({"page_id": "../me"}, "page_id"),
        ({"access_token": None}, "access_token"),
        ({"access_token": "  "}, "access_token"),
        ({"albums": ["2000002"]}, "albums"),
        ({"albums": {"events": "Events album"}}, "albums.events"),
        ({"albums": {"Events": EVENTS, "events ": NEWS}}, "albums"),
        ({"default_album": "x"}, "default_album"),
        ({"api_base": "http://graph.facebook.com"}, "api_base"),
        ({"api_base": "graph.facebook.com"}, "api_base"),
        ({"api_version": "v23.0"}, "api_version"),
        ({"api_version": "24.0"}, "api_version"),
        ({"api_version": "latest"}, "api_version"),
        ({"api_version": None}, "api_version"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, Any], key: str, tmp_path: Path) -> None:
    base = options.pop("api_base", "https://graph.facebook.com")
    with pytest.raises(ConfigError, match=key) as info:
        make(base, tmp_path, **options)
    assert TOKEN not in str(info.value)


def test_invalid_template_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        make("https://graph.facebook.com", tmp_path, text=TextOptions(template="{titel}"))


def test_defaults_and_no_network(tmp_path: Path) -> None:
    fb = FacebookPage(
        {"page_id": int(PAGE), "access_token": TOKEN},
        ConnectorContext("fb", TextOptions(), tmp_path, load_image),
    )
    assert (fb.api_base, fb.api_version) == ("https://graph.facebook.com", "v24.0")
    assert fb.page_id == PAGE and fb.albums == {} and fb.default_album is None
    make("https://graph.invalid", tmp_path, api_version="v26.0", default_album=DEFAULT)


# --- prepare ---------------------------------------------------------------------------


def test_prepare_link_post(fb: FacebookPage) -> None:
    draft = fb.prepare(post(categories=("Events",)))
    assert draft == Draft(f"Open day\n\n{LINK}\n\n#Events", link=LINK)


def test_prepare_photo_into_the_category_album(fb: FacebookPage) -> None:
    images = (Image("https://blog.example/a.png", "A"), Image("https://blog.example/b.png"))
    draft = fb.prepare(post(categories=("Uncategorized", "EVENTS", "News"), images=images))
    assert draft.images == images[:1]
    assert draft.album == EVENTS  # first matching category, case-insensitive
    assert draft.link == LINK and LINK in draft.text
    assert draft.notes == (
        "photo into album 2000002 (category 'EVENTS')",
        "1 more image(s) left out: one photo per post",
    )


def test_prepare_photo_into_the_default_album(tmp_path: Path) -> None:
    fb = make("https://graph.invalid", tmp_path, default_album=DEFAULT)
    draft = fb.prepare(post(categories=("Jobs",), images=(Image("https://blog.example/a.png"),)))
    assert draft.album == DEFAULT
    assert draft.notes == ("photo into default_album 2000009",)


def test_prepare_photo_without_album_goes_to_the_page(fb: FacebookPage) -> None:
    draft = fb.prepare(post(categories=("Jobs",), images=(Image("https://blog.example/a.png"),)))
    assert draft.album is None
    assert draft.notes == (
        "no album for categories ['Jobs']: photo goes to the Page's own photos (/1000001/photos)",
    )


def test_caption_carries_the_link_even_when_the_template_has_none(tmp_path: Path) -> None:
    text = TextOptions(template="{title}: {summary}", utm={"source": "facebook"})
    fb = make("https://graph.invalid", tmp_path, text=text)
    tracked = f"{LINK}?utm_source=facebook"
    link_post = fb.prepare(post(summary="Come and see"))
    assert link_post == Draft("Open day: Come and see", link=tracked)  # link travels as `link`
    photo = fb.prepare(post(summary="Come and see", images=(Image("https://blog.example/a.png"),)))
    assert photo.text == f"Open day: Come and see\n\n{tracked}"
    assert photo.link == tracked
    assert "link added to the caption: the template has no {url}" in photo.notes


# --- publish ---------------------------------------------------------------------------


def test_event_post_with_image_lands_in_the_events_album(api: FakeGraph, fb: FacebookPage) -> None:
    """The client's key scenario, prepare to receipt."""
    api.on("POST", f"/v24.0/{EVENTS}/photos", {"id": "3001", "post_id": f"{PAGE}_4001"})
    image = Image("https://blog.example/open-day.png", "Visitors at the door")
    draft = fb.prepare(post(categories=("Events",), images=(image,)))
    receipt = fb.publish(draft, key=KEY)
    assert receipt == Receipt(f"{PAGE}_4001", f"https://www.facebook.com/{PAGE}_4001")
    assert TOKEN not in json.dumps(draft.to_dict()) + repr(receipt)
    [seen] = api.seen
    no_token_in(seen)
    assert seen.headers["Content-Type"].startswith("multipart/form-data")
    assert seen.files == {"source": ("image.png", PNG, "image/png")}
    assert seen.form == {
        "caption": [f"Open day\n\n{LINK}\n\n#Events"],
        "alt_text_custom": ["Visitors at the door"],
    }
    assert seen.args == {}


def test_post_without_image_is_a_link_post(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", {"id": f"{PAGE}_4002"})
    receipt = fb.publish(fb.prepare(post(categories=("Events",))), key=KEY)
    assert receipt == Receipt(f"{PAGE}_4002", f"https://www.facebook.com/{PAGE}_4002")
    [seen] = api.seen
    no_token_in(seen)
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.form == {"message": [f"Open day\n\n{LINK}\n\n#Events"], "link": [LINK]}
    assert "User-Agent" in seen.headers


def test_photo_without_album_goes_to_the_page_photos(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("POST", f"/v24.0/{PAGE}/photos", {"id": "3002"})  # no post_id: the photo's id
    receipt = fb.publish(photo_draft(album=None, images=(Image("u"),)), key=KEY)
    assert receipt == Receipt("3002", "https://www.facebook.com/3002")
    assert api.seen[0].form == {"caption": [f"Open day\n\n{LINK}"]}  # no alt: no empty field


def test_image_dropped_by_the_core_posts_the_text_to_the_feed(
    api: FakeGraph, fb: FacebookPage
) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", {"id": f"{PAGE}_4003"})
    fb.publish(photo_draft(images=()), key=KEY)
    assert api.seen[0].form == {"message": [f"Open day\n\n{LINK}"], "link": [LINK]}


def test_image_loader_errors_propagate(api: FakeGraph, tmp_path: Path) -> None:
    def broken(image: Image, limits: Limits) -> ImageFile:
        raise MediaError("too big")

    fb = make(api.server.url_for("/"), tmp_path, loader=broken)
    with pytest.raises(MediaError):
        fb.publish(photo_draft(), key=KEY)
    assert api.seen == []


def test_api_base_and_version_are_per_instance(api: FakeGraph, tmp_path: Path) -> None:
    api.on("POST", f"/a/v25.0/{PAGE}/feed", {"id": "1_1"})
    api.on("POST", f"/b/v24.0/{PAGE}/feed", {"id": "1_2"})
    first = make(api.server.url_for("/a/"), tmp_path, api_version="v25.0")
    second = make(api.server.url_for("/b"), tmp_path)
    assert first.publish(feed_draft(), key=KEY).remote_id == "1_1"
    assert second.publish(feed_draft(), key=KEY).remote_id == "1_2"
    assert facebook.FACEBOOK_GRAPH_URL == "https://graph.facebook.com/"  # never patched


def test_answer_without_id_is_unknown(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", {"success": True})
    expect_error(OutcomeUnknown, lambda: fb.publish(feed_draft(), key=KEY), "feed: answer without")


def test_no_secret_in_debug_logs(
    api: FakeGraph, fb: FacebookPage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.on("POST", f"/v24.0/{EVENTS}/photos", {"id": "3001", "post_id": f"{PAGE}_4001"})
    api.on("POST", f"/v24.0/{PAGE}/feed", graph_error(190, "Error validating access token"), 400)
    api.on("GET", f"/v24.0/{PAGE}/posts", {"data": []})
    fb.publish(photo_draft(), key=KEY)
    with pytest.raises(AuthExpired):
        fb.publish(feed_draft(), key=KEY)
    fb.lookup(feed_draft(), key=KEY)
    assert f"/v24.0/{PAGE}/posts?fields=" in caplog.text  # urllib3's request lines were captured
    assert "posted 1000001_4001 (key syndicator-12-34)" in caplog.text
    assert TOKEN not in caplog.text


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, graph_error(190, "Session has expired on Tuesday", 463), AuthExpired),
        (400, graph_error(190, "Error validating access token", 467), AuthExpired),
        (400, graph_error(102, "Session key invalid"), AuthExpired),
        (400, graph_error(100, "Invalid token", 463), AuthExpired),
        (403, graph_error(4, "Application request limit reached"), RateLimited),
        (403, graph_error(17, "User request limit reached"), RateLimited),
        (403, graph_error(32, "Page request limit reached"), RateLimited),
        (400, graph_error(613, "Calls to this api have exceeded the rate limit"), RateLimited),
        (
            400,
            graph_error(80001, "There have been too many calls to this Page account"),
            RateLimited,
        ),
        (400, graph_error(80006, "Too many calls"), RateLimited),
        (400, graph_error(506, "Duplicate status message"), DuplicateContent),
        (500, graph_error(1, "An unknown error occurred"), OutcomeUnknown),
        (503, graph_error(2, "Service temporarily unavailable"), OutcomeUnknown),
        (400, graph_error(100, "Invalid parameter"), PermanentError),
        (403, graph_error(200, "(#200) Requires pages_manage_posts permission"), PermanentError),
        (403, graph_error(10, "Permission denied"), PermanentError),
        (400, graph_error(368, "The action attempted has been deemed abusive"), PermanentError),
        (200, graph_error(190, "Error validating access token"), AuthExpired),  # 200, still error
    ],
)
def test_graph_errors_on_publish(
    api: FakeGraph, fb: FacebookPage, status: int, body: dict[str, Any], kind: type
) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", body, status)
    error = expect_error(kind, lambda: fb.publish(feed_draft(), key=KEY))
    graph = body["error"]
    assert f"POST /v24.0/{PAGE}/feed: HTTP {status}: Graph error {graph['code']}" in str(error)
    assert graph["message"] in str(error) and "A1m6KK6iBqvjzPeQd4DYbKM" in str(error)


def test_transient_graph_error_on_a_get_is_retryable(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("GET", f"/v24.0/{PAGE}/posts", graph_error(2, "Service temporarily unavailable"), 500)
    expect_error(RetryableError, lambda: fb.lookup(feed_draft(), key=KEY), "Graph error 2")


def test_business_use_case_header_gives_retry_after(api: FakeGraph, fb: FacebookPage) -> None:
    usage = {
        "104873": [
            {
                "type": "pages",
                "call_count": 100,
                "total_time": 12,
                "total_cputime": 9,
                "estimated_time_to_regain_access": 19,
            },
            {"type": "messenger", "call_count": 1, "estimated_time_to_regain_access": 0},
        ]
    }
    headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
    api.on("POST", f"/v24.0/{PAGE}/feed", graph_error(80001, "Too many calls"), 400, headers)
    error = expect_error(RateLimited, lambda: fb.publish(feed_draft(), key=KEY))
    assert error.retry_after == 19 * 60


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"X-App-Usage": '{"call_count": 100, "estimated_time_to_regain_access": 5}'}, 300.0),
        ({"X-App-Usage": '{"call_count": 100, "total_time": 20, "total_cputime": 20}'}, None),
        ({"X-Business-Use-Case-Usage": "not json", "Retry-After": "30"}, 30.0),
        ({}, None),
    ],
)
def test_retry_after_from_other_headers(
    api: FakeGraph, fb: FacebookPage, headers: dict[str, str], retry_after: float | None
) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", graph_error(4, "Application limit"), 403, headers)
    error = expect_error(RateLimited, lambda: fb.publish(feed_draft(), key=KEY))
    assert error.retry_after == retry_after


def test_429_without_graph_body_uses_the_usage_header(api: FakeGraph, fb: FacebookPage) -> None:
    headers = {"X-Page-Usage": '{"call_count": 100, "estimated_time_to_regain_access": 2}'}
    api.on(
        "POST",
        f"/v24.0/{PAGE}/feed",
        "<html>slow down</html>",
        429,
        headers,
        content_type="text/html",
    )
    error = expect_error(RateLimited, lambda: fb.publish(feed_draft(), key=KEY), "HTTP 429")
    assert error.retry_after == 120


def test_500_html_on_publish_is_unknown(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", "<html>oops</html>", 500, content_type="text/html")
    expect_error(OutcomeUnknown, lambda: fb.publish(feed_draft(), key=KEY), "HTTP 500")


def test_503_html_on_publish_is_retryable(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("POST", f"/v24.0/{EVENTS}/photos", "<html>down</html>", 503, content_type="text/html")
    expect_error(RetryableError, lambda: fb.publish(photo_draft(), key=KEY), "HTTP 503")


def test_500_on_lookup_is_retryable(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("GET", f"/v24.0/{PAGE}/posts", "<html>oops</html>", 500, content_type="text/html")
    expect_error(RetryableError, lambda: fb.lookup(feed_draft(), key=KEY), "HTTP 500")


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_unreadable_success_on_publish_is_unknown(
    api: FakeGraph, fb: FacebookPage, content_type: str | None
) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", "{not json", 200, content_type=content_type)
    expect_error(OutcomeUnknown, lambda: fb.publish(feed_draft(), key=KEY), "unreadable")


def test_graph_error_with_an_unexpected_content_type(api: FakeGraph, fb: FacebookPage) -> None:
    body = json.dumps(graph_error(506, "Duplicate status message"))
    api.on("POST", f"/v24.0/{PAGE}/feed", body, 400, content_type="text/javascript")
    expect_error(DuplicateContent, lambda: fb.publish(feed_draft(), key=KEY), "Graph error 506")


def test_error_text_echoing_the_token_is_redacted(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", graph_error(100, f"bad value {TOKEN}"), 400)
    expect_error(PermanentError, lambda: fb.publish(feed_draft(), key=KEY), "redacted")


def test_rejected_media_is_a_media_error(api: FakeGraph, fb: FacebookPage) -> None:
    """So the core can post text with link instead (on_image_error)."""
    body = graph_error(324, "(#324) Requires upload file", 2069019)
    api.on("POST", f"/v24.0/{EVENTS}/photos", body, 400)
    expect_error(MediaError, lambda: fb.publish(photo_draft(), key=KEY), "Requires upload")


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    fb = make(closed_port_url(), tmp_path)
    expect_error(RetryableError, lambda: fb.publish(feed_draft(), key=KEY), "connection failed")


def test_read_timeout_after_sending_is_unknown(api: FakeGraph, tmp_path: Path) -> None:
    api.on("POST", f"/v24.0/{PAGE}/feed", {"id": "1_1"}, delay=0.5)
    fb = make(api.server.url_for("/"), tmp_path, timeout=0.2)
    expect_error(OutcomeUnknown, lambda: fb.publish(feed_draft(), key=KEY), "no answer within")


def test_read_timeout_on_lookup_is_retryable(api: FakeGraph, tmp_path: Path) -> None:
    api.on("GET", f"/v24.0/{PAGE}/posts", {"data": []}, delay=0.5)
    fb = make(api.server.url_for("/"), tmp_path, timeout=0.2)
    expect_error(RetryableError, lambda: fb.lookup(feed_draft(), key=KEY), "read timed out")


@pytest.fixture
def resetting_server() -> Iterator[str]:
    """A server that reads a whole request, then resets the connection without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    thread.join(5)


def test_reset_after_sending_is_unknown(resetting_server: str, tmp_path: Path) -> None:
    fb = make(resetting_server, tmp_path)
    expect_error(OutcomeUnknown, lambda: fb.publish(feed_draft(), key=KEY), "lost after sending")


# --- lookup ----------------------------------------------------------------------------


def test_lookup_finds_the_link_in_a_post_message(api: FakeGraph, fb: FacebookPage) -> None:
    permalink = f"https://www.facebook.com/{PAGE}/posts/4004"
    posts = {
        "data": [
            {"id": f"{PAGE}_4005", "message": "https://blog.example/2026/10/other/"},
            {"id": f"{PAGE}_4004", "message": f"Open day {LINK}", "permalink_url": permalink},
        ],
        "paging": {"cursors": {"before": "b", "after": "a"}},
    }
    api.on("GET", f"/v24.0/{PAGE}/posts", posts)
    assert fb.lookup(feed_draft(), key=KEY) == Receipt(f"{PAGE}_4004", permalink)
    [seen] = api.seen
    no_token_in(seen)
    assert seen.args == {
        "fields": "id,message,permalink_url,created_time,attachments{unshimmed_url}",
        "limit": "25",
    }


def test_lookup_finds_the_link_in_an_attachment(api: FakeGraph, fb: FacebookPage) -> None:
    share = {"type": "share", "unshimmed_url": LINK, "url": "https://l.facebook.com/l.php?u=x"}
    item = {"id": f"{PAGE}_4006", "message": "No link here", "attachments": {"data": [share]}}
    api.on("GET", f"/v24.0/{PAGE}/posts", {"data": [item]})
    found = fb.lookup(feed_draft(), key=KEY)
    assert found == Receipt(f"{PAGE}_4006", f"https://www.facebook.com/{PAGE}_4006")


def test_lookup_finds_a_photo_in_its_album(api: FakeGraph, fb: FacebookPage) -> None:
    link = "https://www.facebook.com/blog/photos/a.2000002/3001/?type=3"
    photos = {
        "data": [
            {
                "id": "3001",
                "name": f"Open day {LINK}",
                "link": link,
                "page_story_id": f"{PAGE}_4001",
            }
        ]
    }
    api.on("GET", f"/v24.0/{EVENTS}/photos", photos)
    assert fb.lookup(photo_draft(), key=KEY) == Receipt(f"{PAGE}_4001", link)
    no_token_in(api.seen[0])
    assert api.seen[0].args == {"fields": "id,name,link,page_story_id", "limit": "25"}


def test_lookup_of_a_photo_also_finds_the_text_fallback(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("GET", f"/v24.0/{PAGE}/photos", {"data": [{"id": "3009", "name": "Another post"}]})
    api.on("GET", f"/v24.0/{PAGE}/posts", {"data": [{"id": f"{PAGE}_4007", "message": LINK}]})
    found = fb.lookup(photo_draft(album=None), key=KEY)
    assert found == Receipt(f"{PAGE}_4007", f"https://www.facebook.com/{PAGE}_4007")
    assert api.seen[0].args["type"] == "uploaded"  # the Page's photos, not its profile pictures


def test_lookup_not_found(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("GET", f"/v24.0/{PAGE}/posts", {"data": [{"id": "1_2", "message": "Hello"}, {}]})
    assert fb.lookup(feed_draft(), key=KEY) is None


def test_lookup_without_link_asks_nothing(api: FakeGraph, fb: FacebookPage) -> None:
    assert fb.lookup(feed_draft(link=None), key=KEY) is None
    assert api.seen == []


# --- check -----------------------------------------------------------------------------


def test_check(api: FakeGraph, tmp_path: Path) -> None:
    fb = make(api.server.url_for("/"), tmp_path, default_album=EVENTS)
    api.on("GET", "/v24.0/me", {"id": PAGE, "name": "Acme Bakery"})
    api.on("GET", f"/v24.0/{EVENTS}", {"id": EVENTS, "name": "Events", "can_upload": True})
    api.on("GET", f"/v24.0/{NEWS}", {"id": NEWS, "name": "News", "can_upload": True})
    info = fb.check()
    assert info.account == "Acme Bakery (Page 1000001)" and info.expires_at is None
    assert info.details[:3] == (
        "album 2000002 (category 'events', default_album): 'Events'",
        "album 2000003 (category 'news'): 'News'",
        "Graph API v24.0",
    )
    assert "token expiry: none" in info.details[3]
    assert [s.path for s in api.seen] == ["/v24.0/me", f"/v24.0/{EVENTS}", f"/v24.0/{NEWS}"]
    assert api.seen[0].args == {"fields": "id,name"}
    assert api.seen[1].args == {"fields": "id,name,can_upload"}
    for seen in api.seen:
        no_token_in(seen)


def test_check_names_a_missing_album_and_its_category(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("GET", "/v24.0/me", {"id": PAGE, "name": "Acme Bakery"})
    missing = graph_error(100, "Unsupported get request. Object with ID '2000002' does not exist")
    api.on("GET", f"/v24.0/{EVENTS}", missing, 400)
    api.on("GET", f"/v24.0/{NEWS}", {"id": NEWS, "name": "News", "can_upload": False})
    with pytest.raises(ConfigError) as info:
        fb.check()
    message = str(info.value)
    assert "album 2000002 (category 'events') cannot be read" in message
    assert "does not exist" in message
    assert "album 2000003 (category 'news') 'News' does not accept uploads" in message
    assert "cannot be created through the API" in message and TOKEN not in message


def test_check_rejects_a_user_token(api: FakeGraph, fb: FacebookPage) -> None:
    api.on("GET", "/v24.0/me", {"id": "555", "name": "Jane Doe"})
    with pytest.raises(ConfigError, match="not a Page access token for page_id 1000001"):
        fb.check()


def test_check_with_expired_token(api: FakeGraph, fb: FacebookPage) -> None:
    body = graph_error(190, "Error validating access token: Session has expired", 463)
    api.on("GET", "/v24.0/me", body, 400)
    expect_error(AuthExpired, fb.check, "Session has expired")


# --- real recorded shapes (skipped without ../shared/corpus) ----------------------------


def recorded(name: str) -> Any:
    """A Graph API body the python-facebook authors captured (tokens replaced)."""
    file = CORPUS / "facebook-graph" / name
    if not file.exists():
        pytest.skip("shared corpus not available")
    return json.loads(file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["error.json", "error_data.json"])
def test_recorded_code_100_is_permanent(api: FakeGraph, fb: FacebookPage, name: str) -> None:
    body = recorded(name)
    api.on("POST", f"/v24.0/{EVENTS}/photos", body, 400)
    error = expect_error(PermanentError, lambda: fb.publish(photo_draft(), key=KEY))
    assert "Graph error 100: (#100)" in str(error)
    assert body["error"]["fbtrace_id"] in str(error)


def test_recorded_create_answer(api: FakeGraph, fb: FacebookPage) -> None:
    body = recorded("create_resp.json")
    api.on("POST", f"/v24.0/{PAGE}/feed", body)
    assert fb.publish(feed_draft(), key=KEY).remote_id == body["id"]


def test_recorded_feed_lookup_by_message_and_by_attachment(
    api: FakeGraph, fb: FacebookPage
) -> None:
    feed = recorded("feeds_default_fields_p1.json")
    api.on("GET", f"/v24.0/{PAGE}/posts", feed)
    first, second = feed["data"][:2]
    found = fb.lookup(feed_draft(link="https://fb.me/Ninja-Van-Success-Story"), key=KEY)
    assert found == Receipt(first["id"], first["permalink_url"])
    shared = second["attachments"]["data"][0]["unshimmed_url"]
    assert shared not in second["message"]
    assert fb.lookup(feed_draft(link=shared), key=KEY) == Receipt(
        second["id"], second["permalink_url"]
    )


def test_recorded_page_for_check(api: FakeGraph, tmp_path: Path) -> None:
    page = recorded("single_fields_page.json")
    fb = make(api.server.url_for("/"), tmp_path, page_id=page["id"], albums={})
    api.on("GET", "/v24.0/me", page)
    info = fb.check()
    assert info == AccountInfo(
        "Facebook (Page 20531316728)", None, ("Graph API v24.0", info.details[1])
    )
