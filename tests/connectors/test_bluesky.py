"""Bluesky connector against a local XRPC server speaking the documented shapes.

Answers come inline (always run) and, when `../shared/corpus` is beside the repository, from
responses the atproto SDK authors fetched from bsky.social (getRecord, a DID document, an
images embed). Error bodies follow ERRORS-REPORTED-IN-ISSUES.md and the PDS source.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regex
from PIL import Image as PILImage
from pytest_httpserver import HTTPServer

from connectors import _atproto
from connectors._session_file import SessionFile
from connectors.bluesky import Bluesky
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

HANDLE = "blog.bsky.social"
PASSWORD = "app-pass-7q2x-SECRET"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
ACCESS, REFRESH = "jwt-access-1-SECRET", "jwt-refresh-1-SECRET"
ACCESS2, REFRESH2 = "jwt-access-2-SECRET", "jwt-refresh-2-SECRET"
SECRETS = (PASSWORD, ACCESS, REFRESH, ACCESS2, REFRESH2)
KEY = "syndicator-12-34"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "platform-recordings"

CREATE = "/xrpc/com.atproto.server.createSession"
REFRESH_PATH = "/xrpc/com.atproto.server.refreshSession"
GET_SESSION = "/xrpc/com.atproto.server.getSession"
RECORD = "/xrpc/com.atproto.repo.createRecord"
GET_RECORD = "/xrpc/com.atproto.repo.getRecord"
BLOB = "/xrpc/com.atproto.repo.uploadBlob"

SESSION = {"did": DID, "handle": HANDLE, "accessJwt": ACCESS, "refreshJwt": REFRESH}
SESSION2 = {**SESSION, "accessJwt": ACCESS2, "refreshJwt": REFRESH2}
CREATED = {"uri": f"at://{DID}/app.bsky.feed.post/3lersne2vt6jf", "cid": "bafyreib2rxk3rh6"}
BLOB_REF = {"$type": "blob", "ref": {"$link": "bafkreibabalobzn"}, "mimeType": "image/png"}
EXPIRED = {"error": "ExpiredToken", "message": "Token has expired"}
NOT_FOUND = {"error": "RecordNotFound", "message": "Could not locate record"}


class FakePDS(RecordingServer):
    """XRPC routes on a local server that answer and record what they were sent."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.base = f"http://127.0.0.1:{server.port}"

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def posting(self) -> Seen:
        [seen] = [s for s in self.seen if s.path == RECORD]
        return seen

    def repo(self) -> dict[str, dict[str, Any]]:
        """createRecord and getRecord over one in-memory repo, colliding like today's PDS."""
        records: dict[str, dict[str, Any]] = {}

        def create(seen: Seen) -> tuple[Any, int]:
            rkey = seen.json["rkey"]
            if rkey in records:  # bluesky-social/atproto#3718: a taken rkey is a plain 500
                return {"error": "InternalServerError", "message": "Internal Server Error"}, 500
            uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
            records[rkey] = {"uri": uri, "cid": "bafyreiq", "value": seen.json["record"]}
            return {"uri": uri, "cid": "bafyreiq"}, 200

        def get(seen: Seen) -> tuple[Any, int]:
            found = records.get(seen.args["rkey"])
            return (found, 200) if found else (NOT_FOUND, 400)

        self.on("POST", RECORD, create)
        self.on("GET", GET_RECORD, get)
        return records


