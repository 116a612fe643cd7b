"""The spine end to end: feed on 127.0.0.1 → store → fan-out → dispatch → publish log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from syndicator import config
from syndicator.app import App
from syndicator.models import State
from syndicator.queries import list_deliveries, log_entries
from tests import fakes

CONFIG = """
[syndicator]
mode = "{mode}"
state_dir = "{state}"
database = "{db}"

[[feeds]]
name = "blog"
url = "{url}"
backfill = {backfill}
max_age = "7d"

[targets.alpha]
type = "fake"
platform = "alpha"

[targets.beta]
type = "fake"
platform = "beta"
exclude_categories = ["internal"]
"""


@pytest.fixture
def make_app(write_config, feed_server):
    apps: list[App] = []

    def make(mode: str = "dry-run", backfill: int = 0) -> App:
        text = CONFIG.replace("{mode}", mode).replace("{url}", feed_server.url)
        path = write_config(text.replace("{backfill}", str(backfill)))
        app = App.build(config.load(path))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def states(app: App) -> list[tuple[str, str, str]]:
    return sorted((d.post_guid, d.target, d.state.value) for d in list_deliveries(app.store))


def test_first_start_publishes_nothing_then_each_new_entry_once(make_app, feed_server):
    for i in range(5):
        feed_server.add(f"old-{i}", age=timedelta(hours=10 - i))
    app = make_app()
    polls, counts = app.run_once()
    assert polls[0].new_posts == 5 and polls[0].deliveries == 0
    assert states(app) == [] and not counts

    feed_server.add("new-1")
    app.run_once()
    assert states(app) == [("new-1", "alpha", "dry_run"), ("new-1", "beta", "dry_run")]
    delivery = list_deliveries(app.store, target="alpha")[0]
    assert delivery.draft is not None and "Post new-1" in delivery.draft.text
    assert delivery.draft.link == "https://blog.example/new-1"
    dry_log = log_entries(app.store, target="alpha")
    assert [e["outcome"] for e in dry_log] == ["dry_run"] and dry_log[0]["dry_run"] is True
    assert fakes.PLATFORMS["alpha"].posts == []  # dry-run: nothing left the machine

    app.run_once()  # nothing new: nothing created
    assert len(states(app)) == 2


def test_edited_entry_is_recorded_never_reposted(make_app, feed_server):
    app = make_app(mode="live")
    app.run_once()
    entry = feed_server.add("p1", "Original title")
    app.run_once()
    assert len(fakes.PLATFORMS["alpha"].posts) == 1
    entry.title = "Edited title"
    polls, _ = app.run_once()
    assert polls[0].edited_posts == 1 and polls[0].new_posts == 0
    assert len(fakes.PLATFORMS["alpha"].posts) == 1
    assert len(states(app)) == 2


def test_several_new_entries_in_any_order_all_go_out(make_app, feed_server):
    app = make_app(mode="live")
    app.run_once()
    for i in range(4):
        feed_server.add(f"n{i}", age=timedelta(minutes=10 * i))
    feed_server.entries.reverse()  # oldest first: order must not matter
    app.run_once()
    received = fakes.PLATFORMS["alpha"].texts()
    assert len(received) == 4
    assert sorted(t.splitlines()[0] for t in received) == [f"Post n{i}" for i in range(4)]
    assert received[0].startswith("Post n0")  # newest content first


def test_backfill_publishes_only_the_newest_existing_entries(make_app, feed_server):
    for i in range(4):
        feed_server.add(f"e{i}", age=timedelta(hours=4 - i))
    app = make_app(backfill=2)
    app.run_once()
    assert {g for g, _, _ in states(app)} == {"e2", "e3"}


def test_filters_and_max_age(make_app, feed_server):
    app = make_app(mode="live")
    app.run_once()
    feed_server.add("secret", categories=("Internal",))
    feed_server.add("ancient", age=timedelta(days=30))
    app.run_once()
    assert states(app) == [
        ("ancient", "alpha", "skipped"),
        ("ancient", "beta", "skipped"),
        ("secret", "alpha", "published"),
    ]
    assert [e["outcome"] for e in log_entries(app.store, target="beta")] == ["skipped"]


def test_a_broken_feed_is_retried_and_never_stops_the_others(make_app, feed_server, httpserver):
    app = make_app(mode="live")
    app.run_once()
    feed_server.add("ok-1")
    httpserver.clear_all_handlers()
    httpserver.expect_request("/feed.xml").respond_with_data("oops", status=503)
    polls, _ = app.run_once()
    assert polls[0].error and "503" in polls[0].error
    assert app.store.feed_state("blog").last_error == polls[0].error
    httpserver.clear_all_handlers()
    httpserver.expect_request("/feed.xml").respond_with_handler(feed_server._handle)
    app.run_once()
    assert fakes.PLATFORMS["alpha"].texts()[0].startswith("Post ok-1")
    assert app.store.feed_state("blog").last_error is None


def test_conditional_get_is_used(make_app, feed_server):
    app = make_app()
    app.run_once()
    polls, _ = app.run_once()
    assert polls[0].not_modified and feed_server.conditional_hits == 1


def test_crash_between_storing_a_post_and_fanning_out_loses_nothing(
    make_app, feed_server, monkeypatch
):
    app = make_app(mode="live")
    app.run_once()
    feed_server.add("fragile")
    poller = app.poller()
    monkeypatch.setattr(type(poller), "_fan_out", lambda *a, **k: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        poller.poll(app.settings.feeds[0], app.store.feed_state("blog").last_poll_at)
    monkeypatch.undo()
    app.run_once()
    assert [t.splitlines()[0] for t in fakes.PLATFORMS["alpha"].texts()] == ["Post fragile"]


def test_unique_delivery_per_post_and_target(make_app, feed_server):
    app = make_app()
    app.run_once()
    feed_server.add("x")
    app.run_once()
    delivery = list_deliveries(app.store, target="alpha")[0]
    from syndicator.models import utcnow

    again = app.store.create_delivery(
        delivery.post_id, "alpha", State.PENDING, dry_run=True, now=utcnow()
    )
    assert again is None


def test_an_unfinished_first_look_still_publishes_posts_that_appear_later(
    make_app, feed_server, monkeypatch
):
    """The first poll could not store one entry (the feed stays a 'first poll'): entries
    dated after that first look are new posts, the rest stays back catalogue."""
    feed_server.add("old-1", age=timedelta(hours=5))
    feed_server.add("refused", age=timedelta(hours=4))
    app = make_app(mode="live")
    real = app.store.add_post

    def add_post(post, now, *, publish):
        if post.guid == "refused":
            raise RuntimeError("the database refused this one")
        return real(post, now, publish=publish)

    monkeypatch.setattr(app.store, "add_post", add_post)
    polls, _ = app.run_once()
    assert polls[0].error and "could not be stored" in polls[0].error
    feed_server.add("fresh", age=timedelta(seconds=-5))  # dated after the first look
    app.run_once()
    monkeypatch.undo()
    app.run_once()
    assert [t.splitlines()[0] for t in fakes.PLATFORMS["alpha"].texts()] == ["Post fresh"]
