"""Delivery state machine under failures: retries, unknown outcomes, pauses, caps."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa

from syndicator import config
from syndicator.app import App
from syndicator.config import RetryPolicy
from syndicator.errors import (
    AuthExpired,
    DuplicateContent,
    MediaError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.models import Image, State, utcnow
from syndicator.publishing import backoff
from syndicator.queries import list_deliveries, log_entries
from syndicator.schema import deliveries, targets
from tests import fakes

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"

[[feeds]]
name = "blog"
url = "{url}"

[targets.alpha]
type = "fake"
platform = "alpha"
max_attempts = 3
{alpha_extra}

[targets.beta]
type = "fake"
platform = "beta"
"""


@pytest.fixture
def app(write_config, feed_server, request):
    extra = getattr(request, "param", "")
    path = write_config(CONFIG.replace("{url}", feed_server.url).replace("{alpha_extra}", extra))
    app = App.build(config.load(path))
    app.run_once()  # first start: nothing
    yield app
    app.close()


def make_due(app: App) -> None:
    """Fast-forward: every waiting delivery is due, every pause is over."""
    past = utcnow() - timedelta(seconds=1)
    with app.store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.next_attempt_at.is_not(None))
            .values(next_attempt_at=past)
        )
        conn.execute(sa.update(targets).values(paused_until=None, pause_reason=None))


def only(app: App, target: str = "alpha"):
    (delivery,) = list_deliveries(app.store, target=target)
    return delivery


def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(base=10, factor=2, max_delay=100, jitter=0.1)
    assert 9 <= backoff(policy, 1) <= 11
    assert 36 <= backoff(policy, 3) <= 44
    assert 90 <= backoff(policy, 10) <= 110
    assert backoff(policy, 1, retry_after=500) == 500


def test_retryable_error_retries_then_publishes_once(app, feed_server):
    fakes.PLATFORMS["alpha"].script = [RetryableError("503"), RetryableError("503")]
    feed_server.add("p")
    app.run_once()
    d = only(app)
    assert d.state == State.PENDING and d.attempts == 1 and d.last_error == "503"
    assert d.next_attempt_at > utcnow()
    for _ in range(2):
        make_due(app)
        app.run_once()
    assert only(app).state == State.PUBLISHED
    assert len(fakes.PLATFORMS["alpha"].posts) == 1
    assert [e["outcome"] for e in reversed(log_entries(app.store, target="alpha"))] == [
        "retry",
        "retry",
        "published",
    ]


def test_max_attempts_then_failed_with_reason_and_queue_retry(app, feed_server):
    fakes.PLATFORMS["alpha"].script = [RetryableError("HTTP 503: busy")] * 3
    feed_server.add("p")
    for _ in range(3):
        app.run_once()
        make_due(app)
    d = only(app)
    assert d.state == State.FAILED and d.last_error == "gave up after 3 attempts: HTTP 503: busy"
    assert app.store.retry(d.id, utcnow())
    app.run_once()
    assert only(app).state == State.PUBLISHED and len(fakes.PLATFORMS["alpha"].posts) == 1


def test_permanent_error_fails_at_once(app, feed_server):
    fakes.PLATFORMS["alpha"].script = [PermanentError("HTTP 422: text too long")]
    feed_server.add("p")
    app.run_once()
    assert only(app).state == State.FAILED and "too long" in only(app).last_error


def test_rate_limit_pauses_only_that_target(app, feed_server):
    fakes.PLATFORMS["alpha"].script = [RateLimited("HTTP 429", retry_after=120)]
    feed_server.add("p1")
    feed_server.add("p2")
    app.run_once()
    paused = app.store.target_state("alpha")
    assert paused.paused_until and 100 < (paused.paused_until - utcnow()).total_seconds() <= 120
    assert "rate limited" in paused.pause_reason
    assert len(fakes.PLATFORMS["beta"].posts) == 2  # the other target kept publishing
    alpha = list_deliveries(app.store, target="alpha")
    assert {d.state for d in alpha} == {State.PENDING}
    assert all(d.attempts == 0 for d in alpha)  # a rate limit does not burn attempts
    app.run_once()
    assert fakes.PLATFORMS["alpha"].posts == []  # still paused
    make_due(app)
    app.run_once()
    assert len(fakes.PLATFORMS["alpha"].posts) == 2


