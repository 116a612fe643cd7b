"""Feed polling at scale: one round over 1,000 feeds answering 304, and 200 with new content.

    python -m bench.polling [--quick] [--feeds 1000] [--busy 200] [--repeats 3]

What the daemon really does: every feed is its own APScheduler interval job, all due at start,
run by APScheduler's default pool of 10 threads. The database is seeded as if every feed had
been polled before (its ETag stored), leases cleared, and the daemon started; a round is
timed from the first feed request to the moment the store has recorded every poll, and the
daemon's CPU over the same span (/proc). Busy feeds list their newest 10 entries, one of
them new (one target, so each busy feed also makes one delivery). Also timed: the cron path
`App.poll_due_feeds()` (sequential, what `run --once` uses), in a child process. Baselines
(bench/_bare.py fetch): the same conditional GETs with requests, sequentially and with 10
threads, no store. A second 304 case delays every answer by `--latency` (50 ms: a blog across
the internet), where the number of polling threads, not CPU, sets the pace (daemon and
10-thread baseline only). Target: 1,000 feeds in under 10 s wall.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import _common as c

INTERVAL = 3600  # one round per start: no second poll during the measurement


def reset(database: str) -> datetime:
    """Clear feed leases and mark every poll as an hour old; returns the marker time."""
    import sqlalchemy as sa

    mark = datetime.now(UTC).replace(tzinfo=None)
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE feeds SET lease_owner = NULL, lease_until = NULL, last_poll_at = :t"),
            {"t": mark - timedelta(hours=1)},
        )
    engine.dispose()
    return mark


def daemon_round(
    config: Path, database: str, feeds: c.FeedServer, count: int, api: c.FakeApi | None
) -> dict[str, float]:
    """Start the daemon, time its first round over `count` feeds, stop it."""
    mark = reset(database)
    first: dict[str, float] = {}
    daemon_box: list[c.Daemon] = []
    lock = threading.Lock()

    def on_request() -> None:
        with lock:
            if not first and daemon_box:
                first["at"], first["cpu"] = time.monotonic(), daemon_box[0].cpu()

    feeds.on_request = on_request
    posted = api.count() if api else 0
    daemon = c.Daemon(config)
    daemon_box.append(daemon)
    try:
        ready = daemon.wait_ready(60)
        sql = "SELECT count(*) FROM feeds WHERE last_poll_at >= :mark"
        c.wait_until(lambda: c.query(database, sql, mark=mark) >= count, 300, step=0.05)
        ended, cpu = time.monotonic(), daemon.cpu()
        result = {"wall": ended - first["at"], "cpu": cpu - first["cpu"], "ready": ready}
        if api is not None:
            c.wait_until(lambda: api.count() >= posted + count, 120)
            result["posts_done"] = time.monotonic() - first["at"]
        return result
    finally:
        feeds.on_request = None
        daemon.stop()


def child(config: str) -> None:
    """In a child process: time `App.poll_due_feeds()` (the sequential cron path)."""
    from syndicator import config as configmod
    from syndicator.app import App

    app = App.build(configmod.load(config))
    started, cpu = time.perf_counter(), time.process_time()
    results = app.poll_due_feeds()
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    app.close()
    print(json.dumps({"wall": wall, "cpu": used, "polled": len(results)}))


def cron_round(config: Path, database: str) -> dict[str, float]:
    reset(database)
    code = f"from bench.polling import child; child({str(config)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=c.REPO, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def setup(folder: Path, feeds: c.FeedServer, names: list[str], api: c.FakeApi) -> tuple[Path, str]:
    database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
    config = c.write_config(
        folder,
        feeds=[(name, feeds.url(name), INTERVAL) for name in names],
        targets=[c.Target("t0", api.base)],
    )
    return config, database


def quiet_case(folder: Path, count: int, repeats: int, latency: float = 0.0) -> dict[str, Any]:
    """`count` feeds answering 304: daemon rounds, cron rounds, baselines. With `latency`
    (each answer delayed) only the daemon and the 10-thread baseline: sequential is too long."""
    feeds, api = c.FeedServer(keep=10, latency=latency), c.FakeApi()
    names = [f"q{i}" for i in range(count)]
    for name in names:
        feeds.create(name, back_catalogue=2)
    config, database = setup(folder, feeds, names, api)
    (folder / "state").mkdir(exist_ok=True)
    c.seed_feeds(database, {n: (feeds.url(n), feeds.etag(n)) for n in names})
    out: dict[str, Any] = {"daemon": [], "cron": [], "bare_sequential": [], "bare_10_threads": []}
    listing = folder / "feeds.txt"
    listing.write_text("".join(f"{feeds.url(n)} {feeds.etag(n)}\n" for n in names))
    try:
        for _ in range(repeats):
            out["daemon"].append(daemon_round(config, database, feeds, count, None))
            if not latency:
                out["cron"].append(cron_round(config, database))
                out["bare_sequential"].append(
                    c.bare("fetch", "--threads", "1", "--list", str(listing))
                )
            out["bare_10_threads"].append(
                c.bare("fetch", "--threads", "10", "--list", str(listing))
            )
        out["not_modified"] = feeds.requests[304]
        out["full"] = feeds.requests[200]
    finally:
        feeds.stop()
        api.stop()
    return out


def busy_case(folder: Path, count: int, repeats: int) -> dict[str, Any]:
    """`count` feeds of 10 entries, one of them new each round; one target."""
    from syndicator import config as configmod
    from syndicator.app import App

    feeds, api = c.FeedServer(keep=10), c.FakeApi()
    names = [f"b{i}" for i in range(count)]
    for name in names:
        feeds.create(name, back_catalogue=10)
    config, database = setup(folder, feeds, names, api)
    app = App.build(configmod.load(config))  # the first poll records the back catalogue
    app.poll_due_feeds(force=True)
    app.close()
    listing = folder / "feeds.txt"
    listing.write_text("".join(f"{feeds.url(n)} \n" for n in names))
    out: dict[str, Any] = {"daemon": [], "bare_sequential": [], "bare_10_threads": []}
    try:
        for run in range(repeats):
            for name in names:
                feeds.add(name, f"{name}-new-{run}")
            out["daemon"].append(daemon_round(config, database, feeds, count, api))
            out["bare_sequential"].append(c.bare("fetch", "--threads", "1", "--list", str(listing)))
            out["bare_10_threads"].append(
                c.bare("fetch", "--threads", "10", "--list", str(listing))
            )
        out["posts"] = api.count()
    finally:
        feeds.stop()
        api.stop()
    return out


def rows_for(label: str, result: dict[str, Any], count: int) -> list[dict[str, Any]]:
    rows = []
    bare = c.summary([r["seconds"] for r in result["bare_10_threads"]])["median"]
    for key, name in (
        ("daemon", "syndicator daemon (10 job threads)"),
        ("cron", "syndicator App.poll_due_feeds (sequential)"),
        ("bare_sequential", "bare requests, sequential"),
        ("bare_10_threads", "bare requests, 10 threads"),
    ):
        if not result.get(key):
            continue
        wall = [r.get("wall", r.get("seconds")) for r in result[key]]
        cpu = [r["cpu"] for r in result[key]]
        median = c.summary(wall)["median"]
        rows.append(
            c.stat_row(
                f"{label}: {name}",
                wall,
                "s wall",
                cpu_s=c.summary(cpu)["median"],
                ms_cpu_per_feed=1000 * c.summary(cpu)["median"] / count,
                feeds_per_s=count / median,
                vs_bare_10_threads=c.ratio(median, bare),
            )
        )
    if "daemon" in result and "posts_done" in result["daemon"][0]:
        done = [r["posts_done"] for r in result["daemon"]]
        rows.append(c.stat_row(f"{label}: daemon, until all {count} posts arrived", done, "s"))
    return rows


def main() -> None:
    args = c.arguments(
        __doc__,
        feeds=(1000, "feeds answering 304"),
        busy=(200, "feeds with new content"),
        repeats=(3, "rounds per case"),
        latency=(0.05, "seconds each answer takes in the slow-server case"),
        latency_rounds=(2, "rounds of the slow-server case"),
    )
    quiet, busy, repeats = (30, 10, 1) if args.quick else (args.feeds, args.busy, args.repeats)
    with c.workdir("polling-quiet") as folder:
        quiet_result = quiet_case(folder, quiet, repeats)
    with c.workdir("polling-latency") as folder:
        slow_rounds = 1 if args.quick else args.latency_rounds
        slow_result = quiet_case(folder, quiet, slow_rounds, latency=args.latency)
    with c.workdir("polling-busy") as folder:
        busy_result = busy_case(folder, busy, repeats)
    rows = (
        rows_for(f"{quiet} × 304", quiet_result, quiet)
        + rows_for(f"{quiet} × 304 in {args.latency * 1000:g} ms", slow_result, quiet)
        + rows_for(f"{busy} × new", busy_result, busy)
    )
    c.table(f"One polling round ({repeats} rounds each; CPU = the polling process's)", rows)
    daemon_wall = c.summary([r["wall"] for r in quiet_result["daemon"]])["median"]
    target = {f"{quiet}_feeds_under_10s": daemon_wall is not None and daemon_wall < 10.0}
    print("\ntargets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in target.items()))
    c.save(
        args,
        "polling",
        {
            "quiet": quiet,
            "busy": busy,
            "repeats": repeats,
            "rows": rows,
            "targets": target,
            "latency": args.latency,
            "raw": {"quiet": quiet_result, "latency": slow_result, "busy": busy_result},
        },
    )


if __name__ == "__main__":
    main()
