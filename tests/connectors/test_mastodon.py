"""Mastodon connector against a local HTTP server speaking the documented API shapes.

Answers come inline (always run) and, when `../shared/corpus` is beside the repository,
from VCR cassettes Mastodon.py recorded against a real Mastodon 4.6.4 server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from connectors.mastodon import Mastodon
from syndicator.connector import Connector, ConnectorContext, Limits, TextOptions
from syndicator.errors import (
    AuthExpired,
    ConfigError,
    MediaError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.models import AccountInfo, Draft, Image, ImageFile, Post, Receipt
from tests.connectors.support import (
    RecordingServer,
    closed_port_url,
    raises_without_secrets,
)

TOKEN = "tok-9f8e7d6c5b4a-SECRET"
KEY = "delivery-42"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "platform-recordings"

STATUS = {"id": "110", "url": "https://masto.test/@blog/110", "content": "<p>Hi</p>"}
MEDIA = {"id": "220", "type": "image", "url": "https://masto.test/m/220.png", "description": "A"}
ACCOUNT = {"id": "7", "username": "blog", "acct": "blog"}
INSTANCE = {"domain": "masto.test", "configuration": {"statuses": {"max_characters": 500}}}


class FakeMastodon(RecordingServer):
    """Routes on a pytest-httpserver that answer and record what they were sent."""


def load_image(image: Image, limits: Limits) -> ImageFile:
    """The core's image loader, faked: a tiny PNG carrying the post's alt text."""
    return ImageFile(PNG, "image/png", 1, 1, alt=image.alt, source_url=image.url)


def make(api_base: str, tmp_path: Path, timeout: float = 5.0, **options: Any) -> Mastodon:
    """A connector for target "masto" with the given options over the defaults."""
    context = ConnectorContext(
        target="masto",
        text=TextOptions(),
        state_dir=tmp_path,
        load_image=load_image,
        timeout=timeout,
    )
    connector = Mastodon({"api_base": api_base, "access_token": TOKEN, **options}, context)
    connector.poll_delays = (0.0, 0.0, 0.0)
    return connector


@pytest.fixture
def api(httpserver: HTTPServer) -> FakeMastodon:
    yield FakeMastodon(httpserver)
    httpserver.check_assertions()  # no request went unanswered


@pytest.fixture
def masto(httpserver: HTTPServer, tmp_path: Path) -> Mastodon:
    return make(httpserver.url_for("/"), tmp_path)


def post(**fields: Any) -> Post:
    values: dict[str, Any] = {"feed": "blog", "guid": "1", "url": "https://blog.example/p/1/"}
    return Post(**{**values, "title": "Hello world", **fields})


def draft(**fields: Any) -> Draft:
    values: dict[str, Any] = {
        "text": "Hello https://blog.example/p/1/",
        "link": "https://blog.example/p/1/",
    }
    return Draft(**{**values, "fields": {"visibility": "public", "language": "en"}, **fields})


def expect_error(kind: type[Exception], call: Any, match: str | None = None) -> Any:
    """Run `call`, expect `kind`; no secret in any part of the error."""
    return raises_without_secrets(kind, call, match, (TOKEN,), exact=False)


# --- options ---------------------------------------------------------------------------


def test_is_a_connector(masto: Mastodon) -> None:
    assert isinstance(masto, Connector)
    assert Mastodon.name == "mastodon" and Mastodon.secret_keys == ("access_token",)
    assert Mastodon.limits.url_length == 23 and Mastodon.can_lookup


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"api_base": None}, "api_base"),
        ({"api_base": "mastodon.social"}, "api_base"),
        ({"api_base": "http://mastodon.social"}, "api_base"),
        ({"access_token": None}, "access_token"),
        ({"access_token": " "}, "access_token"),
        ({"visibility": "direct"}, "visibility"),
        ({"language": "English"}, "language"),
        ({"max_characters": "500"}, "max_characters"),
        ({"max_characters": 0}, "max_characters"),
        ({"sensitive": "yes"}, "sensitive"),
        ({"spoiler_text": "x" * 500}, "spoiler_text"),
    ],
)
def test_invalid_options_name_the_key(options: dict, key: str, tmp_path: Path) -> None:
    base = options.pop("api_base", "https://mastodon.social")
    with pytest.raises(ConfigError, match=key) as info:
        make(base, tmp_path, **options)
    assert TOKEN not in str(info.value)


def test_options_need_no_network(tmp_path: Path) -> None:
    make("https://mastodon.invalid", tmp_path, visibility="unlisted", language="pt-BR")


# --- prepare ---------------------------------------------------------------------------


def test_prepare(masto: Mastodon) -> None:
    images = tuple(Image(f"https://blog.example/{i}.png", f"alt {i}") for i in range(6))
    result = masto.prepare(post(images=images, categories=("News",), language="fr-FR"))
    assert result.text == "Hello world\n\nhttps://blog.example/p/1/\n\n#News"
    assert result.link == "https://blog.example/p/1/"
    assert result.images == images[:4]
    assert result.fields == {"visibility": "public", "language": "fr"}
    assert result.notes == ("2 image(s) over the limit of 4 left out",)


def test_prepare_fits_instance_limit_minus_content_warning(tmp_path: Path) -> None:
    masto = make("https://masto.test", tmp_path, max_characters=60, spoiler_text="CW: spoilers")
    result = masto.prepare(post(title="word " * 40))
    assert len(result.text) <= 60 - len("CW: spoilers")
    assert result.fields["spoiler_text"] == "CW: spoilers"
    assert result.text.endswith("https://blog.example/p/1/")


# --- publish ---------------------------------------------------------------------------


def test_publish_text_only(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v1/statuses", STATUS)
    receipt = masto.publish(draft(), key=KEY)
    assert receipt == Receipt("110", "https://masto.test/@blog/110")
    [request] = api.seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "status": ["Hello https://blog.example/p/1/"],
        "visibility": ["public"],
        "language": ["en"],
    }


def test_publish_sends_content_warning_and_sensitive(api: FakeMastodon, tmp_path: Path) -> None:
    masto = make(api.server.url_for("/"), tmp_path, sensitive=True, spoiler_text="CW")
    api.on("POST", "/api/v1/statuses", STATUS)
    masto.publish(masto.prepare(post()), key=KEY)
    form = api.seen[0].form
    assert form["spoiler_text"] == ["CW"] and form["sensitive"] == ["true"]
    assert "language" not in form  # neither configured nor known from the feed


def test_publish_with_images_ready(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v2/media", MEDIA, once=True)
    api.on("POST", "/api/v2/media", {**MEDIA, "id": "221"}, once=True)
    api.on("POST", "/api/v1/statuses", STATUS)
    images = (Image("https://blog.example/a.png", "A cat"), Image("https://blog.example/b.png"))
    masto.publish(draft(images=images), key=KEY)
    first, second, status = api.seen
    assert (first.method, first.path) == ("POST", "/api/v2/media")
    assert first.headers["Content-Type"].startswith("multipart/form-data")
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first.files == {"file": ("image.png", PNG, "image/png")}
    assert first.form == {"description": ["A cat"]}
    assert second.form == {}  # no alt text: no empty description
    assert status.form["media_ids[]"] == ["220", "221"]
    assert status.headers["Idempotency-Key"] == KEY


def test_publish_waits_for_processing(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v2/media", {**MEDIA, "url": None}, status=202)
    api.on("GET", "/api/v1/media/220", {**MEDIA, "url": None}, status=206, once=True)
    api.on("GET", "/api/v1/media/220", MEDIA, once=True)
    api.on("POST", "/api/v1/statuses", STATUS)
    assert masto.publish(draft(images=(Image("https://blog.example/a.png"),)), key=KEY).remote_id
    assert [(s.method, s.path) for s in api.seen] == [
        ("POST", "/api/v2/media"),
        ("GET", "/api/v1/media/220"),
        ("GET", "/api/v1/media/220"),
        ("POST", "/api/v1/statuses"),
    ]
    assert api.seen[-1].form["media_ids[]"] == ["220"]


def test_publish_gives_up_on_endless_processing(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v2/media", {**MEDIA, "url": None}, status=202)
    api.on("GET", "/api/v1/media/220", {**MEDIA, "url": None}, status=206)
    expect_error(RetryableError, lambda: masto.publish(draft(images=(Image("u"),)), key=KEY))
    assert [s.path for s in api.seen].count("/api/v1/media/220") == 3
    assert "/api/v1/statuses" not in [s.path for s in api.seen]


def test_image_loader_errors_propagate(api: FakeMastodon, tmp_path: Path) -> None:
    def broken(image: Image, limits: Limits) -> ImageFile:
        raise MediaError("too big")

    masto = make(api.server.url_for("/"), tmp_path)
    masto.context = ConnectorContext("masto", TextOptions(), tmp_path, broken)
    with pytest.raises(MediaError):
        masto.publish(draft(images=(Image("u"),)), key=KEY)
    assert api.seen == []


# --- errors ----------------------------------------------------------------------------


def test_401_is_auth_expired(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v1/statuses", {"error": "The access token is invalid"}, 401)
    expect_error(AuthExpired, lambda: masto.publish(draft(), key=KEY), "access token is invalid")


def test_403_missing_scope_is_auth_expired(api: FakeMastodon, masto: Mastodon) -> None:
    body = {"error": "This action is outside the authorized scopes"}
    api.on("POST", "/api/v1/statuses", body, 403)
    expect_error(AuthExpired, lambda: masto.publish(draft(), key=KEY), "authorized scopes")


def test_429_uses_the_iso_reset_header(api: FakeMastodon, masto: Mastodon) -> None:
    reset = datetime.now(UTC) + timedelta(seconds=120)
    headers = {"X-RateLimit-Reset": reset.isoformat(timespec="microseconds").replace("+00:00", "Z")}
    api.on("POST", "/api/v1/statuses", {"error": "Too many requests"}, 429, headers)
    error = expect_error(RateLimited, lambda: masto.publish(draft(), key=KEY))
    assert error.retry_after is not None and 110 <= error.retry_after <= 120


def test_422_is_permanent(api: FakeMastodon, masto: Mastodon) -> None:
    body = {"error": "Validation failed: Text character limit of 500 exceeded"}
    api.on("POST", "/api/v1/statuses", body, 422)
    expect_error(PermanentError, lambda: masto.publish(draft(), key=KEY), "character limit of 500")


def test_500_on_statuses_is_unknown_so_the_core_looks_up_first(
    api: FakeMastodon, masto: Mastodon
) -> None:
    # Idempotency-Key lasts one hour only: a resend later could duplicate, so never assume.
    api.on("POST", "/api/v1/statuses", "<html>oops</html>", 500)
    expect_error(OutcomeUnknown, lambda: masto.publish(draft(), key=KEY), "HTTP 500")


def test_503_on_statuses_is_retryable(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v1/statuses", "<html>down</html>", 503)
    error = expect_error(RetryableError, lambda: masto.publish(draft(), key=KEY), "HTTP 503")
    assert type(error) is RetryableError


def test_error_text_echoing_the_token_is_redacted(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("POST", "/api/v1/statuses", {"error": f"bad token {TOKEN}"}, 422)
    expect_error(PermanentError, lambda: masto.publish(draft(), key=KEY), "redacted")


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    masto = make(closed_port_url(), tmp_path)
    expect_error(RetryableError, lambda: masto.publish(draft(), key=KEY), "connection failed")


def test_read_timeout_after_sending_is_unknown(api: FakeMastodon, tmp_path: Path) -> None:
    api.on("POST", "/api/v1/statuses", STATUS, delay=0.5)
    masto = make(api.server.url_for("/"), tmp_path, timeout=0.2)
    expect_error(OutcomeUnknown, lambda: masto.publish(draft(), key=KEY), "no answer within")


# --- lookup and check ------------------------------------------------------------------


def linked(status_id: str, href: str) -> dict[str, Any]:
    """A status whose content links `href` the way Mastodon renders links."""
    content = (
        f'<p>New post <a href="{href}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">https://</span><span class="ellipsis">blog.example/p/</span>'
        f'<span class="invisible">1/</span></a></p>'
    )
    return {"id": status_id, "url": f"https://masto.test/@blog/{status_id}", "content": content}


def test_lookup_finds_the_link(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("GET", "/api/v1/accounts/verify_credentials", ACCOUNT)
    statuses = [
        linked("1", "https://blog.example/p/2/"),
        linked("2", "https://blog.example/p/1/?utm_source=mastodon&amp;utm_medium=social"),
    ]
    api.on("GET", "/api/v1/accounts/7/statuses", statuses)
    assert masto.lookup(draft(), key=KEY) == Receipt("2", "https://masto.test/@blog/2")
    assert api.seen[1].args["limit"] == "40"
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in api.seen)


def test_lookup_not_found(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("GET", "/api/v1/accounts/verify_credentials", ACCOUNT)
    api.on("GET", "/api/v1/accounts/7/statuses", [linked("1", "https://blog.example/p/10/")])
    assert masto.lookup(draft(), key=KEY) is None


def test_check(api: FakeMastodon, masto: Mastodon) -> None:
    api.on("GET", "/api/v1/accounts/verify_credentials", ACCOUNT)
    api.on("GET", "/api/v2/instance", INSTANCE)
    info = masto.check()
    assert info.account == "@blog@masto.test"
    assert info.details == ("instance max_characters: 500; using 500",)


def test_check_warns_when_configured_above_the_instance(api: FakeMastodon, tmp_path: Path) -> None:
    api.on("GET", "/api/v1/accounts/verify_credentials", ACCOUNT)
    api.on("GET", "/api/v2/instance", INSTANCE)
    info = make(api.server.url_for("/"), tmp_path, max_characters=1000).check()
    assert "above the instance's limit" in info.details[-1]


def test_check_with_bad_token(api: FakeMastodon, masto: Mastodon) -> None:
    api.on(
        "GET", "/api/v1/accounts/verify_credentials", {"error": "The access token is invalid"}, 401
    )
    expect_error(AuthExpired, masto.check)


# --- real recorded shapes (skipped without ../shared/corpus) ----------------------------


def recorded(cassette: str, method: str, path: str, index: int = 0) -> dict[str, Any]:
    """One recorded interaction of a Mastodon.py cassette, request and response."""
    yaml = pytest.importorskip("yaml")
    file = CORPUS / "mastodon" / cassette
    if not file.exists():
        pytest.skip("shared corpus not available")
    interactions = yaml.safe_load(file.read_text(encoding="utf-8"))["interactions"]
    matching = [
        i
        for i in interactions
        if i["request"]["method"] == method and i["request"]["uri"].rstrip("/").endswith(path)
    ]
    return matching[index]


def replay(api: FakeMastodon, method: str, path: str, interaction: dict[str, Any]) -> None:
    """Serve a recorded response, with its status and rate-limit headers."""
    response = interaction["response"]
    headers = {k: v[0] for k, v in response["headers"].items() if k.startswith("x-ratelimit")}
    api.on(method, path, response["body"]["string"], response["status"]["code"], headers)


def test_recorded_status_post(api: FakeMastodon, masto: Mastodon) -> None:
    interaction = recorded("test_status_post[None-public].yaml", "POST", "/api/v1/statuses")
    replay(api, "POST", "/api/v1/statuses", interaction)
    receipt = masto.publish(draft(text="Toot!", fields={"visibility": "public"}), key=KEY)
    assert receipt == Receipt(
        "117020585924712638", "http://localhost:3000/@mastodonpy_test/117020585924712638"
    )
    # the recorded request was form-encoded with the same field names as ours
    assert interaction["request"]["body"] == "status=Toot%21&visibility=public"
    assert api.seen[0].form == {"status": ["Toot!"], "visibility": ["public"]}


def test_recorded_media_and_multi_image_status(api: FakeMastodon, masto: Mastodon) -> None:
    cassette = "test_media_post_multiple.yaml"
    upload = recorded(cassette, "POST", "/api/v2/media")
    replay(api, "POST", "/api/v2/media", upload)
    replay(api, "POST", "/api/v1/statuses", recorded(cassette, "POST", "/api/v1/statuses"))
    masto.publish(draft(images=(Image("u", "John Lennon doing a funny walk"),)), key=KEY)
    assert b'name="description"\r\n\r\nJohn Lennon doing a funny walk' in upload["request"]["body"]
    assert b'name="file"; filename=' in upload["request"]["body"]
    assert api.seen[0].form == {"description": ["John Lennon doing a funny walk"]}
    assert api.seen[1].form["media_ids[]"] == ["117020576646493592"]


def test_recorded_422_localised(api: FakeMastodon, masto: Mastodon) -> None:
    replay(
        api,
        "POST",
        "/api/v1/statuses",
        recorded("test_lang_for_errors.yaml", "POST", "/api/v1/statuses", 1),
    )
    expect_error(
        PermanentError, lambda: masto.publish(draft(), key=KEY), "Begrenzung von 500 Zeichen"
    )


def test_recorded_401(api: FakeMastodon, masto: Mastodon) -> None:
    interaction = recorded("test_unauthed_home_tl_throws.yaml", "GET", "/api/v1/timelines/home")
    replay(api, "POST", "/api/v1/statuses", interaction)
    expect_error(AuthExpired, lambda: masto.publish(draft(), key=KEY), "access token is invalid")


def test_recorded_check(api: FakeMastodon, masto: Mastodon) -> None:
    replay(
        api,
        "GET",
        "/api/v1/accounts/verify_credentials",
        recorded("test_verify_credentials.yaml", "GET", "/api/v1/accounts/verify_credentials"),
    )
    replay(
        api, "GET", "/api/v2/instance", recorded("test_instance.yaml", "GET", "/api/v2/instance")
    )
    info = masto.check()
    assert info == AccountInfo(
        "@mastodonpy_test@localhost:3000", details=("instance max_characters: 500; using 500",)
    )


def test_recorded_lookup_through_a_link_card(api: FakeMastodon, masto: Mastodon) -> None:
    account = recorded("test_verify_credentials.yaml", "GET", "/api/v1/accounts/verify_credentials")
    replay(api, "GET", "/api/v1/accounts/verify_credentials", account)
    status = json.loads(
        recorded("test_status_card.yaml", "POST", "/api/v1/statuses")["response"]["body"]["string"]
    )
    account_id = json.loads(account["response"]["body"]["string"])["id"]
    api.on("GET", f"/api/v1/accounts/{account_id}/statuses", [status])
    found = masto.lookup(draft(link="http://example.org/"), key=KEY)
    assert found == Receipt(status["id"], status["url"])