def test_expired_token_pauses_target_with_reason(app, feed_server):
    fakes.PLATFORMS["alpha"].script = [AuthExpired("HTTP 401: The access token is invalid")]
    feed_server.add("p")
    app.run_once()
    state = app.store.target_state("alpha")
    assert "authentication failed" in state.pause_reason and state.paused_until > utcnow()
    assert only(app).state == State.PENDING
    make_due(app)
    app.run_once()
    assert only(app).state == State.PUBLISHED


def test_unknown_outcome_that_landed_is_found_by_lookup_not_resent(app, feed_server):
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script, platform.land_before_failing = [OutcomeUnknown("read timeout")], True
    feed_server.add("p")
    app.run_once()
    assert only(app).state == State.UNKNOWN
    platform.land_before_failing = False
    make_due(app)
    app.run_once()
    d = only(app)
    assert d.state == State.PUBLISHED and d.remote_url.startswith("https://fake.example/")
    assert len(platform.posts) == 1


def test_unknown_outcome_that_did_not_land_is_resent_once(app, feed_server):
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [OutcomeUnknown("reset")]
    feed_server.add("p")
    app.run_once()
    make_due(app)
    app.run_once()
    assert only(app).state == State.PUBLISHED and len(fakes.PLATFORMS["alpha"].posts) == 1


@pytest.mark.parametrize("app", ['on_unknown = "hold"'], indirect=True)
def test_unknown_without_lookup_is_held_for_a_human(app, feed_server, monkeypatch):
    monkeypatch.setattr(fakes.FakeConnector, "can_lookup", False)
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [OutcomeUnknown("timeout")]
    feed_server.add("p")
    app.run_once()
    d = only(app)
    assert d.state == State.UNKNOWN and d.next_attempt_at is None
    make_due(app)
    app.run_once()
    assert only(app).state == State.UNKNOWN and fakes.PLATFORMS["alpha"].posts == []
    assert app.store.retry(d.id, utcnow())  # a human decides to resend
    app.run_once()
    assert only(app).state == State.PUBLISHED


@pytest.mark.parametrize("app", ['on_unknown = "resend"'], indirect=True)
def test_unknown_without_lookup_resend_policy(app, feed_server, monkeypatch):
    monkeypatch.setattr(fakes.FakeConnector, "can_lookup", False)
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [OutcomeUnknown("timeout")]
    feed_server.add("p")
    app.run_once()
    make_due(app)
    app.run_once()
    assert only(app).state == State.PUBLISHED


def test_duplicate_after_an_unknown_means_it_landed(app, feed_server, monkeypatch):
    monkeypatch.setattr(fakes.FakeConnector, "lookup", lambda self, draft, key: None)
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script = [OutcomeUnknown("timeout"), DuplicateContent("HTTP 403: duplicate")]
    feed_server.add("p")
    app.run_once()
    make_due(app)
    app.run_once()
    d = only(app)
    assert d.state == State.PUBLISHED and "earlier attempt landed" in d.last_error


def test_duplicate_on_first_attempt_fails(app, feed_server):
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [DuplicateContent("dup")]
    feed_server.add("p")
    app.run_once()
    assert only(app).state == State.FAILED and "duplicate" in only(app).last_error


def test_expired_lease_is_recovered_through_lookup(app, feed_server):
    feed_server.add("p")
    app.poll_due_feeds(force=True)
    (claimed,) = app.store.claim_due(
        "dead-daemon", utcnow(), -10, target="alpha", limit=5, resolvable_unknown=True
    )
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).posts.append(
        (claimed.key, claimed.draft)
    )
    app.run_once()  # recovers the lease → unknown, then resolves it by lookup
    d = only(app)
    assert d.state == State.PUBLISHED and len(fakes.PLATFORMS["alpha"].posts) == 1
    outcomes = [e["outcome"] for e in reversed(log_entries(app.store, target="alpha"))]
    assert outcomes == ["unknown", "published"]


def test_a_late_receipt_settles_an_unknown_but_never_overrides_a_new_holder(app, feed_server):
    from syndicator.models import Receipt

    feed_server.add("p")
    app.poll_due_feeds(force=True)
    (claimed,) = app.store.claim_due(
        "old", utcnow(), -10, target="alpha", limit=5, resolvable_unknown=True
    )
    app.store.recover_expired(utcnow())  # "old" looked dead: the outcome is unknown now
    (taken,) = app.store.claim_due(
        "new", utcnow(), 300, target="alpha", limit=5, resolvable_unknown=True
    )
    late = Receipt("1", "https://fake.example/1")
    assert not app.store.mark_published(claimed, "old", late, utcnow(), duration_ms=1)
    assert only(app).state == State.PUBLISHING  # "new" holds it and will look it up
    app.store.release(taken, "new", utcnow())  # back to unknown, nobody holds it
    assert app.store.mark_published(claimed, "old", late, utcnow(), duration_ms=1)
    d = only(app)
    assert (d.state, d.remote_url) == (State.PUBLISHED, "https://fake.example/1")
    assert "after this process's lease had run out" in d.last_error


