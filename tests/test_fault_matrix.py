"""Fault matrix: every connector, through the whole pipeline, against its platform's fake.

For each platform × fault: one target of that connector type, one new post, the fault on
the next matching request; then the state the design promises right after the fault, and,
once the fault clears, exactly one post on the platform — or, for an expired token, a
paused target with a clear reason until a human resumes it. One harness, data per platform.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image as PILImage

from syndicator import config
from syndicator.app import App
from syndicator.models import State, utcnow
from syndicator.queries import list_deliveries, log_entries
from syndicator.schema import deliveries, targets
from syndicator.store import Delivery
from tests.platform_fakes import FAKES, FAULTS, FakePlatform

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"

[media]
allow_private_hosts = ["127.0.0.1"]

[[feeds]]
name = "blog"
url = "{feed}"

[targets.{name}]
type = "{name}"
api_base = "{api_base}"
timeout = 1
retry_delay = "1s"
"""
LINK = "https://blog.example/fault-case"
IMAGE_PATH = "/wp-content/uploads/2026/05/chart.png"
LANDED = frozenset({"500_after", "timeout_after", "reset_after"})  # the faulted call created it
SETTLED = (State.PUBLISHED, State.FAILED, State.CANCELLED, State.SKIPPED)
MAX_ROUNDS = 5


def within(low: float, high: float) -> Callable[[], tuple[float, float]]:
    return lambda: (low, high)


def until_midnight() -> tuple[float, float]:
    """LinkedIn's daily limits reset at 00:00 UTC."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)
    left = (midnight - now).total_seconds()
    return left - 5, left + 1


@dataclass(frozen=True)
class After:
    """The state right after the faulted attempt."""

    state: State
    error: str = ""  # in the delivery's last_error (and in the pause reason when paused)
    paused: str = ""  # how the target's pause reason starts; "" = not paused
    pause: Callable[[], tuple[float, float]] | None = None  # seconds of pause left


@dataclass(frozen=True)
class Expectations:
    """One platform's row: what differs from the common expectations."""

    rate_limit: After
    expired: After
    dropped: str  # the platform's refusal of the image, as logged with "image_dropped"
    special: dict[str, After] = field(default_factory=dict)

    def after(self, fault: str) -> After:
        common = {
            "none": After(State.PUBLISHED),
            "429": self.rate_limit,
            "500_before": After(State.UNKNOWN, "HTTP 500"),
            "503": After(State.PENDING, "HTTP 503"),
            "500_after": After(State.UNKNOWN, "HTTP 500"),
            "timeout_after": After(State.UNKNOWN, "no answer within 1s"),
            "reset_before": After(State.UNKNOWN, "connection lost after sending"),
            "reset_after": After(State.UNKNOWN, "connection lost after sending"),
            "expired_token": self.expired,
            "media_rejected": After(State.PUBLISHED),
        }
        return self.special.get(fault, common[fault])


def rate_limited(error: str, pause: Callable[[], tuple[float, float]]) -> After:
    return After(State.PENDING, error, "rate limited: ", pause)


def auth_failed(error: str) -> After:
    return After(State.PENDING, error, "authentication failed: ", within(1790, 1800))


