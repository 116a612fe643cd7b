"""The daemon as a child process: sd_notify READY/STATUS/WATCHDOG, SIGHUP reload, SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakeplatform import Platform, serve

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"
dispatch_interval = 0.5

[[feeds]]
name = "blog"
url = "FEED_URL"
interval = 1

[targets.masto]
type = "mastodon"
api_base = "API_URL/masto"
access_token = "daemon-test-token"
template = "{title} {url}"
"""


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if needle in message:
                    return message
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.sock.recv(4096).decode())
        raise AssertionError(f"no {needle!r} in {self.messages}")


@pytest.fixture
def daemon(tmp_path, write_config, feed_server):
    platform = Platform()
    api = serve(platform)
    text = CONFIG.replace("FEED_URL", feed_server.url).replace(
        "API_URL", f"http://127.0.0.1:{api.server_port}"
    )
    config = write_config(text)
    notify = NotifySocket(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"}
    log = (tmp_path / "daemon.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicator", "--config", str(config), "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process, notify, platform, config, tmp_path / "daemon.log"
    if process.poll() is None:
        process.kill()
        process.wait()
    api.shutdown()


def test_notify_ready_status_watchdog_then_clean_stop(daemon, feed_server):
    process, notify, platform, _, log = daemon
    notify.wait_for("READY=1")
    assert "targets" in notify.wait_for("STATUS=")
    notify.wait_for("WATCHDOG=1")
    time.sleep(2)  # first poll: the back catalogue is recorded, not published
    feed_server.add("live-1", "A live post")
    deadline = time.monotonic() + 15
    while not platform.statuses["masto"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [s["links"] for s in platform.statuses["masto"]] == [["https://blog.example/live-1"]]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    notify.wait_for("STOPPING=1")
    assert "daemon-test-token" not in log.read_text()


def test_sighup_refuses_a_bad_config_and_keeps_running(daemon):
    process, notify, _, config, log = daemon
    notify.wait_for("READY=1")
    good = config.read_text()
    config.write_text(good.replace('mode = "live"', 'mode = "perhaps"'))
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload refused" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "reload refused, keeping the running config" in log.read_text()
    assert "mode: must be one of live, dry-run" in log.read_text()
    assert process.poll() is None
    config.write_text(good.replace("interval = 1", "interval = 2"))
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "config reloaded" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "config reloaded" in log.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_triggers_a_poll_at_once_and_metrics_show_it(tmp_path, write_config, feed_server):
    import requests

    platform = Platform()
    api = serve(platform)
    port = free_port()
    text = (
        CONFIG.replace("FEED_URL", feed_server.url)
        .replace("API_URL", f"http://127.0.0.1:{api.server_port}")
        .replace("interval = 1", "interval = 3600")
        .replace(
            "dispatch_interval = 0.5",
            f'dispatch_interval = 60\nlisten = "127.0.0.1:{port}"\n'
            'webhook_secret = "hook-secret-1234"',
        )
    )
    config = write_config(text)
    notify = NotifySocket(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicator", "--config", str(config), "run"],
        env={**os.environ, "NOTIFY_SOCKET": notify.path},
        stdout=(tmp_path / "daemon.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        notify.wait_for("READY=1")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while feed_server.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.1)  # the first poll records the back catalogue
        time.sleep(0.5)
        feed_server.add("pinged", "Instant pickup")
        wrong = requests.post(f"{base}/webhook", headers={"X-Syndicator-Secret": "nope"}, timeout=5)
        assert wrong.status_code == 403
        sent = time.monotonic()
        hook = requests.post(
            f"{base}/webhook", headers={"X-Syndicator-Secret": "hook-secret-1234"}, timeout=5
        )
        assert hook.status_code == 202
        while not platform.statuses["masto"] and time.monotonic() - sent < 5:
            time.sleep(0.05)
        assert platform.statuses["masto"], "the webhook did not lead to a post"
        assert time.monotonic() - sent < 2.0
        counted = 'syndicator_deliveries_total{outcome="published",target="masto"} 1.0'
        deadline = time.monotonic() + 5  # the platform has it a moment before it is recorded
        while counted not in (metrics := requests.get(f"{base}/metrics", timeout=5).text):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
        health = requests.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "hook-secret-1234" not in (tmp_path / "daemon.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
        api.shutdown()
