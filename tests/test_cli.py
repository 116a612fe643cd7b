"""The CLI through click's CliRunner: exit codes, tables, JSON for scripts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from syndicator.cli import cli
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
token = "s3cr3t-alpha-token"
{extra}
"""


@pytest.fixture
def run_cli(write_config, feed_server):
    def make(extra: str = ""):
        path = write_config(CONFIG.replace("{url}", feed_server.url).replace("{extra}", extra))

        def invoke(*args: str, code: int = 0):
            result = CliRunner().invoke(cli, ["--config", str(path), *args])
            assert result.exit_code == code, result.output + repr(result.exception)
            assert "s3cr3t-alpha-token" not in result.output
            return result.output

        return invoke

    return make


def test_check_ok_and_bad(run_cli, tmp_path):
    invoke = run_cli()
    assert "OK — 1 feed(s), 1 enabled target(s), mode live" in invoke("check")
    assert "alpha: OK — @fake" in invoke("check", "--online")
    bad = tmp_path / "bad.toml"
    bad.write_text('[syndicator]\nmode = "sometimes"\n')
    result = CliRunner().invoke(cli, ["--config", str(bad), "check"])
    assert result.exit_code == 1
    assert f"{bad}: [syndicator] mode: must be one of live, dry-run" in result.output


def test_run_once_queue_and_log(run_cli, feed_server):
    invoke = run_cli()
    invoke("run", "--once")
    feed_server.add("p1", "Hello world")
    out = invoke("run", "--once")
    assert "feed blog: 1 new, 0 edited, 1 deliveries" in out and "[alpha] published" in out
    rows = json.loads(invoke("queue", "list", "--json"))
    assert len(rows) == 1
    row = rows[0]
    for key in (
        "id",
        "post_guid",
        "post_url",
        "post_title",
        "target",
        "state",
        "attempts",
        "remote_url",
        "last_error",
        "created_at",
        "updated_at",
    ):
        assert key in row
    assert (row["post_guid"], row["state"], row["target"]) == ("p1", "published", "alpha")
    assert "Hello world" in invoke("queue", "list")
    shown = invoke("queue", "show", str(row["id"]))
    assert "published" in shown and "Hello world" in shown
    log = json.loads(invoke("log", "--post", "p1", "--json"))
    assert [e["outcome"] for e in log] == ["published"]
    assert json.loads(invoke("log", "--post", "nope", "--json")) == []
    invoke("queue", "show", "999", code=1)


def test_retry_and_cancel(run_cli, feed_server):
    from syndicator.errors import PermanentError

    invoke = run_cli()
    invoke("run", "--once")
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [PermanentError("nope")]
    feed_server.add("p1")
    invoke("run", "--once")
    (row,) = json.loads(invoke("queue", "list", "--state", "failed", "--json"))
    assert row["last_error"] == "nope"
    assert "re-queued" in invoke("queue", "retry", str(row["id"]))
    invoke("run", "--once")
    assert json.loads(invoke("queue", "list", "--json"))[0]["state"] == "published"
    out = invoke("queue", "cancel", str(row["id"]), code=1)
    assert "cannot be cancelled from state published" in out


def test_unknown_is_flagged_prominently(run_cli, feed_server, monkeypatch):
    from syndicator.errors import OutcomeUnknown

    monkeypatch.setattr(fakes.FakeConnector, "can_lookup", False)
    invoke = run_cli()
    invoke("run", "--once")
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [OutcomeUnknown("timeout")]
    feed_server.add("p1")
    invoke("run", "--once")
    assert "unknown outcome" in invoke("queue", "list")
    assert "unknown outcome" in invoke("status")
    (row,) = json.loads(invoke("queue", "list", "--state", "unknown", "--json"))
    out = invoke("queue", "landed", str(row["id"]), "--url", "https://fake.example/1")
    assert "published at https://fake.example/1" in out
    (row,) = json.loads(invoke("queue", "list", "--json"))
    assert (row["state"], row["remote_url"]) == ("published", "https://fake.example/1")
    assert "only unknown outcomes" in invoke(
        "queue", "landed", str(row["id"]), "--url", "x", code=1
    )