MATRIX = {
    "mastodon": Expectations(
        rate_limit=rate_limited("HTTP 429: Too many requests", within(50, 60)),
        expired=auth_failed("HTTP 401: The access token is invalid"),
        dropped="File content type is invalid",
    ),
    "x": Expectations(
        rate_limit=rate_limited("POST /2/tweets: HTTP 429: Too Many Requests", within(110, 120)),
        expired=auth_failed("HTTP 401: Unauthorized"),
        dropped="POST /2/media/upload: HTTP 400: media type unrecognized.",
    ),
    "facebook": Expectations(
        rate_limit=rate_limited(
            "HTTP 403: Graph error 4: (#4) Application request limit reached",
            within(890, 900),  # X-App-Usage gives no regain time: the default pause
        ),
        expired=auth_failed("HTTP 400: Graph error 190/463: Error validating access token"),
        dropped="Graph error 324/2069019: (#324) Missing or invalid image file",
        special={
            "500_before": After(State.UNKNOWN, "HTTP 500: Graph error 2: An unexpected error"),
            "500_after": After(State.UNKNOWN, "HTTP 500: Graph error 2: An unexpected error"),
        },
    ),
    "linkedin": Expectations(
        rate_limit=rate_limited(
            "HTTP 429: Resource level throttle APPLICATION DAY", until_midnight
        ),
        expired=auth_failed("HTTP 401: The token used in the request has expired"),
        dropped="Unable to process the uploaded image",
    ),
    "bluesky": Expectations(
        rate_limit=rate_limited("HTTP 429: RateLimitExceeded", within(110, 120)),
        # the access token is refused, the refresh too, and the login with the app password
        expired=auth_failed("createSession: HTTP 401: AuthenticationRequired: Invalid identifier"),
        dropped="HTTP 400: BlobTooLarge: This file is too large.",
        special={  # every XRPC call may be resent (deterministic rkey): transport errors retry
            "timeout_after": After(State.PENDING, "read timed out"),
            "reset_before": After(State.PENDING, "connection failed"),
            "reset_after": After(State.PENDING, "connection failed"),
        },
    ),
}


def cases() -> Iterator[object]:
    """platform × fault × (a text post, a post with an image: other endpoints and lookups)."""
    for platform in MATRIX:
        for fault in ("none", *FAULTS):
            for shape in ("image",) if fault == "media_rejected" else ("text", "image"):
                yield pytest.param(platform, fault, shape, id=f"{platform}-{fault}-{shape}")


def png() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 48), (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def fast_forward(app: App) -> None:
    """Every waiting delivery is due now and every pause is over."""
    past = utcnow() - timedelta(seconds=1)
    with app.store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.next_attempt_at.is_not(None))
            .values(next_attempt_at=past)
        )
        conn.execute(sa.update(targets).values(paused_until=None, pause_reason=None))


@dataclass
class Harness:
    """One platform fake, one target pointing at it, one app."""

    name: str
    fake: FakePlatform
    app: App
    feed: Any  # tests.conftest.FeedServer
    image_url: str

    def add_post(self, *, image: bool) -> None:
        content = "<p>Quarterly numbers are in.</p>"
        if image:
            content += f'<p><img src="{self.image_url}" alt="A chart of the numbers"></p>'
        self.feed.add("fault-case", "Numbers are in", link=LINK, content=content)

    def delivery(self) -> Delivery:
        (delivery,) = list_deliveries(self.app.store, target=self.name)
        return delivery

    def outcomes(self) -> list[str]:
        return [e["outcome"] for e in reversed(log_entries(self.app.store, target=self.name))]

    def settle(self) -> None:
        """Fast-forward and dispatch until the delivery reaches a resting state."""
        for _ in range(MAX_ROUNDS):
            delivery = self.delivery()
            if delivery.state in SETTLED or (
                delivery.state == State.UNKNOWN and delivery.next_attempt_at is None
            ):
                return
            fast_forward(self.app)
            self.app.run_once()
        raise AssertionError(f"not settled after {MAX_ROUNDS} rounds: {self.outcomes()}")

    def check(self, expected: After) -> None:
        """The delivery and the target are in the state `expected` describes."""
        delivery = self.delivery()
        assert delivery.state == expected.state, (delivery.last_error, self.outcomes())
        assert expected.error in (delivery.last_error or "")
        target = self.app.store.target_state(self.name)
        if not expected.paused:
            assert target.paused_until is None, target.pause_reason
            if delivery.state in (State.PENDING, State.UNKNOWN):
                assert delivery.next_attempt_at is not None  # due again by itself
            return
        reason = target.pause_reason or ""
        assert reason.startswith(expected.paused) and expected.error in reason
        assert target.paused_until is not None and expected.pause is not None
        low, high = expected.pause()
        assert low <= (target.paused_until - utcnow()).total_seconds() <= high
        assert delivery.attempts == 0  # a pause does not burn an attempt
        assert self.fake.posts == []


