"""The playbook's gates: the trial period, global approval, and the approval notification."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from syndicator import config
from syndicator.app import App
from syndicator.cli import cli
from syndicator.models import State, utcnow
from syndicator.queries import list_deliveries
from tests import fakes

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"
EXTRA

[[feeds]]
name = "blog"
url = "FEED"

[targets.alpha]
type = "fake"
platform = "alpha"
"""


@pytest.fixture
def build(write_config, feed_server):
    apps: list[App] = []

    def make(extra: str):
        path = write_config(CONFIG.replace("FEED", feed_server.url).replace("EXTRA", extra))
        app = App.build(config.load(path))
        apps.append(app)
        return app, path

    yield make
    for app in apps:
        app.close()


def test_trial_period_simulates_then_goes_live_and_never_posts_the_simulated(build, feed_server):
    tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    app, path = build(f'trial_until = "{tomorrow}"')
    app.run_once()
    feed_server.add("during-trial")
    app.run_once()
    (d,) = list_deliveries(app.store)
    assert d.state == State.DRY_RUN and d.dry_run
    assert fakes.PLATFORMS["alpha"].posts == []
    status = json.loads(CliRunner().invoke(cli, ["--config", str(path), "status", "--json"]).output)
    assert status["trial"]["active"] is True
    assert "TRIAL until" in CliRunner().invoke(cli, ["--config", str(path), "status"]).output

    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")
    path.write_text(
        path.read_text().replace(f'trial_until = "{tomorrow}"', f'trial_until = "{yesterday}"')
    )
    app = App.build(config.load(path))
    feed_server.add("after-trial")
    app.run_once()
    assert [t.splitlines()[0] for t in fakes.PLATFORMS["alpha"].texts()] == ["Post after-trial"]
    states = {d.post_guid: d.state for d in list_deliveries(app.store)}
    assert states == {"during-trial": State.DRY_RUN, "after-trial": State.PUBLISHED}
    app.close()


def test_global_approval_gates_every_target_and_notifies(build, feed_server, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    app, _ = build(f'require_approval = true\napproval_webhook = "{httpserver.url_for("/hook")}"')
    app.run_once()
    feed_server.add("gated", "Wait for the boss")
    app.run_once()
    (d,) = list_deliveries(app.store)
    assert d.state == State.AWAITING_APPROVAL and fakes.PLATFORMS["alpha"].posts == []
    (body,) = [r.get_json() for r, _ in httpserver.log if r.path == "/hook"]
    assert "await approval" in body["text"] and "Wait for the boss" in body["text"]
    assert body["pending"][0]["delivery_id"] == d.id
    assert "Wait for the boss" in body["pending"][0]["text"]
    assert app.store.approve(d.id, utcnow())
    app.run_once()
    assert len(fakes.PLATFORMS["alpha"].posts) == 1


def test_edit_after_approval_asks_again(build, feed_server):
    app, _ = build("require_approval = true")
    app.run_once()
    entry = feed_server.add("p", "First words")
    app.run_once()
    (d,) = list_deliveries(app.store)
    assert app.store.approve(d.id, utcnow())
    entry.title = "Second thoughts"  # edited after approval, before the dispatch
    app.poll_due_feeds(force=True)
    (d,) = list_deliveries(app.store)
    assert d.state == State.AWAITING_APPROVAL and "Second thoughts" in d.draft.text
    app.run_once()
    assert fakes.PLATFORMS["alpha"].posts == []


def test_a_failing_approval_webhook_loses_nothing(build, feed_server, httpserver):
    httpserver.expect_request("/hook").respond_with_data("nope", status=500)
    app, _ = build(f'require_approval = true\napproval_webhook = "{httpserver.url_for("/hook")}"')
    app.run_once()
    feed_server.add("p")
    app.run_once()
    assert list_deliveries(app.store)[0].state == State.AWAITING_APPROVAL
