"""The engagement job: counters read back at widening ages, stored once per step; paused
targets left alone; rate limits end the round for one target; refusals said once."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from syndicator import config
from syndicator.app import App
from syndicator.cli import cli
from syndicator.engagement import Engagement, due_step
from syndicator.errors import ConfigError, PermanentError, RateLimited, RetryableError
from syndicator.models import utcnow
from syndicator.objectives import EngagementSettings, Step
from syndicator.scheduler import Daemon
from syndicator.schema import engagement, publish_log
from syndicator.store import Published, Reading
from tests import metrics_fakes
from tests.metrics_fakes import METRICS

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"

[[feeds]]
name = "blog"
url = "{url}"

[targets.alpha]
type = "fake-metrics"
platform = "alpha"

[targets.beta]
type = "fake-metrics"
platform = "beta"

[targets.plain]
type = "fake"
platform = "plain"
{extra}
"""


@pytest.fixture(autouse=True)
def metrics_connector(monkeypatch: pytest.MonkeyPatch, fake_connector_registered: None) -> None:
    metrics_fakes.register(monkeypatch)


@pytest.fixture
def make_app(write_config, feed_server):
    apps: list[App] = []

    def make(extra: str = "") -> App:
        text = CONFIG.replace("{url}", feed_server.url).replace("{extra}", extra)
        app = App.build(config.load(write_config(text)))
        app.run_once()  # first start: the feed's existing entries are not published
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def publish(app: App, feed_server, *guids: str) -> datetime:
    """Publish new entries on every target; when the last of them landed."""
    for guid in guids:
        feed_server.add(guid)
    app.run_once()
    return max(item.published_at for item in app.store.published_since(utcnow() - timedelta(1)))


def rows(app: App, target: str | None = None) -> list[tuple[str, str, dict[str, int]]]:
    """(target, age, counters) of every stored reading, in order."""
    items = app.store.published_since(utcnow() - timedelta(days=400))
    return [
        (item.target, r.age, r.counters)
        for item in items
        for r in item.readings
        if target in (None, item.target)
    ]