def test_approval_flow(run_cli, feed_server):
    invoke = run_cli("require_approval = true")
    invoke("run", "--once")
    entry = feed_server.add("p1", "Needs a nod")
    invoke("run", "--once")
    assert fakes.PLATFORMS["alpha"].posts == []
    out = invoke("pending")
    assert "Needs a nod" in out and "https://blog.example/p1" in out
    entry.title = "Needs a nod, edited"  # edited before approval: the pending text follows
    invoke("run", "--once")
    assert "Needs a nod, edited" in invoke("pending")
    assert "approved" in invoke("approve", "--post", "p1")
    invoke("run", "--once")
    assert fakes.PLATFORMS["alpha"].texts()[0].startswith("Needs a nod, edited")
    assert invoke("approve", "--all") == "nothing awaits approval\n"


def test_reject(run_cli, feed_server):
    invoke = run_cli("require_approval = true")
    invoke("run", "--once")
    feed_server.add("p1")
    invoke("run", "--once")
    assert "rejected" in invoke("reject", "--all")
    invoke("run", "--once")
    assert fakes.PLATFORMS["alpha"].posts == []
    assert json.loads(invoke("queue", "list", "--json"))[0]["state"] == "cancelled"


def test_status_and_resume(run_cli, feed_server):
    from syndicator.errors import AuthExpired

    invoke = run_cli()
    invoke("run", "--once")
    fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform()).script = [AuthExpired("HTTP 401")]
    feed_server.add("p1")
    invoke("run", "--once")
    status = json.loads(invoke("status", "--json"))
    (target,) = status["targets"]
    assert target["status"] == "paused" and "authentication failed" in target["pause_reason"]
    assert "paused until" in invoke("status")
    invoke("resume", "alpha")
    invoke("run", "--once")
    assert json.loads(invoke("status", "--json"))["targets"][0]["status"] == "ok"
    assert len(fakes.PLATFORMS["alpha"].posts) == 1
    invoke("resume", "nope", code=1)


def test_preview_shows_the_newest_entry_per_target_and_stores_nothing(run_cli, feed_server):
    from datetime import timedelta

    invoke = run_cli()
    feed_server.add("old", "An older post", age=timedelta(days=2))
    feed_server.add("new", "The newest post", age=timedelta(hours=1))
    feed_server.entries.reverse()  # the feed lists oldest first: preview must still pick "new"
    out = invoke("preview")
    assert "== feed blog: The newest post" in out and "-- alpha" in out
    assert "An older post" not in out
    assert json.loads(invoke("queue", "list", "--json")) == []


def test_retrying_an_unknown_looks_it_up_before_any_resend(run_cli, feed_server, monkeypatch):
    import time

    from syndicator.errors import OutcomeUnknown, PermanentError

    invoke = run_cli('retry_delay = "1s"')
    invoke("run", "--once")
    platform = fakes.PLATFORMS.setdefault("alpha", fakes.FakePlatform())
    platform.script, platform.land_before_failing = [OutcomeUnknown("HTTP 500")], True
    feed_server.add("p1")
    real_lookup = fakes.FakeConnector.lookup

    def refused(self, draft, *, key):
        raise PermanentError("HTTP 403: timeline reads are not in your plan")

    monkeypatch.setattr(fakes.FakeConnector, "lookup", refused)
    invoke("run", "--once")  # sent, no answer: unknown
    time.sleep(1.5)
    invoke("run", "--once")  # the lookup is refused: held for a human
    (row,) = json.loads(invoke("queue", "list", "--json"))
    assert row["state"] == "unknown" and row["next_attempt_at"] is None
    monkeypatch.setattr(fakes.FakeConnector, "lookup", real_lookup)  # the plan was upgraded
    assert "looked up before any resend" in invoke("queue", "retry", str(row["id"]))
    invoke("run", "--once")
    (row,) = json.loads(invoke("queue", "list", "--json"))
    assert row["state"] == "published"
    assert len(platform.posts) == 1  # it had landed: found by lookup, never sent again