@pytest.mark.parametrize("app", ["cap_per_hour = 2"], indirect=True)
def test_hourly_cap_spaces_a_backlog_newest_first(app, feed_server):
    for i in range(5):
        feed_server.add(f"p{i}", age=timedelta(minutes=50 - i))
    app.run_once()
    alpha = fakes.PLATFORMS["alpha"].texts()
    assert [t.splitlines()[0] for t in alpha] == ["Post p4", "Post p3"]
    assert len(fakes.PLATFORMS["beta"].posts) == 5
    app.run_once()
    assert len(fakes.PLATFORMS["alpha"].posts) == 2


@pytest.mark.parametrize("app", ['min_spacing = "1h"'], indirect=True)
def test_min_spacing(app, feed_server):
    feed_server.add("a")
    feed_server.add("b")
    app.run_once()
    assert len(fakes.PLATFORMS["alpha"].posts) == 1


def test_image_error_falls_back_to_text_and_says_why(app, feed_server, monkeypatch):
    original = fakes.FakeConnector.publish

    def publish(self, draft, *, key):
        if draft.images:
            raise MediaError("image too large: 50000x50000 pixels")
        return original(self, draft, key=key)

    monkeypatch.setattr(fakes.FakeConnector, "publish", publish)
    feed_server.add("p", content='<img src="https://blog.example/a.jpg" alt="A">')
    monkeypatch.setattr(
        fakes.FakeConnector,
        "prepare",
        lambda self, post: fakes.Draft(
            text=post.title, link=post.url, images=(Image("https://blog.example/a.jpg", "A"),)
        ),
    )
    app.run_once()
    assert only(app).state == State.PUBLISHED
    (key, draft) = fakes.PLATFORMS["alpha"].posts[0]
    assert draft.images == () and "image dropped" in draft.notes[0]
    assert "image_dropped" in [e["outcome"] for e in log_entries(app.store, target="alpha")]


def test_connector_crash_is_treated_as_unknown_never_blindly_resent(app, feed_server, monkeypatch):
    original = fakes.FakeConnector.publish

    def publish(self, draft, *, key):
        return 1 / 0 if self.context.target == "alpha" else original(self, draft, key=key)

    monkeypatch.setattr(fakes.FakeConnector, "publish", publish)
    feed_server.add("p")
    app.run_once()
    assert only(app).state == State.UNKNOWN and "ZeroDivisionError" in only(app).last_error
    assert only(app, "beta").state == State.PUBLISHED


def test_an_unknown_outcome_is_settled_before_anything_new_goes_out(app, feed_server):
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script = [OutcomeUnknown("timeout")]
    feed_server.add("first", age=timedelta(minutes=2))
    feed_server.add("second", age=timedelta(minutes=1))
    app.run_once()
    alpha = {d.post_guid: d.state for d in list_deliveries(app.store, target="alpha")}
    assert alpha == {"second": State.UNKNOWN, "first": State.PENDING}  # newest went first
    assert platform.posts == []
    make_due(app)
    app.run_once()
    alpha = {d.post_guid: d.state for d in list_deliveries(app.store, target="alpha")}
    assert alpha == {"second": State.PUBLISHED, "first": State.PUBLISHED}
    assert [t.splitlines()[0] for t in platform.texts()] == ["Post second", "Post first"]


def test_a_failing_lookup_keeps_the_outcome_unknown_never_resends(app, feed_server, monkeypatch):
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script = [OutcomeUnknown("timeout")]
    feed_server.add("p")
    app.run_once()

    def lookup(self, draft, *, key):
        raise RateLimited("HTTP 429 on the timeline", retry_after=60)

    monkeypatch.setattr(fakes.FakeConnector, "lookup", lookup)
    make_due(app)
    app.run_once()
    d = only(app)
    assert d.state == State.UNKNOWN and "lookup failed" in d.last_error
    assert platform.posts == []  # nothing resent while we cannot tell
    assert app.store.target_state("alpha").paused_until > utcnow()


