"""bit.ly short links: one per (post, target) wrapping that target's UTM URL, made once,
reused after a crash; bit.ly failures keep the long URL or wait, as configured."""

from __future__ import annotations

import dataclasses
import json

import pytest
from werkzeug import Request, Response

from syndicator import config
from syndicator.app import App
from syndicator.models import State
from syndicator.queries import list_deliveries
from tests import fakes

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"

[bitly]
token = "bitly-token-1234"
api_base = "BITLY"

[[feeds]]
name = "blog"
url = "FEED"

[targets.alpha]
type = "fake"
platform = "alpha"
shorten = "bitly"
template = "{title} {url}"
utm = { source = "alpha", medium = "social" }
POLICY

[targets.beta]
type = "fake"
platform = "beta"
shorten = "bitly"
template = "{title} {url}"
utm = { source = "beta", medium = "social" }
"""


class FakeBitly:
    """POST /v4/shorten: the same bitlink for the same long URL, as bit.ly does."""

    def __init__(self, server) -> None:
        self.links: dict[str, str] = {}
        self.calls = 0
        self.failing = False
        server.expect_request("/v4/shorten", method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        self.calls += 1
        assert request.headers["Authorization"] == "Bearer bitly-token-1234"
        if self.failing:
            return Response(json.dumps({"message": "INTERNAL_ERROR"}), status=500)
        long_url = request.get_json()["long_url"]
        link = self.links.setdefault(long_url, f"https://bit.ly/s{len(self.links) + 1}")
        return Response(
            json.dumps({"link": link, "long_url": long_url}),
            status=200,
            content_type="application/json",
        )


@pytest.fixture
def setup(write_config, feed_server, httpserver):
    bitly = FakeBitly(httpserver)
    apps = []

    def make(policy: str = ""):
        text = (
            CONFIG.replace("FEED", feed_server.url)
            .replace("POLICY", policy)
            .replace("BITLY", httpserver.url_for("/").rstrip("/"))
        )
        app = App.build(config.load(write_config(text)))
        apps.append(app)
        return app

    yield make, bitly
    for app in apps:
        app.close()


def test_one_short_link_per_target_each_wrapping_its_utm_url(setup, feed_server):
    make, bitly = setup
    app = make()
    app.run_once()
    feed_server.add("p1", "Shorten me")
    app.run_once()
    alpha, beta = fakes.PLATFORMS["alpha"].texts(), fakes.PLATFORMS["beta"].texts()
    assert alpha == ["Shorten me https://bit.ly/s1"] or alpha == ["Shorten me https://bit.ly/s2"]
    assert alpha != beta and beta[0].startswith("Shorten me https://bit.ly/s")
    assert set(bitly.links) == {
        "https://blog.example/p1?utm_source=alpha&utm_medium=social",
        "https://blog.example/p1?utm_source=beta&utm_medium=social",
    }
    assert bitly.calls == 2


def test_a_retry_after_a_crash_reuses_the_stored_links(setup, feed_server, monkeypatch):
    make, bitly = setup
    app = make()
    app.run_once()
    feed_server.add("p1")
    poller = app.poller()
    original = poller._fan_out

    def crash_after_first_target(*args, **kwargs):
        monkeypatch.setattr(
            app.store, "create_delivery", lambda *a, **k: (_ for _ in ()).throw(SystemExit)
        )  # the process dies right after the first short link was stored
        original(*args, **kwargs)

    monkeypatch.setattr(poller, "_fan_out", crash_after_first_target)
    with pytest.raises(SystemExit):
        poller.poll(app.settings.feeds[0], app.store.feed_state("blog").last_poll_at)
    monkeypatch.undo()
    calls = bitly.calls
    app.run_once()
    assert len(fakes.PLATFORMS["alpha"].posts) == len(fakes.PLATFORMS["beta"].posts) == 1
    assert bitly.calls == calls + 1  # only the target whose link was never made asks again


def test_bitly_down_long_url_by_default_and_the_draft_says_so(setup, feed_server):
    make, bitly = setup
    app = make()
    app.run_once()
    bitly.failing = True
    feed_server.add("p1", "Long it is")
    app.run_once()
    (text,) = fakes.PLATFORMS["alpha"].texts()
    assert text == "Long it is https://blog.example/p1?utm_source=alpha&utm_medium=social"
    (_, draft) = fakes.PLATFORMS["alpha"].posts[0]
    assert draft.notes and "long URL kept: bit.ly failed" in draft.notes[-1]


def test_wait_policy_holds_the_post_until_bitly_answers(setup, feed_server):
    make, bitly = setup
    app = make('on_shortener_error = "wait"')
    app.run_once()
    bitly.failing = True
    feed_server.add("p1", "Worth the wait")
    app.run_once()
    assert "alpha" not in {d.target for d in list_deliveries(app.store)}
    assert len(fakes.PLATFORMS["beta"].posts) == 1  # beta keeps the long URL and goes out
    bitly.failing = False
    app.run_once()
    assert fakes.PLATFORMS["alpha"].texts()[0].startswith("Worth the wait https://bit.ly/")
    assert {d.state for d in list_deliveries(app.store)} == {State.PUBLISHED}
    assert len(fakes.PLATFORMS["beta"].posts) == 1


def test_dry_run_makes_no_short_links(setup, feed_server):
    make, bitly = setup
    app = make()
    app.settings = dataclasses.replace(app.settings, mode="dry-run")
    app.run_once()
    feed_server.add("p1")
    app.run_once()
    assert bitly.calls == 0


def test_engagement_reads_bitly_clicks_for_each_target(setup, feed_server, httpserver):
    from datetime import timedelta

    import sqlalchemy as sa

    from syndicator.engagement import Engagement
    from syndicator.models import utcnow
    from syndicator.schema import publish_log

    make, bitly = setup
    clicks = {"s1": 7, "s2": 3}

    def summary(request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer bitly-token-1234"
        code = request.path.split("/")[4]
        body = {"total_clicks": clicks[code], "unit": "day", "units": -1}
        return Response(json.dumps(body), content_type="application/json")

    for code in clicks:
        httpserver.expect_request(
            f"/v4/bitlinks/bit.ly/{code}/clicks/summary"
        ).respond_with_handler(summary)
    app = make()
    app.run_once()
    feed_server.add("p1")
    app.run_once()
    with app.store.engine.begin() as conn:  # published two hours ago: the "1h" step is due
        conn.execute(sa.update(publish_log).values(at=utcnow() - timedelta(hours=2)))
    result = Engagement(app.settings, app.store, app.connectors).run_once()
    assert sum(result.stored.values()) == 2
    with app.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT counters FROM engagement")).scalars().all()
    got = sorted(
        r["link_clicks"] if isinstance(r, dict) else json.loads(r)["link_clicks"] for r in rows
    )
    assert got == [3, 7]
    from syndicator.report import build

    platforms = {p["target"]: p["latest"] for p in build(app.settings, app.store)["platforms"]}
    assert sorted(p["link_clicks"] for p in platforms.values()) == [3, 7]  # per platform


def test_check_online_verifies_the_bitly_token(setup, httpserver):
    from click.testing import CliRunner

    from syndicator.cli import cli

    make, _ = setup
    app = make()
    httpserver.expect_request("/v4/user").respond_with_json({"login": "brightside", "name": "B"})
    result = CliRunner().invoke(cli, ["--config", str(app.settings.path), "check", "--online"])
    assert "bit.ly: OK — " in result.output and "brightside" in result.output
    assert "bitly-token-1234" not in result.output
