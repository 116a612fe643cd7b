"""Crash run: the daemon as a separate process, SIGKILLed at random moments, restarted.

    python -m tests.chaos.crash --posts 300 --kills 60

Posts appear in a local feed while the daemon is killed again and again (some kills land
while a publish request is in flight); fake Mastodon instances inject faults, some after
the status was created. At the end every (post, target) must be on its fake exactly once.
Instances named noidem-* ignore Idempotency-Key, so only lookup protects them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakeplatform import Platform, serve
from tests.fakes import Entry, rss

INSTANCES = ("idem-a", "idem-b", "noidem-c", "noidem-d")
FINAL = {"published", "cancelled", "skipped", "dry_run", "failed"}


@dataclass
class Report:
    """The figures a crash run is judged by."""

    posts: int
    targets: int
    kills: int
    kills_in_flight: int = 0
    expected: int = 0
    received: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unknown_left: list[int] = field(default_factory=list)
    misattributed: list[str] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    clean_exit: bool = False
    seconds: float = 0.0


class Feed:
    """A growing feed on 127.0.0.1 with a content ETag (conditional GET exercised)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.fetches = 0
        self.lock = threading.Lock()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                with feed.lock:
                    feed.fetches += 1
                    body = rss(feed.entries).encode()
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/feed.xml"

    def add(self, guid: str) -> None:
        from syndicator.models import utcnow

        with self.lock:
            self.entries.insert(0, Entry(guid=guid, title=f"Post {guid}", published=utcnow()))


def write_config(folder: Path, feed_url: str, api: str, database: str) -> Path:
    targets = "".join(
        f'\n[targets.{name}]\ntype = "mastodon"\napi_base = "{api}/{name}"\n'
        f'access_token = "chaos-token-{name}"\ntimeout = 1\nretry_delay = "1s"\n'
        f'max_attempts = 50\ntemplate = "{{title}} {{url}}"\n'
        for name in INSTANCES
    )
    path = folder / "config.toml"
    path.write_text(
        f'[syndicator]\nmode = "live"\nstate_dir = "{folder / "state"}"\n'
        f'database = "{database}"\ndispatch_interval = 0.3\nlease = 3\n\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_url}"\ninterval = 1\n{targets}'
    )
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SYNDICATOR_LOG_LEVEL": "INFO"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "syndicator", "--config", str(config), "run"],
            stdout=out,
            stderr=out,
            env=env,
        )


def deliveries(database: str) -> list[dict[str, Any]]:
    from syndicator import queries
    from syndicator.output import delivery_json
    from syndicator.store import Store

    store = Store(database)
    try:
        return [delivery_json(d) for d in queries.list_deliveries(store, limit=100_000)]
    finally:
        store.close()


def run(
    posts: int,
    kills: int,
    *,
    seed: int = 1,
    faults: float = 0.04,
    database: str | None = None,
    workdir: Path | None = None,
    settle: float = 180.0,
) -> Report:
    """The whole crash scenario; returns the report (no assertions here)."""
    rng = random.Random(seed)
    began = time.monotonic()
    folder = Path(workdir or tempfile.mkdtemp(prefix="syndicator-chaos-"))
    database = database or f"sqlite:///{folder / 'chaos.db'}"
    each = faults / 5
    platform = Platform(
        delay=0.02,
        hang=2.0,
        seed=seed,
        faults={name: each for name in ("503", "429", "500_after", "hang_after", "reset_after")},
    )
    api = serve(platform)
    feed = Feed()
    for i in range(3):
        feed.add(f"before-{i}")  # the back catalogue: never published
    config = write_config(folder, feed.url, f"http://127.0.0.1:{api.server_port}", database)
    log = folder / "daemon.log"
    report = Report(posts=posts, targets=len(INSTANCES), kills=kills)
    added = 0
    daemon = start(config, log)
    time.sleep(2.5)  # first poll records the back catalogue
    for kill in range(kills):
        batch = (posts - added) // (kills - kill)
        for _ in range(batch):
            feed.add(f"post-{added}")
            added += 1
        daemon = _kill_and_restart(daemon, rng, platform, report, config, log)
    while added < posts:
        feed.add(f"post-{added}")
        added += 1
    report.expected = posts * len(INSTANCES)
    _settle(database, report.expected, settle)
    daemon.send_signal(signal.SIGTERM)
    report.clean_exit = daemon.wait(timeout=60) == 0
    _compare(report, platform, database, posts)
    report.seconds = round(time.monotonic() - began, 1)
    api.shutdown()
    feed.server.shutdown()
    return report


def _kill_and_restart(
    daemon: subprocess.Popen[bytes],
    rng: random.Random,
    platform: Platform,
    report: Report,
    config: Path,
    log: Path,
) -> subprocess.Popen[bytes]:
    deadline = time.monotonic() + rng.uniform(0.8, 3.5)
    aim = rng.random() < 0.5  # half the kills wait for a publish request in flight
    in_flight = False
    while time.monotonic() < deadline:
        if aim and platform.inflight:
            in_flight = True
            break
        time.sleep(0.005)
    in_flight = in_flight or platform.inflight > 0
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    report.kills_in_flight += in_flight
    return start(config, log)


def _settle(database: str, expected: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rows = deliveries(database)
        if len(rows) >= expected and all(r["state"] in FINAL for r in rows):
            return
        time.sleep(1.0)


def _compare(report: Report, platform: Platform, database: str, posts: int) -> None:
    stats = platform.stats()
    report.faults = stats["faults"]
    for name in INSTANCES:
        by_link = stats["instances"].get(name, {}).get("by_link", {})
        for i in range(posts):
            link = f"https://blog.example/post-{i}"
            count = by_link.get(link, 0)
            report.received += min(count, 1)
            if count == 0:
                report.lost.append(f"{name} post-{i}")
            elif count > 1:
                report.duplicated.append(f"{name} post-{i} x{count}")
        leaked = [link for link in by_link if "before-" in link]
        report.duplicated += [f"{name} back catalogue {link}" for link in leaked]
    rows = deliveries(database)
    for row in rows:  # every recorded receipt must point at that very post on that platform
        if row["state"] != "published":
            continue
        by_id = stats["instances"].get(row["target"], {}).get("by_id", {})
        if row["post_url"] not in by_id.get(row["remote_id"], []):
            report.misattributed.append(f"{row['target']} {row['post_guid']} → {row['remote_id']}")
    report.unknown_left = [r["id"] for r in rows if r["state"] == "unknown"]
    report.failed = [r["id"] for r in rows if r["state"] == "failed"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=float, default=0.04, help="fault probability per publish")
    parser.add_argument("--database", help="SQLAlchemy URL (default: SQLite in the work folder)")
    args = parser.parse_args()
    report = run(args.posts, args.kills, seed=args.seed, faults=args.faults, database=args.database)
    print(json.dumps(asdict(report), indent=2))
    ok = not (report.lost or report.duplicated or report.misattributed) and report.clean_exit
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
