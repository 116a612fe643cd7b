"""Pickup latency: a new feed entry appears; how long until the fake platform has the post?

    python -m bench.pickup [--quick] [--samples N]

Polling (feed interval 1 s) is measured side by side with the baseline, a bare loop polling
the same feed at the same interval (bench/_bare.py): both wait for the next poll, so a
latency of about half the interval is the floor. Then the instant pickup: the entry is added
and `POST /webhook` (header X-Syndicator-Secret) names its feed, with polling at 300 s so only
the ping can explain a fast pickup. If the daemon's listener does not answer, the ping rows say
"not available". Targets with the ping: p50 < 1 s, p99 < 2 s.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import _common as c

INTERVAL = 1.0
PING_FEEDS = 10  # the listener debounces each feed for 5 s: pings rotate over 10 feeds
SECRET = "bench-webhook-secret"


def latencies(added: dict[str, float], received: dict[str, float]) -> list[float]:
    return [received[g] - t for g, t in added.items() if g in received]


def polling(folder: Path, samples: int, spacing: tuple[float, float]) -> dict[str, Any]:
    """Daemon and bare loop watch one feed; entries appear at random phases of the interval."""
    feeds, api = c.FeedServer(keep=10), c.FakeApi()
    url = feeds.create("blog", back_catalogue=3)
    config = c.write_config(
        folder, feeds=[("blog", url, INTERVAL)], targets=[c.Target("daemon", api.base)]
    )
    daemon = c.Daemon(config)
    baseline = c.bare_process("poll", url, api.base, "bare", "--interval", str(INTERVAL))
    try:
        daemon.wait_ready()
        database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
        c.wait_until(lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized"), 20)
        assert baseline.stdout is not None and baseline.stdout.readline().strip() == "ready"
        added = {}
        for i in range(samples):
            time.sleep(random.uniform(*spacing))
            guid = f"poll-{i}"
            added[guid] = feeds.add("blog", guid)
        c.wait_until(lambda: api.count(["daemon", "bare"]) >= 2 * samples, 30)
        out: dict[str, Any] = {}
        for who, agent in (("daemon", "syndicator/"), ("bare", "python-requests/")):
            received = api.received_at(who)
            out[who] = latencies(added, received)
            # split each latency at the first poll that could see the entry
            asked = {g: feeds.first_request("blog", t, agent) for g, t in added.items()}
            polls = {g: at for g, at in asked.items() if at is not None and g in received}
            out[f"{who}_wait"] = [at - added[g] for g, at in polls.items()]
            out[f"{who}_process"] = [received[g] - at for g, at in polls.items()]
        return out
    finally:
        baseline.terminate()
        baseline.wait()
        daemon.stop()
        feeds.stop()
        api.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listener_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (503 when unhealthy is still a listener)
    except OSError:
        return False


def webhook(port: int, feed: str) -> float:
    """POST /webhook naming one feed; returns the seconds the call took."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=json.dumps({"feed": feed}).encode(),
        headers={"X-Syndicator-Secret": SECRET, "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return time.perf_counter() - started


def ping(folder: Path, samples: int, spacing: float) -> dict[str, Any]:
    """Entries added then announced by webhook; polling is slow (300 s) so it cannot help."""
    feeds, api = c.FeedServer(keep=10), c.FakeApi()
    names = [f"ping{i}" for i in range(PING_FEEDS)]
    port = free_port()
    config = c.write_config(
        folder,
        feeds=[(name, feeds.create(name, back_catalogue=1), 300) for name in names],
        targets=[c.Target("daemon", api.base)],
        core=f'listen = "127.0.0.1:{port}"\nwebhook_secret = "{SECRET}"',
    )
    daemon = c.Daemon(config)
    try:
        daemon.wait_ready()
        database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
        c.wait_until(
            lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized") == len(names),
            20,
        )
        try:
            c.wait_until(lambda: listener_answers(port), 2, step=0.2)
        except TimeoutError:
            return {"available": False, "why": f"no listener on 127.0.0.1:{port} (listen = set)"}
        added, calls = {}, []
        for i in range(samples):
            guid, feed = f"ping-{i}", names[i % len(names)]
            added[guid] = feeds.add(feed, guid)
            calls.append(webhook(port, feed))
            time.sleep(spacing)
        with contextlib.suppress(TimeoutError):  # the missing ones are reported as lost
            c.wait_until(lambda: api.count(["daemon"]) >= samples, 30)
        found = latencies(added, api.received_at("daemon"))
        return {
            "available": True,
            "daemon": found,
            "webhook_call": calls,
            "lost": samples - len(found),
        }
    finally:
        daemon.stop()
        feeds.stop()
        api.stop()


def main() -> None:
    args = c.arguments(__doc__, samples=(25, "entries per case"))
    samples = 3 if args.quick else args.samples
    spacing = (0.2, 0.4) if args.quick else (1.0, 2.0)
    with c.workdir("pickup-poll") as folder:
        polled = polling(folder, samples, spacing)
    with c.workdir("pickup-ping") as folder:
        pinged = ping(folder, samples, 0.2 if args.quick else 0.6)
    bare_median = c.summary(polled["bare"])["median"]
    rows = [
        c.stat_row(
            "polling 1 s: syndicator",
            polled["daemon"],
            "s",
            per_interval=c.summary(polled["daemon"])["median"] / INTERVAL,
            vs_bare=c.ratio(c.summary(polled["daemon"])["median"], bare_median),
        ),
        c.stat_row(
            "polling 1 s: bare loop",
            polled["bare"],
            "s",
            per_interval=bare_median / INTERVAL,
            vs_bare=1.0,
        ),
    ]
    process = c.summary(polled["bare_process"])["median"]
    for who in ("daemon", "bare"):
        name = "syndicator" if who == "daemon" else "bare loop"
        rows.append(c.stat_row(f"  {name}: wait for the poll", polled[f"{who}_wait"], "s"))
        rows.append(
            c.stat_row(
                f"  {name}: poll → post",
                polled[f"{who}_process"],
                "s",
                vs_bare=c.ratio(c.summary(polled[f"{who}_process"])["median"], process),
            )
        )
    targets: dict[str, Any] = {}
    if pinged["available"]:
        s = c.summary(pinged["daemon"])
        rows.append(
            c.stat_row(
                "webhook ping: syndicator",
                pinged["daemon"],
                "s",
                per_interval=s["median"] / INTERVAL,
                vs_bare=c.ratio(s["median"], bare_median),
            )
        )
        rows.append(c.stat_row("  webhook call itself", pinged["webhook_call"], "s"))
        targets = {
            "ping_p50_under_1s": s["median"] is not None and s["median"] < 1.0,
            "ping_p99_under_2s": s["p99"] is not None and s["p99"] < 2.0 and not pinged["lost"],
        }
    else:
        rows.append({"case": "webhook ping: syndicator", "note": "not available: " + pinged["why"]})
    c.table(
        f"Pickup latency (seconds from entry to post on the fake platform; {samples} entries each)",
        rows,
    )
    if targets:
        print(
            "\ntargets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in targets.items())
        )
    c.save(
        args,
        "pickup",
        {
            "interval": INTERVAL,
            "samples": samples,
            "rows": rows,
            "targets": targets,
            "raw": {"polling": polled, "ping": pinged},
        },
    )


if __name__ == "__main__":
    main()
