"""Secrets never reach logs (even DEBUG output of requests/urllib3/oauthlib), the database,
CLI output or exception messages: the whole pipeline is run and every output searched."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from syndicator.logs import RedactSecrets
from tests.fakeplatform import Platform, serve

SECRETS = {
    "masto": "masto-token-5f1a9c7e",
    "broken": "broken-token-77c3e1d2",
    "hook": "webhook-secret-0b9e4411",
}

CONFIG = f"""
[syndicator]
mode = "live"
state_dir = "{{state}}"
database = "{{db}}"
webhook_secret = "{SECRETS["hook"]}"

[[feeds]]
name = "blog"
url = "FEED?token=feed-query-secret-9d8e"

[targets.masto]
type = "mastodon"
api_base = "API/masto"
access_token = "{SECRETS["masto"]}"

[targets.broken]
type = "mastodon"
api_base = "http://127.0.0.1:9/unreachable"
access_token = "{SECRETS["broken"]}"
timeout = 1
"""


def test_whole_pipeline_at_debug_level_leaks_no_secret(write_config, feed_server, database_url):
    platform = Platform()
    api = serve(platform)
    text = CONFIG.replace("FEED", feed_server.url).replace(
        "API", f"http://127.0.0.1:{api.server_port}"
    )
    config = write_config(text)
    base = [sys.executable, "-m", "syndicator", "--config", str(config)]
    outputs = []

    def run(*args: str) -> None:
        done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)
        outputs.append(done.stdout + done.stderr)

    run("-vv", "run", "--once")
    feed_server.add("p1", "Secret-free post")
    run("-vv", "run", "--once")
    for args in (
        ["queue", "list"],
        ["queue", "list", "--json"],
        ["queue", "show", "1"],
        ["queue", "show", "2", "--json"],
        ["log"],
        ["log", "--json"],
        ["status"],
        ["status", "--json"],
        ["pending"],
        ["-vv", "check", "--online"],
        ["preview"],
    ):
        run(*args)
    api.shutdown()
    everything = "\n".join(outputs)
    assert "DEBUG" in everything and "urllib3" in everything  # DEBUG output really was on
    assert "Secret-free post" in everything
    assert platform.stats()["instances"]["masto"]["statuses"] == 1
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        for table in ("feeds", "posts", "deliveries", "publish_log", "targets", "daemons"):
            everything += "\n".join(map(str, conn.execute(sa.text(f"SELECT * FROM {table}"))))
    engine.dispose()
    for secret in [*SECRETS.values(), "feed-query-secret-9d8e"]:
        assert secret not in everything


def test_redaction_covers_arguments_and_tracebacks():
    import logging

    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "token %s in %r", ("abcd1234", 1), None
    )
    try:
        raise ValueError("failed with abcd1234")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactSecrets(["abcd1234"]).filter(record)
    assert record.getMessage() == "token *** in 1"
    assert "abcd1234" not in (record.exc_text or "") and "***" in record.exc_text