@pytest.fixture
def harness(write_config, feed_server) -> Iterator[Callable[[str], Harness]]:
    made: list[Harness] = []
    feed_server.server.expect_request(IMAGE_PATH).respond_with_data(png(), content_type="image/png")
    image_url = f"http://127.0.0.1:{feed_server.server.port}{IMAGE_PATH}"

    def make(name: str) -> Harness:
        fake = FAKES[name]().start()
        text = CONFIG.replace("{name}", name).replace("{api_base}", fake.base_url)
        text = text.replace("{feed}", feed_server.url)
        text += "".join(f'{key} = "{value}"\n' for key, value in fake.options().items())
        app = App.build(config.load(write_config(text)))
        made.append(Harness(name, fake, app, feed_server, image_url))
        assert app.connectors[name].check().account  # `check --online`, as set-up asks
        app.run_once()  # first start: the (empty) back catalogue is recorded, nothing sent
        return made[-1]

    yield make
    for made_one in made:
        made_one.app.close()
        made_one.fake.stop()


@pytest.mark.parametrize(("platform", "fault", "shape"), list(cases()))
def test_fault_then_exactly_one_post(harness, platform: str, fault: str, shape: str) -> None:
    """The fault's promised state, then exactly one post once it clears (or a human resumes)."""
    h = harness(platform)
    row = MATRIX[platform]
    if fault != "none":
        h.fake.script(fault)
    h.add_post(image=shape == "image")
    h.app.run_once()

    h.check(row.after(fault))
    if fault not in ("none", "expired_token"):
        assert [applied for applied, _ in h.fake.injected] == [fault]
    assert len(h.fake.posts) == (1 if fault in LANDED or fault in ("none", "media_rejected") else 0)
    if fault == "expired_token":
        held_until_resumed(h, row.after(fault))
    else:
        h.fake.clear()
        h.settle()

    delivery = h.delivery()
    assert delivery.state == State.PUBLISHED, (delivery.last_error, h.outcomes())
    (post,) = h.fake.posts_for(LINK)
    assert h.fake.posts == [post]  # exactly one post on the platform, the one recorded
    assert delivery.remote_id == post.remote_id
    if fault in LANDED:
        assert "found by lookup" in (delivery.last_error or "")
    assert len(post.media) == (1 if shape == "image" and fault != "media_rejected" else 0)
    if fault == "media_rejected":
        (dropped,) = [e for e in log_entries(h.app.store) if e["outcome"] == "image_dropped"]
        assert row.dropped in dropped["error"]
        sent = delivery.draft  # the stored draft is the one really sent: text only, and why
        assert sent is not None and sent.images == () and sent.notes[-1] == delivery.last_error
        assert sent.notes[-1].startswith("image dropped: ") and row.dropped in sent.notes[-1]
    assert h.fake.crashes == []


def held_until_resumed(h: Harness, expected: After) -> None:
    """An expired token never heals by itself: re-checked and paused again, until resumed."""
    fast_forward(h.app)  # past the pause: the target is tried again, and pauses again
    h.app.run_once()
    h.check(expected)
    h.fake.clear()  # the token is renewed; the pause still holds until someone resumes
    h.app.run_once()
    assert h.app.store.target_state(h.name).pause_reason and h.fake.posts == []
    assert h.delivery().state == State.PENDING
    h.app.store.resume_target(h.name, utcnow())
    h.app.run_once()


def test_the_matrix_covers_every_platform_and_fault() -> None:
    """A new connector or fault needs its row; overrides name real faults."""
    assert set(MATRIX) == set(FAKES)
    for row in MATRIX.values():
        assert set(row.special) <= set(FAULTS)