def test_counters_are_stored_once_per_step_as_the_post_ages(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = {"likes": 1}
    t0 = publish(app, feed_server, "p1")
    job = Engagement(app.settings, app.store, app.connectors)
    timeline: list[tuple[timedelta, dict[str, int]]] = [
        (timedelta(minutes=30), {"likes": 1}),
        (timedelta(hours=1, minutes=5), {"likes": 2, "shares": 1}),
        (timedelta(hours=3), {"likes": 3}),  # 1h already read, 1d not due: not asked
        (timedelta(days=1, hours=1), {"likes": 9, "shares": 2, "comments": 1}),
        (timedelta(days=7), {"likes": 14, "shares": 4, "comments": 2}),
        (timedelta(days=30, minutes=1), {"likes": 20, "shares": 5, "comments": 2}),
        (timedelta(days=45), {"likes": 99}),  # past stop_after (+ a day of grace): never read
    ]
    for offset, counters in timeline:
        METRICS["alpha"].default = counters
        job.run_once(t0 + offset)
    assert rows(app, "alpha") == [
        ("alpha", "1h", {"likes": 2, "shares": 1}),
        ("alpha", "1d", {"likes": 9, "shares": 2, "comments": 1}),
        ("alpha", "7d", {"likes": 14, "shares": 4, "comments": 2}),
        ("alpha", "30d", {"likes": 20, "shares": 5, "comments": 2}),
    ]
    assert len(METRICS["alpha"].asked) == 4  # only when a step was due
    with app.store.engine.connect() as conn:
        ats = [r.at for r in conn.execute(sa.select(engagement.c.at).order_by(engagement.c.id))]
    assert ats[0] == t0 + timedelta(hours=1, minutes=5)  # when it was read, not when it was due


def test_steps_missed_while_nothing_ran_are_skipped_not_read_late(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = {"likes": 5}
    t0 = publish(app, feed_server, "p1")
    job = Engagement(app.settings, app.store, app.connectors)
    job.run_once(t0 + timedelta(days=8))
    job.run_once(t0 + timedelta(days=8, hours=1))
    assert [age for _, age, _ in rows(app, "alpha")] == ["7d"]
    job.run_once(t0 + timedelta(days=30, hours=20))  # 30d read within the grace
    assert [age for _, age, _ in rows(app, "alpha")] == ["7d", "30d"]


def test_due_step_rules():
    steps = EngagementSettings().steps
    t0 = datetime(2026, 5, 1, 12, tzinfo=utcnow().tzinfo)

    def item(*ages: str) -> Published:
        readings = tuple(Reading(a, t0, {}) for a in ages)
        return Published(1, 1, "t", "r", None, t0, "g", "u", "T", readings)

    assert due_step(item(), steps, t0 + timedelta(minutes=59)) is None
    assert due_step(item(), steps, t0 + timedelta(hours=1)) == Step("1h", 3600.0)
    assert due_step(item("1h"), steps, t0 + timedelta(hours=23)) is None
    assert due_step(item("1h"), steps, t0 + timedelta(days=9)) == Step("7d", 7 * 86400.0)
    assert due_step(item("30d"), steps, t0 + timedelta(days=30)) is None


def test_a_paused_target_is_not_asked_and_its_budget_kept(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = METRICS["beta"].default = {"likes": 1}
    t0 = publish(app, feed_server, "p1")
    app.store.pause_target("alpha", t0 + timedelta(days=2), "rate limited by the platform")
    result = Engagement(app.settings, app.store, app.connectors).run_once(t0 + timedelta(hours=2))
    assert METRICS["alpha"].asked == [] and len(METRICS["beta"].asked) == 1
    assert result.skipped["alpha"].startswith("paused until")
    assert [t for t, _, _ in rows(app)] == ["beta"]


def test_rate_limited_stops_that_target_for_the_round_and_pauses_nothing(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = METRICS["beta"].default = {"likes": 2}
    t0 = publish(app, feed_server, "p1", "p2")
    METRICS["alpha"].script = [RateLimited("HTTP 429", retry_after=900)]
    job = Engagement(app.settings, app.store, app.connectors)
    result = job.run_once(t0 + timedelta(hours=1))
    assert len(METRICS["alpha"].asked) == 1  # the second post was not asked
    assert len(METRICS["beta"].asked) == 2  # other targets carry on
    assert "HTTP 429" in result.skipped["alpha"] and not result.refused
    state = app.store.target_state("alpha")
    assert state.paused_until is None and state.metrics_error is None
    job.run_once(t0 + timedelta(hours=1, minutes=10))  # next round: both posts read
    assert sorted(age for t, age, _ in rows(app, "alpha")) == ["1h", "1h"]


def test_transient_errors_also_wait_for_the_next_round(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].script = [RetryableError("GET /x: read timed out")]
    t0 = publish(app, feed_server, "p1")
    job = Engagement(app.settings, app.store, app.connectors)
    job.run_once(t0 + timedelta(hours=1))
    assert rows(app, "alpha") == []
    job.run_once(t0 + timedelta(hours=1, minutes=10))
    assert rows(app, "alpha") == [("alpha", "1h", {})]


def test_a_refusal_is_recorded_and_logged_once_then_not_asked_until_resume(
    make_app, feed_server, write_config, caplog
):
    app = make_app()
    METRICS["beta"].default = {"likes": 4}
    refusal = PermanentError("GET /2/tweets/1: HTTP 403: client-not-enrolled")
    METRICS["alpha"].script = [refusal, refusal]
    t0 = publish(app, feed_server, "p1")
    job = Engagement(app.settings, app.store, app.connectors)
    with caplog.at_level(logging.WARNING, logger="syndicator.engagement"):
        first = job.run_once(t0 + timedelta(hours=1))
        second = job.run_once(t0 + timedelta(days=1, hours=1))
    assert "client-not-enrolled" in first.refused["alpha"]
    assert second.skipped["alpha"].startswith("refused: ")
    assert len(METRICS["alpha"].asked) == 1  # not asked again
    warnings = [r for r in caplog.records if "refuses to give counters" in r.getMessage()]
    assert len(warnings) == 1 and "resume alpha" in warnings[0].getMessage()
    assert app.store.target_state("alpha").metrics_error.endswith("client-not-enrolled")
    assert len(rows(app, "beta")) == 2  # the other target is read as usual

    result = CliRunner().invoke(cli, ["--config", str(app.settings.path), "resume", "alpha"])
    assert result.exit_code == 0, result.output
    assert app.store.target_state("alpha").metrics_error is None
    job.run_once(t0 + timedelta(days=1, hours=2))
    assert len(METRICS["alpha"].asked) == 2  # asked again after resume


def test_a_config_reload_asks_refusing_targets_again(make_app, feed_server):
    app = make_app()
    app.store.refuse_metrics("alpha", "HTTP 403")
    assert not app.store.refuse_metrics("alpha", "HTTP 403 again")  # said once
    daemon = Daemon(app, app.settings.path)
    try:
        daemon.reload()
        assert daemon.app.store.target_state("alpha").metrics_error is None
    finally:
        daemon.app.close()


def test_the_daemon_schedules_the_job_only_when_enabled(make_app):
    app = make_app()
    daemon = Daemon(app, app.settings.path)
    daemon._schedule()
    job = daemon.scheduler.get_job("engagement")
    assert job is not None and job.trigger.interval == timedelta(minutes=10)
    disabled = make_app("[engagement]\nenabled = false\n")
    other = Daemon(disabled, disabled.settings.path)
    other._schedule()
    assert other.scheduler.get_job("engagement") is None
    assert Engagement(disabled.settings, disabled.store, disabled.connectors).run_once() is not None


def test_the_daemon_job_reads_what_is_due(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = {"likes": 8}
    publish(app, feed_server, "p1")
    with app.store.engine.begin() as conn:  # fast-forward: published two hours ago
        conn.execute(sa.update(publish_log).values(at=utcnow() - timedelta(hours=2)))
    Daemon(app, app.settings.path).read_engagement()
    assert ("alpha", "1h", {"likes": 8}) in rows(app)


def test_connectors_without_metrics_and_dry_runs_are_left_alone(make_app, feed_server):
    app = make_app('[targets.dry]\ntype = "fake-metrics"\nplatform = "dry"\ndry_run = true\n')
    t0 = publish(app, feed_server, "p1")
    result = Engagement(app.settings, app.store, app.connectors).run_once(t0 + timedelta(hours=1))
    assert result.skipped["plain"] == "reads no counters"
    assert "dry" not in METRICS or METRICS["dry"].asked == []
    assert {t for t, _, _ in rows(app)} == {"alpha", "beta"}


def test_bad_counters_from_a_connector_are_dropped(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = {"likes": 3, "shares": -1, "odd": "7", "flag": True}  # type: ignore[dict-item]
    t0 = publish(app, feed_server, "p1")
    Engagement(app.settings, app.store, app.connectors).run_once(t0 + timedelta(hours=1))
    assert rows(app, "alpha") == [("alpha", "1h", {"likes": 3})]


def test_engagement_settings_are_validated(write_config, feed_server):
    def load(extra: str) -> Any:
        text = CONFIG.replace("{url}", feed_server.url).replace("{extra}", extra)
        return config.load(write_config(text))

    custom = load('[engagement]\nsteps = ["6h", "2d"]\nstop_after = "10d"\ninterval = "5m"\n')
    assert [s.label for s in custom.engagement.steps] == ["6h", "2d"]
    assert custom.engagement.stop_after == 10 * 86400 and custom.engagement.interval == 300
    for extra, key in [
        ('[engagement]\nsteps = ["soon"]\n', "steps"),
        ('[engagement]\nsteps = ["1d", "24h"]\n', "steps"),
        ('[engagement]\nstop_after = "1d"\n', "stop_after"),
        ("[engagement]\nenabled = 1\n", "enabled"),
        ("[engagement]\nevery = 3\n", "every"),
    ]:
        with pytest.raises(ConfigError, match=rf"\[engagement\] {key}:"):
            load(extra)


def test_cli_engagement_once_shares_the_job_and_reads_what_is_due(make_app, feed_server):
    app = make_app()
    METRICS["alpha"].default = {"likes": 6}
    publish(app, feed_server, "p1")
    invoke = CliRunner().invoke
    args = ["--config", str(app.settings.path), "engagement", "--once"]
    assert "no counters were due" in invoke(cli, args).output
    with app.store.engine.begin() as conn:  # fast-forward: published two hours ago
        conn.execute(sa.update(publish_log).values(at=utcnow() - timedelta(hours=2)))
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "alpha: read 1 at 1h" in result.output and "plain: not read: reads no counters" in (
        result.output
    )
    assert ("alpha", "1h", {"likes": 6}) in rows(app)
    summary = json.loads(invoke(cli, [*args, "--json"]).output)  # nothing more is due
    assert summary["stored"] == {} and summary["skipped"]["plain"] == "reads no counters"
    assert invoke(cli, ["--config", str(app.settings.path), "engagement"]).exit_code == 2


# -- through real connectors, against local fakes of the platforms ---------------------------

REAL = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"

[[feeds]]
name = "blog"
url = "{url}"

[targets.masto]
type = "mastodon"
api_base = "{api}"
access_token = "masto-token-SECRET"

[targets.x]
type = "x"
api_base = "{api}"
api_key = "k"
api_secret = "s"
access_token = "t"
access_token_secret = "ts"
"""


class Platforms:
    """Mastodon and X on the test's HTTP server: posting works; X refuses metrics reads."""

    def __init__(self, server: HTTPServer) -> None:
        self.favourites = 0
        self.x_reads = 0
        server.expect_request("/api/v1/statuses", method="POST").respond_with_json(
            {"id": "110", "url": "https://masto.test/@blog/110"}
        )
        server.expect_request("/api/v1/statuses/110", method="GET").respond_with_handler(
            self._status
        )
        server.expect_request("/2/tweets", method="POST").respond_with_json(
            {"data": {"id": "1790", "text": "t", "edit_history_tweet_ids": ["1790"]}}, status=201
        )
        server.expect_request("/2/tweets/1790", method="GET").respond_with_handler(self._tweet)

    def _status(self, request: Request) -> Response:
        body = {"id": "110", "favourites_count": self.favourites, "reblogs_count": 1}
        return Response(Response.json_module.dumps(body), 200, content_type="application/json")

    def _tweet(self, request: Request) -> Response:
        self.x_reads += 1
        body = {"title": "Client Forbidden", "reason": "client-not-enrolled", "detail": "no"}
        return Response(Response.json_module.dumps(body), 403, content_type="application/json")


def test_real_connectors_store_mastodon_counters_and_x_refuses_once(
    write_config, feed_server, httpserver: HTTPServer, tmp_path: Path
):
    platforms = Platforms(httpserver)
    api = httpserver.url_for("").rstrip("/")
    text = REAL.replace("{url}", feed_server.url).replace("{api}", api)
    app = App.build(config.load(write_config(text)))
    try:
        app.run_once()
        feed_server.add("launch", "We launched")
        app.run_once()
        published = {i.target: i for i in app.store.published_since(utcnow() - timedelta(1))}
        assert {t: i.remote_id for t, i in published.items()} == {"masto": "110", "x": "1790"}
        t0 = max(i.published_at for i in published.values())
        job = Engagement(app.settings, app.store, app.connectors)
        platforms.favourites = 3
        first = job.run_once(t0 + timedelta(hours=1))
        platforms.favourites = 11
        job.run_once(t0 + timedelta(days=1))
        assert rows(app, "masto") == [
            ("masto", "1h", {"likes": 3, "shares": 1}),
            ("masto", "1d", {"likes": 11, "shares": 1}),
        ]
        assert "HTTP 403" in first.refused["x"] and platforms.x_reads == 1
        assert app.store.metrics_errors() == {"x": first.refused["x"]}
    finally:
        app.close()