def test_unknown_outcomes_stop_after_max_attempts_and_wait_for_a_human(app, feed_server):
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script = [OutcomeUnknown("HTTP 500")] * 3  # never lands
    feed_server.add("p")
    for _ in range(4):
        app.run_once()
        make_due(app)
    d = only(app)
    assert d.state == State.UNKNOWN and d.next_attempt_at is None
    assert d.last_error.startswith("gave up after 3 attempts")


def test_duplicate_answer_is_resolved_by_lookup_with_the_real_url(app, feed_server):
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script, platform.land_before_failing = [DuplicateContent("HTTP 403: duplicate")], True
    feed_server.add("p")
    app.run_once()
    d = only(app)
    assert d.state == State.PUBLISHED and d.remote_url.startswith("https://fake.example/")


def test_delivery_keys_survive_a_rebuilt_database(app, feed_server):
    feed_server.add("p")
    app.run_once()
    key = only(app).key
    assert key.startswith("syndicator-") and len(key) == 43
    assert key != only(app, "beta").key
    assert key == dataclasses.replace(only(app), id=999, post_id=999).key


def test_one_structured_log_line_per_attempt(app, feed_server, caplog):
    import logging

    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [RetryableError("HTTP 503")]
    feed_server.add("p")
    with caplog.at_level(logging.INFO, logger="syndicator.publishing"):
        app.run_once()
        make_due(app)
        app.run_once()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("publish ")]
    alpha = [line for line in lines if "target=alpha" in line]
    assert alpha[0].startswith("publish post=p target=alpha delivery=")
    assert 'outcome=retry attempt=1 error="HTTP 503" next=' in alpha[0]
    assert "outcome=published url=https://fake.example/syndicator-" in alpha[1]
    assert len(alpha) == 2


def test_a_delivery_whose_lease_ran_out_in_the_batch_is_not_sent(app, feed_server, monkeypatch):
    """Another daemon recovered it meanwhile and now holds it: sending it here too could
    double-post, so the renewal before each send fails and this process skips it."""
    feed_server.add("a", age=timedelta(minutes=2))
    feed_server.add("b", age=timedelta(minutes=1))
    app.poll_due_feeds(force=True)
    dispatcher = app.dispatcher()
    original = dispatcher.publisher.process
    taken = []

    def slow_first(target, connector, delivery):
        outcome = original(target, connector, delivery)
        if not taken:  # meanwhile the rest of the batch's leases ran out, another daemon took them
            with app.store.engine.begin() as conn:
                conn.execute(
                    sa.update(deliveries)
                    .where(deliveries.c.state == "publishing")
                    .values(lease_until=utcnow() - timedelta(seconds=1))
                )
            taken.extend(
                app.store.claim_due(
                    "other", utcnow(), 300, target="alpha", limit=5, resolvable_unknown=True
                )
            )
        return outcome

    monkeypatch.setattr(dispatcher.publisher, "process", slow_first)
    dispatcher.drain_target(app.settings.target("alpha"))
    dispatcher.close()
    assert [d.post_guid for d in taken] == ["a"]
    assert fakes.PLATFORMS["alpha"].texts() == ["Post b\n\nhttps://blog.example/b"]
    (held,) = [d for d in list_deliveries(app.store, target="alpha") if d.post_guid == "a"]
    assert held.state == State.PUBLISHING and held.claimed_from == State.UNKNOWN


@pytest.mark.parametrize("app", [""], indirect=True)
def test_the_lease_keeper_keeps_a_slow_publish_from_being_taken_over(app, feed_server):
    """A publish slower than the lease (big uploads) keeps its lease while this process lives."""
    import time

    app.settings = dataclasses.replace(app.settings, lease_seconds=2.0)
    feed_server.add("slow")
    app.poll_due_feeds(force=True)
    dispatcher = app.dispatcher()  # its keeper renews every 0.5 s
    try:
        (held,) = app.store.claim_due(
            dispatcher.owner, utcnow(), 2.0, target="alpha", limit=1, resolvable_unknown=True
        )
        time.sleep(3.5)  # well past the 2 s lease, as if the upload were still running
        assert app.store.recover_expired(utcnow()) == []  # another daemon finds it alive
        assert only(app).state == State.PUBLISHING
    finally:
        dispatcher.close()
    time.sleep(2.5)  # the process is gone: its lease now runs out and is recovered
    assert app.store.recover_expired(utcnow()) == [held.id]
