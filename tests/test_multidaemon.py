"""Several daemons, one PostgreSQL queue: each delivery published exactly once, each feed
fetched about once per interval, a killed daemon's work finished by the others."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner

from syndicator.cli import cli
from syndicator.models import utcnow
from syndicator.store import Pacing, Store
from tests.chaos.crash import INSTANCES, Feed, deliveries, start, write_config
from tests.conftest import PG_URL
from tests.fakeplatform import Platform, serve

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs SYNDICATOR_TEST_DATABASE_URL")

POSTS = 120


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


@pytest.fixture
def cluster(tmp_path, database_url):
    platform = Platform(delay=0.01)
    api = serve(platform)
    feed = Feed()
    for i in range(3):
        feed.add(f"before-{i}")
    config = write_config(tmp_path, feed.url, f"http://127.0.0.1:{api.server_port}", database_url)
    daemons = [start(config, tmp_path / f"daemon-{n}.log") for n in range(3)]
    yield platform, feed, config, daemons, database_url
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    api.shutdown()
    feed.server.shutdown()


def settle(database_url: str, expected: int) -> bool:
    def done() -> bool:
        rows = deliveries(database_url)
        return len(rows) == expected and all(r["state"] == "published" for r in rows)

    return wait_until(done, 120)


def exactly_once(platform: Platform) -> None:
    stats = platform.stats()
    for name in INSTANCES:
        by_link = stats["instances"][name]["by_link"]
        counts = [by_link.get(f"https://blog.example/post-{i}", 0) for i in range(POSTS)]
        assert counts == [1] * POSTS, name
        assert not [link for link in by_link if "before-" in link]


def test_three_daemons_share_the_work_exactly_once(cluster):
    platform, feed, config, daemons, database_url = cluster
    time.sleep(4)  # all three started and migrated the empty schema at once
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--json"])
    assert len(json.loads(result.output)["daemons"]) == 3
    fetches_before, began = feed.fetches, time.monotonic()
    for i in range(POSTS):
        feed.add(f"post-{i}")
        if i % 30 == 29:
            time.sleep(1)
    assert settle(database_url, POSTS * len(INSTANCES))
    elapsed = time.monotonic() - began
    exactly_once(platform)
    # interval = 1 s: three daemons must not fetch three times as often
    assert feed.fetches - fetches_before <= elapsed * 1.5 + 3
    for daemon in daemons:
        daemon.send_signal(signal.SIGTERM)
    assert [d.wait(timeout=60) for d in daemons] == [0, 0, 0]


def test_a_killed_daemons_work_is_finished_by_the_others(cluster):
    platform, feed, _, daemons, database_url = cluster
    time.sleep(4)
    for i in range(POSTS):
        feed.add(f"post-{i}")
    assert wait_until(lambda: platform.stats()["requests"] > 40, 60)
    daemons[0].send_signal(signal.SIGKILL)
    daemons[0].wait()
    assert settle(database_url, POSTS * len(INSTANCES))
    exactly_once(platform)


def test_caps_hold_across_daemons(database_url):
    """Two stores racing for a capped target never claim more than the cap between them."""
    first, second = Store(database_url), Store(database_url)
    first.migrate()
    from syndicator.models import Post, State
    from tests.fakes import Entry  # noqa: F401  (keeps fixtures symmetrical)

    now = utcnow()
    for i in range(10):
        post = Post(
            feed="f",
            guid=f"g{i}",
            url=f"https://b.example/{i}",
            title=f"t{i}",
            published=now - timedelta(minutes=i),
        )
        post_id, _, _ = first.add_post(post, now, publish=True)
        first.create_delivery(post_id, "capped", State.PENDING, dry_run=False, now=now, due=now)
    pacing = Pacing(cap_per_hour=3)
    claimed = []
    for store, owner in ((first, "a"), (second, "b"), (first, "a"), (second, "b")):
        claimed += store.claim_due(
            owner, utcnow(), 60, target="capped", limit=10, resolvable_unknown=True, pacing=pacing
        )
    assert len(claimed) == 3
    first.close()
    second.close()