def png(width: int = 30, height: int = 20) -> bytes:
    """A real PNG, as the core's loader would hand over."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), (200, 30, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def load_image(image: Image, limits: Limits) -> ImageFile:
    """The core's image loader, faked: a real 30×20 PNG carrying the post's alt text."""
    return ImageFile(png(), "image/png", 30, 20, alt=image.alt, source_url=image.url)


def broken_loader(image: Image, limits: Limits) -> ImageFile:
    raise MediaError("image too large even after resizing")


def context(tmp_path: Path, timeout: float = 5.0, loader: Any = load_image) -> ConnectorContext:
    return ConnectorContext("t", TextOptions(), tmp_path, loader, timeout=timeout)


def make(base: str, tmp_path: Path, timeout: float = 5.0, **options: Any) -> Bluesky:
    """A connector for target "t" with the given options over the defaults."""
    loader = options.pop("loader", load_image)
    values = {"api_base": base, "handle": HANDLE, "app_password": PASSWORD, **options}
    return Bluesky(values, context(tmp_path, timeout, loader))


def stored(tmp_path: Path, base: str, session: dict[str, str] = SESSION) -> SessionFile:
    """Put a session in the state directory, as an earlier process would have left it."""
    file = SessionFile(tmp_path / "bluesky-t.json", f"{base} {HANDLE}")
    file.save(session)
    return file


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[FakePDS]:
    yield FakePDS(httpserver)
    httpserver.check_assertions()  # no request went unanswered


@pytest.fixture
def sky(api: FakePDS, tmp_path: Path) -> Bluesky:
    return make(api.base, tmp_path)


@pytest.fixture
def logged_in(api: FakePDS, tmp_path: Path) -> Bluesky:
    """A connector whose session is already in the state directory."""
    stored(tmp_path, api.base)
    return make(api.base, tmp_path)


def post(**fields: Any) -> Post:
    values: dict[str, Any] = {"feed": "blog", "guid": "https://blog.example/?p=1"}
    return Post(**{**values, "url": "https://blog.example/p/1/", "title": "Hello world", **fields})


def draft(**fields: Any) -> Draft:
    values: dict[str, Any] = {
        "text": "Hello https://blog.example/p/1/",
        "link": "https://blog.example/p/1/",
        "fields": {"guid": "https://blog.example/?p=1", "langs": ["en"]},
    }
    return Draft(**{**values, **fields})


def expect_error(kind: type[Exception], call: Any, match: str | None = None) -> Any:
    """Run `call`, expect `kind`; no secret in any part of the error."""
    return raises_without_secrets(kind, call, match, SECRETS)


def graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


# --- options ---------------------------------------------------------------------------


def test_is_a_connector(tmp_path: Path) -> None:
    sky = make("https://bsky.social", tmp_path)
    assert isinstance(sky, Connector)
    assert Bluesky.name == "bluesky" and Bluesky.secret_keys == ("app_password",)
    assert Bluesky.can_lookup
    assert Bluesky.limits == Limits(
        300,
        "graphemes",
        max_images=4,
        max_image_bytes=1_000_000,
        max_image_side=2000,
        image_types=("image/jpeg", "image/png", "image/webp"),
    )


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"handle": None}, "handle"),
        ({"handle": " "}, "handle"),
        ({"app_password": None}, "app_password"),
        ({"app_password": ""}, "app_password"),
        ({"app_password": 1234}, "app_password"),
        ({"api_base": "bsky.social"}, "api_base"),
        ({"api_base": "http://bsky.social"}, "api_base"),
        ({"api_base": 5}, "api_base"),
        ({"language": "English"}, "language"),
        ({"embed": "video"}, "embed"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, Any], key: str, tmp_path: Path) -> None:
    values = {"handle": HANDLE, "app_password": PASSWORD, **options}
    with pytest.raises(ConfigError, match=key) as info:
        Bluesky({k: v for k, v in values.items() if v is not None}, context(tmp_path))
    assert PASSWORD not in str(info.value)


def test_defaults_and_no_io_at_construction(tmp_path: Path) -> None:
    sky = Bluesky({"handle": "@blog.bsky.social", "app_password": PASSWORD}, context(tmp_path))
    assert sky.api_base == "https://bsky.social" and sky.handle == HANDLE
    assert sky.embed == "images" and sky.language is None
    assert list(tmp_path.iterdir()) == []


# --- prepare ---------------------------------------------------------------------------


def test_prepare(tmp_path: Path) -> None:
    sky = make("https://bsky.social", tmp_path, language="en")
    images = tuple(Image(f"https://blog.example/{i}.png", f"alt {i}") for i in range(6))
    summary = "<p>Our <b>summer</b> event &amp; more [&hellip;]</p>"
    result = sky.prepare(post(images=images, categories=("News",), summary=summary))
    assert result.text == "Hello world\n\nhttps://blog.example/p/1/\n\n#News"
    assert result.link == "https://blog.example/p/1/"
    assert result.images == images[:4]
    assert result.card is not None and result.card.image is None
    assert (result.card.url, result.card.title) == (result.link, "Hello world")
    assert result.card.description == "Our summer event & more…"
    assert result.fields == {"guid": "https://blog.example/?p=1", "langs": ["en"]}
    assert result.notes[0] == "2 image(s) over the limit of 4 left out"


def test_prepare_is_pure_and_takes_the_feed_language(tmp_path: Path) -> None:
    sky = make("https://bsky.social", tmp_path)
    first, second = sky.prepare(post(language="fr-FR")), sky.prepare(post(language="fr-FR"))
    assert first.payload_hash == second.payload_hash
    assert first.fields["langs"] == ["fr-FR"]
    assert "langs" not in sky.prepare(post(language="?")).fields


def test_prepare_card_mode_uses_the_first_image_as_thumbnail(tmp_path: Path) -> None:
    sky = make("https://bsky.social", tmp_path, embed="card")
    images = (Image("https://blog.example/a.png", "A"), Image("https://blog.example/b.png"))
    result = sky.prepare(post(images=images))
    assert result.images == () and result.card is not None and result.card.image == images[0]
    assert result.notes == ()


def test_prepare_uses_the_utm_link_everywhere(tmp_path: Path) -> None:
    options = TextOptions(utm={"source": "bluesky"})
    sky = Bluesky(
        {"handle": HANDLE, "app_password": PASSWORD},
        ConnectorContext("t", options, tmp_path, load_image),
    )
    result = sky.prepare(post())
    assert result.link == "https://blog.example/p/1/?utm_source=bluesky"
    assert result.card is not None and result.card.url == result.link
    assert result.link in result.text


def test_prepare_keeps_3000_bytes_under_300_graphemes(tmp_path: Path) -> None:
    family = "👩\u200d👩\u200d👧\u200d👦"  # one grapheme, 25 bytes
    result = make("https://bsky.social", tmp_path).prepare(post(title=family * 300))
    assert len(result.text.encode()) <= 3000 and graphemes(result.text) <= 300
    assert result.text.endswith("\n\nhttps://blog.example/p/1/")
    assert family in result.text and "…" in result.text


def test_exactly_300_graphemes_pass_with_the_link_facet_in_place(
    api: FakePDS, logged_in: Bluesky
) -> None:
    url = "https://blog.example/p/1/"
    family = "👩\u200d👩\u200d👧\u200d👦"
    title = family * 40 + "é" * (300 - 2 - len(url) - 40)
    prepared = logged_in.prepare(post(title=title))
    assert graphemes(prepared.text) == 300 and prepared.text.startswith(title)
    assert len(prepared.text.encode()) <= 3000
    api.on("POST", RECORD, CREATED)
    logged_in.publish(prepared, key=KEY)
    record = api.posting().json["record"]
    [facet] = record["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert record["text"].encode()[start:end] == url.encode()
    assert start == len(title.encode()) + 2 != len(title) + 2


# --- publish ---------------------------------------------------------------------------


def test_publish_logs_in_and_posts_with_facets_and_card(api: FakePDS, sky: Bluesky) -> None:
    api.on("POST", CREATE, SESSION)
    api.on("POST", RECORD, CREATED)
    family = "👩\u200d👩\u200d👧\u200d👦"
    text = f"Café ✨ naïve {family}: https://blog.example/p/1/?a=é\n\n#Événements #News"
    prepared = Draft(
        text=text,
        link="https://blog.example/p/1/",
        card=sky.prepare(post(summary="Short.")).card,
        fields={"guid": "g", "langs": ["fr"]},
    )
    receipt = sky.publish(prepared, key=KEY)
    assert receipt == Receipt(
        CREATED["uri"], f"https://bsky.app/profile/{HANDLE}/post/3lersne2vt6jf"
    )
    login, create = api.seen
    assert (login.method, login.path) == ("POST", CREATE)
    assert "Authorization" not in login.headers
    assert login.json == {"identifier": HANDLE, "password": PASSWORD}
    assert (create.method, create.path) == ("POST", RECORD)
    assert create.headers["Authorization"] == f"Bearer {ACCESS}"
    assert create.headers["Content-Type"] == "application/json"
    body = create.json
    assert set(body) == {"repo", "collection", "rkey", "record"}  # `validate` left default
    assert (body["repo"], body["collection"]) == (DID, "app.bsky.feed.post")
    assert body["rkey"] == _atproto.record_key(KEY, "g") and _atproto.TID.fullmatch(body["rkey"])
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["text"] == text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["createdAt"])
    assert record["langs"] == ["fr"]
    assert record["embed"] == {
        "$type": "app.bsky.embed.external",
        "external": {
            "uri": "https://blog.example/p/1/",
            "title": "Hello world",
            "description": "Short.",
        },
    }
    encoded = text.encode()
    spans = [
        (encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"])
        for f in record["facets"]
    ]
    assert spans == [
        (
            "https://blog.example/p/1/?a=é",
            [{"$type": "app.bsky.richtext.facet#link", "uri": "https://blog.example/p/1/?a=é"}],
        ),
        ("#Événements", [{"$type": "app.bsky.richtext.facet#tag", "tag": "Événements"}]),
        ("#News", [{"$type": "app.bsky.richtext.facet#tag", "tag": "News"}]),
    ]
    assert record["facets"][0]["index"]["byteStart"] != text.index("https")


def test_publish_with_images(api: FakePDS, logged_in: Bluesky) -> None:
    api.on("POST", BLOB, {"blob": {**BLOB_REF, "size": 120}})
    api.on("POST", RECORD, CREATED)
    images = (Image("https://blog.example/a.png", "A cat"), Image("https://blog.example/b.png"))
    logged_in.publish(draft(images=images, card=logged_in.prepare(post()).card), key=KEY)
    first, second, create = api.seen
    assert (first.method, first.path) == ("POST", BLOB)
    assert first.headers["Content-Type"] == "image/png"
    assert first.headers["Authorization"] == f"Bearer {ACCESS}"
    assert first.data == png() and second.data == png()
    embed = create.json["record"]["embed"]
    assert embed == {
        "$type": "app.bsky.embed.images",
        "images": [
            {
                "image": {**BLOB_REF, "size": 120},
                "alt": "A cat",
                "aspectRatio": {"width": 30, "height": 20},
            },
            {
                "image": {**BLOB_REF, "size": 120},
                "alt": "",  # required by the lexicon, so sent empty
                "aspectRatio": {"width": 30, "height": 20},
            },
        ],
    }
    assert create.json["record"]["facets"][0]["features"][0]["uri"] == "https://blog.example/p/1/"


def test_publish_card_with_thumbnail(api: FakePDS, tmp_path: Path) -> None:
    stored(tmp_path, api.base)
    sky = make(api.base, tmp_path, embed="card")
    api.on("POST", BLOB, {"blob": BLOB_REF})
    api.on("POST", RECORD, CREATED)
    sky.publish(sky.prepare(post(images=(Image("https://blog.example/a.png"),))), key=KEY)
    external = api.posting().json["record"]["embed"]["external"]
    assert external["thumb"] == BLOB_REF and external["uri"] == "https://blog.example/p/1/"


@pytest.mark.parametrize("failure", ["loader", "upload"])
def test_card_without_thumbnail_when_it_cannot_be_sent(
    api: FakePDS, tmp_path: Path, failure: str
) -> None:
    stored(tmp_path, api.base)
    loader = broken_loader if failure == "loader" else load_image
    sky = make(api.base, tmp_path, embed="card", loader=loader)
    too_large = {"error": "BlobTooLarge", "message": "This file is too large."}
    api.on("POST", BLOB, too_large, 400)
    api.on("POST", RECORD, CREATED)
    sky.publish(sky.prepare(post(images=(Image("https://blog.example/a.png"),))), key=KEY)
    assert "thumb" not in api.posting().json["record"]["embed"]["external"]
    assert api.paths().count(BLOB) == (failure == "upload")


def test_image_loader_errors_propagate_before_any_request(api: FakePDS, tmp_path: Path) -> None:
    sky = make(api.base, tmp_path, loader=broken_loader)
    with pytest.raises(MediaError):
        sky.publish(draft(images=(Image("https://blog.example/a.png"),)), key=KEY)
    assert api.seen == []


def test_text_only_without_card_or_langs(api: FakePDS, logged_in: Bluesky) -> None:
    api.on("POST", RECORD, CREATED)
    logged_in.publish(Draft(text="Just words"), key=KEY)
    record = api.posting().json["record"]
    assert set(record) == {"$type", "text", "createdAt"}


# --- record key: no second post --------------------------------------------------------


def test_the_record_key_depends_on_key_and_guid_only(api: FakePDS, tmp_path: Path) -> None:
    stored(tmp_path, api.base)
    api.on("POST", RECORD, CREATED)
    make(api.base, tmp_path).publish(draft(), key=KEY)
    make(api.base, tmp_path).publish(draft(text="Edited meanwhile"), key=KEY)  # a restart
    first, second = (s.json["rkey"] for s in api.seen)
    assert first == second and _atproto.TID.fullmatch(first)
    assert _atproto.record_key(KEY, "other guid") != first  # a reset database reuses ids
    assert _atproto.record_key("syndicator-12-35", "https://blog.example/?p=1") != first


def test_a_resend_collides_and_lookup_resolves_it(api: FakePDS, logged_in: Bluesky) -> None:
    records = api.repo()
    receipt = logged_in.publish(draft(), key=KEY)
    expect_error(OutcomeUnknown, lambda: logged_in.publish(draft(), key=KEY), "HTTP 500")
    assert len(records) == 1
    assert logged_in.lookup(draft(), key=KEY) == receipt
    assert logged_in.lookup(draft(), key="syndicator-99-99") is None
    lookup = api.seen[-1]
    assert lookup.args == {
        "repo": DID,
        "collection": "app.bsky.feed.post",
        "rkey": _atproto.record_key("syndicator-99-99", "https://blog.example/?p=1"),
    }
    assert lookup.headers["Authorization"] == f"Bearer {ACCESS}"


def test_an_explicit_already_exists_error_is_duplicate_content(
    api: FakePDS, logged_in: Bluesky
) -> None:
    # The shape atproto#4728 will introduce is not published yet: match name or message.
    body = {"error": "RecordAlreadyExists", "message": "Record already exists"}
    api.on("POST", RECORD, body, 400)
    expect_error(DuplicateContent, lambda: logged_in.publish(draft(), key=KEY), "already exists")


def test_timeouts_and_resets_are_retryable_thanks_to_the_key(api: FakePDS, tmp_path: Path) -> None:
    stored(tmp_path, api.base)
    api.on("POST", RECORD, CREATED, delay=0.5)
    sky = make(api.base, tmp_path, timeout=0.2)
    expect_error(RetryableError, lambda: sky.publish(draft(), key=KEY), "read timed out")


def test_connection_reset_after_sending_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def reset_after_reading() -> None:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            connection.close()  # RST with the request already sent

        thread = threading.Thread(target=reset_after_reading)
        thread.start()
        stored(tmp_path, base)
        sky = make(base, tmp_path)
        expect_error(RetryableError, lambda: sky.publish(draft(), key=KEY), "connection failed")
        thread.join()


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    sky = make(closed_port_url(), tmp_path)
    expect_error(RetryableError, lambda: sky.publish(draft(), key=KEY), "connection failed")


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, {"error": "InternalServerError", "message": "Internal Server Error"}, OutcomeUnknown),
        (502, "<html>Bad Gateway</html>", OutcomeUnknown),
        (503, {"error": "NotEnoughResources", "message": "busy"}, RetryableError),
        (
            400,
            {
                "error": "InvalidRequest",
                "message": "Invalid app.bsky.feed.post record: "
                "Record/text must not be longer than 300 graphemes",
            },
            PermanentError,
        ),
        (400, {"error": "AccountTakedown", "message": "Account has been taken down"}, AuthExpired),
        (
            400,
            {
                "error": "BlobTooLarge",
                "message": "This file is too large. It is 1.2MB but the maximum size is 976.56KB.",
            },
            MediaError,
        ),
    ],
)
def test_create_record_errors(
    api: FakePDS, logged_in: Bluesky, status: int, body: Any, kind: type[Exception]
) -> None:
    api.on("POST", RECORD, body, status)
    error = expect_error(kind, lambda: logged_in.publish(draft(), key=KEY))
    assert f"POST {RECORD}" in str(error)


def test_text_too_long_keeps_the_platform_message(api: FakePDS, logged_in: Bluesky) -> None:
    message = "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"
    api.on("POST", RECORD, {"error": "InvalidRequest", "message": message}, 400)
    expect_error(PermanentError, lambda: logged_in.publish(draft(), key=KEY), "300 graphemes")


def test_429_uses_the_ratelimit_reset_epoch(api: FakePDS, logged_in: Bluesky) -> None:
    headers = {
        "ratelimit-limit": "5000",
        "ratelimit-remaining": "0",
        "ratelimit-reset": str(int(time.time()) + 120),
        "ratelimit-policy": "5000;w=3600",
    }
    body = {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
    api.on("POST", RECORD, body, 429, headers)
    error = expect_error(RateLimited, lambda: logged_in.publish(draft(), key=KEY))
    assert error.retry_after is not None and 110 <= error.retry_after <= 120


def test_upload_errors(api: FakePDS, logged_in: Bluesky) -> None:
    body = {"error": "BlobTooLarge", "message": "This file is too large."}
    api.on("POST", BLOB, body, 400, once=True)
    api.on("POST", BLOB, {"error": "InternalServerError"}, 500, once=True)
    images = (Image("https://blog.example/a.png"),)
    expect_error(MediaError, lambda: logged_in.publish(draft(images=images), key=KEY), "too large")
    # an upload is content-addressed: a 5xx cannot have made a post
    expect_error(RetryableError, lambda: logged_in.publish(draft(images=images), key=KEY))
    assert RECORD not in api.paths()


def test_error_text_echoing_a_secret_is_redacted(api: FakePDS, logged_in: Bluesky) -> None:
    body = {"error": "InvalidRequest", "message": f"bad {ACCESS} / {PASSWORD}"}
    api.on("POST", RECORD, body, 400)
    expect_error(PermanentError, lambda: logged_in.publish(draft(), key=KEY), "redacted")


# --- session: login, reuse, refresh ----------------------------------------------------


def test_the_session_is_stored_privately_and_reused(api: FakePDS, tmp_path: Path) -> None:
    api.on("POST", CREATE, SESSION)
    api.on("POST", RECORD, CREATED)
    make(api.base, tmp_path).publish(draft(), key=KEY)
    make(api.base, tmp_path).publish(draft(), key=KEY)  # another process or a restart
    assert api.paths() == [CREATE, RECORD, RECORD]
    path = tmp_path / "bluesky-t.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["accessJwt"] == ACCESS and saved["did"] == DID
    assert PASSWORD not in path.read_text()
    assert {p.name for p in tmp_path.iterdir()} == {"bluesky-t.json", "bluesky-t.json.lock"}


@pytest.mark.parametrize("content", ["{not json", '{"owner": "another account"}'])
def test_an_unusable_session_file_means_a_new_login(
    api: FakePDS, tmp_path: Path, content: str
) -> None:
    (tmp_path / "bluesky-t.json").write_text(content)
    api.on("POST", CREATE, SESSION)
    api.on("POST", RECORD, CREATED)
    make(api.base, tmp_path).publish(draft(), key=KEY)
    assert api.paths() == [CREATE, RECORD]


def test_expired_token_is_refreshed_then_the_call_resent(
    api: FakePDS, logged_in: Bluesky, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.on("POST", RECORD, EXPIRED, 400, once=True)
    api.on("POST", REFRESH_PATH, SESSION2)
    api.on("POST", BLOB, {"blob": BLOB_REF})
    api.on("POST", RECORD, CREATED, once=True)
    logged_in.publish(draft(images=(Image("https://blog.example/a.png", "alt"),)), key=KEY)
    assert api.paths() == [BLOB, RECORD, REFRESH_PATH, RECORD]
    refresh = api.seen[2]
    assert refresh.headers["Authorization"] == f"Bearer {REFRESH}" and refresh.data == b""
    assert api.seen[3].headers["Authorization"] == f"Bearer {ACCESS2}"
    assert api.seen[1].json["rkey"] == api.seen[3].json["rkey"]
    assert json.loads((tmp_path / "bluesky-t.json").read_text())["refreshJwt"] == REFRESH2
    assert caplog.text and not any(secret in caplog.text for secret in SECRETS)


def test_a_failed_refresh_falls_back_to_one_login(api: FakePDS, logged_in: Bluesky) -> None:
    api.on(
        "POST",
        RECORD,
        {"error": "AuthMissing", "message": "Authentication Required"},
        401,
        once=True,
    )
    api.on("POST", REFRESH_PATH, EXPIRED, 400)
    api.on("POST", CREATE, SESSION2)
    api.on("POST", RECORD, CREATED, once=True)
    logged_in.publish(draft(), key=KEY)
    assert api.paths() == [RECORD, REFRESH_PATH, CREATE, RECORD]
    assert api.seen[-1].headers["Authorization"] == f"Bearer {ACCESS2}"


def test_still_rejected_after_renewal_is_auth_expired(api: FakePDS, logged_in: Bluesky) -> None:
    invalid = {"error": "InvalidToken", "message": "Token could not be verified"}
    api.on("POST", RECORD, invalid, 400)
    api.on("POST", REFRESH_PATH, SESSION2)
    expect_error(AuthExpired, lambda: logged_in.publish(draft(), key=KEY), "InvalidToken")
    assert api.paths() == [RECORD, REFRESH_PATH, RECORD]


def test_wrong_password_is_auth_expired(api: FakePDS, sky: Bluesky) -> None:
    body = {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
    api.on("POST", CREATE, body, 401)
    expect_error(AuthExpired, lambda: sky.publish(draft(), key=KEY), "Invalid identifier")
    expect_error(AuthExpired, sky.check, "Invalid identifier")


def test_refresh_and_login_both_refused_is_auth_expired(api: FakePDS, logged_in: Bluesky) -> None:
    api.on("POST", RECORD, EXPIRED, 400)
    api.on("POST", REFRESH_PATH, EXPIRED, 400)
    body = {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
    api.on("POST", CREATE, body, 401)
    expect_error(AuthExpired, lambda: logged_in.publish(draft(), key=KEY), "identifier")


def test_login_rate_limited(api: FakePDS, sky: Bluesky) -> None:
    headers = {"ratelimit-reset": str(int(time.time()) + 300), "ratelimit-policy": "30;w=300"}
    api.on("POST", CREATE, {"error": "RateLimitExceeded", "message": "Rate Limit"}, 429, headers)
    error = expect_error(RateLimited, lambda: sky.publish(draft(), key=KEY))
    assert error.retry_after is not None and 290 <= error.retry_after <= 300


def test_concurrent_renewals_refresh_once(tmp_path: Path) -> None:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        api = FakePDS(server)
        stored(tmp_path, api.base)
        api.on("POST", REFRESH_PATH, SESSION2, delay=0.3)

        def create(seen: Seen) -> tuple[Any, int]:
            fresh = seen.headers["Authorization"] == f"Bearer {ACCESS2}"
            return (CREATED, 200) if fresh else (EXPIRED, 400)

        api.on("POST", RECORD, create)
        connectors = [make(api.base, tmp_path) for _ in range(4)]  # four processes
        errors: list[Exception] = []

        def run(sky: Bluesky) -> None:
            try:
                sky.publish(draft(), key=KEY)
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(sky,)) for sky in connectors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert api.paths().count(REFRESH_PATH) == 1
    finally:
        server.clear()
        server.stop()


# --- lookup and check ------------------------------------------------------------------


def test_lookup_not_found(api: FakePDS, logged_in: Bluesky) -> None:
    api.on("GET", GET_RECORD, NOT_FOUND, 400)
    assert logged_in.lookup(draft(), key=KEY) is None


def test_lookup_errors(api: FakePDS, logged_in: Bluesky) -> None:
    api.on("GET", GET_RECORD, {"error": "InternalServerError"}, 500)
    expect_error(RetryableError, lambda: logged_in.lookup(draft(), key=KEY))


def test_check(api: FakePDS, sky: Bluesky) -> None:
    api.on("POST", CREATE, SESSION)
    api.on("GET", GET_SESSION, {"did": DID, "handle": HANDLE, "active": True})
    assert sky.check() == AccountInfo(HANDLE, details=(DID,))
    assert api.seen[-1].headers["Authorization"] == f"Bearer {ACCESS}"


def test_check_refreshes_an_expired_session(api: FakePDS, logged_in: Bluesky) -> None:
    api.on("GET", GET_SESSION, EXPIRED, 400, once=True)
    api.on("POST", REFRESH_PATH, SESSION2)
    api.on("GET", GET_SESSION, {"did": DID, "handle": HANDLE}, once=True)
    assert logged_in.check().account == HANDLE
    assert api.paths() == [GET_SESSION, REFRESH_PATH, GET_SESSION]


# --- real recorded shapes (skipped without ../shared/corpus) ----------------------------


def recorded(name: str) -> Any:
    file = CORPUS / "bluesky" / name
    if not file.exists():
        pytest.skip("shared corpus not available")
    return json.loads(file.read_text(encoding="utf-8"))


def test_recorded_get_record_resolves_a_lookup(api: FakePDS, logged_in: Bluesky) -> None:
    answer = recorded("post_record.json")
    api.on("GET", GET_RECORD, answer)
    found = logged_in.lookup(draft(), key=KEY)
    assert found == Receipt(answer["uri"], f"https://bsky.app/profile/{HANDLE}/post/3k2yihcrp6f2c")


def test_recorded_identity_drives_repo_and_receipt(api: FakePDS, sky: Bluesky) -> None:
    identity = recorded("did_doc.json")
    login = {k: identity[k] for k in ("did", "handle", "didDoc")}
    api.on("POST", CREATE, {**login, "accessJwt": ACCESS, "refreshJwt": REFRESH})
    uri = f"at://{identity['did']}/app.bsky.feed.post/3k2yihcrp6f2c"
    api.on("POST", RECORD, {"uri": uri, "cid": "bafyreifzi5xyrf3c5jw7cci4zrltyl25ik2dboznop4qo4"})
    receipt = sky.publish(draft(), key=KEY)
    assert api.posting().json["repo"] == identity["did"]
    assert receipt.url == "https://bsky.app/profile/test.marshal.dev/post/3k2yihcrp6f2c"


def test_recorded_images_embed_shape(api: FakePDS, logged_in: Bluesky) -> None:
    thread = recorded("thread_view_post_with_embed_media.json")
    [entry] = thread["thread"]["post"]["record"]["embed"]["media"]["images"]
    api.on("POST", BLOB, {"blob": entry["image"]})
    api.on("POST", RECORD, CREATED)
    logged_in.publish(draft(images=(Image("https://blog.example/a.png"),)), key=KEY)
    [sent] = api.posting().json["record"]["embed"]["images"]
    assert sent["image"] == entry["image"]  # the uploaded blob goes in verbatim
    assert set(sent) == set(entry) | {"aspectRatio"} and sent["alt"] == entry["alt"] == ""


def test_recorded_post_record_values_match_ours(api: FakePDS, logged_in: Bluesky) -> None:
    value = recorded("extended_post_record.json")["value"]
    api.on("POST", RECORD, CREATED)
    logged_in.publish(draft(), key=KEY)
    record = api.posting().json["record"]
    assert {"$type", "text", "createdAt", "langs"} <= set(record)
    assert record["$type"] == value["$type"] and record["langs"] == value["langs"]
