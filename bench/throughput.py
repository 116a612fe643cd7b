"""Throughput and overhead: deliveries per second and daemon CPU per delivery; one slow target.

    python -m bench.throughput [--quick] [--repeats 3] [--stream-seconds 10]

1. A backlog (entries appear at once) for 5 targets on fake platforms answering in 0 ms and in
   100 ms: deliveries per second from the first post to the last, and the daemon's CPU
   (/proc/<pid>/stat utime+stime, all threads, from the moment the entries appear until the
   last post: polling, parsing, fan-out, dispatch, logging) per delivery. Target: ≤ 5 ms.
   The baseline (bench/_bare.py publish) posts the same backlog with no store.
2. A stream (10 entries/s, feed showing its newest 20) for 5 targets, three ways: all fast;
   one target answering in 100 ms; one target hanging past its 1 s timeout (every post an
   unknown outcome, resolved by lookup). The four fast targets' throughput and latency must
   not drop when one target is slow.
3. A late entry: a second feed gets an entry while the slow target (100 ms) still drains a
   20-entry backlog from the first feed; how long until the fast target has it? (The poll's
   request for a dispatch is dropped while a tick runs; the default dispatch_interval, 10 s,
   then decides.)
"""

from __future__ import annotations

import time
from typing import Any

from bench import _common as c

TARGETS = [f"t{i}" for i in range(5)]
SLOW = "t4"
RATE = 10.0  # entries per second in the stream


def backlog(delay: float, entries: int, repeats: int) -> dict[str, list[float]]:
    """`repeats` backlogs through one daemon; rate over first→last post, CPU per delivery."""
    feeds, api = c.FeedServer(keep=max(entries, 10)), c.FakeApi(delay=delay)
    url = feeds.create("blog", back_catalogue=3)
    out: dict[str, list[float]] = {"per_second": [], "cpu_ms": []}
    with c.workdir("throughput") as folder:
        config = c.write_config(
            folder, feeds=[("blog", url, 1)], targets=[c.Target(n, api.base) for n in TARGETS]
        )
        daemon = c.Daemon(config)
        try:
            daemon.wait_ready()
            database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
            c.wait_until(
                lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized"), 20
            )
            expected = 0
            for run in range(repeats):
                time.sleep(0.5)
                cpu = daemon.cpu()
                feeds.add("blog", *[f"r{run}-{i}" for i in range(entries)])
                expected += entries * len(TARGETS)
                c.wait_until(lambda: api.count(TARGETS) >= expected, 300)  # noqa: B023
                used = daemon.cpu() - cpu
                times = [
                    at
                    for n in TARGETS
                    for guid, at in api.received_at(n).items()
                    if guid.startswith(f"r{run}-")
                ]
                out["per_second"].append((len(times) - 1) / (max(times) - min(times)))
                out["cpu_ms"].append(1000 * used / len(times))
        finally:
            daemon.stop()
            feeds.stop()
            api.stop()
    return out


def baseline(delay: float, entries: int, repeats: int) -> dict[str, list[float]]:
    feeds, api = c.FeedServer(), c.FakeApi(delay=delay)
    url = feeds.create("backlog")
    feeds.add("backlog", *[f"bare-{i}" for i in range(entries)])
    out: dict[str, list[float]] = {"per_second": [], "cpu_ms": []}
    try:
        for run in range(repeats):
            report = c.bare("publish", url, api.base, *[f"bare{run}-{n}" for n in TARGETS])
            out["per_second"].append(report["posts"] / report["seconds"])
            out["cpu_ms"].append(1000 * report["cpu"] / report["posts"])
    finally:
        feeds.stop()
        api.stop()
    return out


def stream(slow: str | None, seconds: float, grace: float = 2.0) -> dict[str, Any]:
    """Entries at RATE per second for `seconds`; per target: rate during the stream, latency."""
    feeds, fast = c.FeedServer(keep=20), c.FakeApi()
    slow_api = {
        None: fast,
        "100ms": c.FakeApi(delay=0.1),
        "timeout": c.FakeApi(faults={"hang_after": 1.0}, hang=3.0),
    }[slow]
    url = feeds.create("blog", back_catalogue=3)
    targets = [c.Target(n, fast.base) for n in TARGETS[:-1]]
    targets.append(c.Target(SLOW, slow_api.base, timeout=1.0))
    apis = {n: fast for n in TARGETS} | {SLOW: slow_api}
    with c.workdir("stream") as folder:
        config = c.write_config(folder, feeds=[("blog", url, 1)], targets=targets)
        daemon = c.Daemon(config)
        try:
            daemon.wait_ready()
            database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
            c.wait_until(
                lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized"), 20
            )
            began = time.time()
            count = int(seconds * RATE)
            for i in range(count):
                time.sleep(max(0.0, began + i / RATE - time.time()))
                feeds.add("blog", f"s{i}")
            ended = time.time() + grace  # the last entries' poll and dispatch
            time.sleep(max(0.0, ended - time.time()))
            result: dict[str, Any] = {}
            for name in TARGETS:
                received = apis[name].received_at(name)
                in_time = [g for g, at in received.items() if g.startswith("s") and at <= ended]
                result[name] = {
                    "per_second": len(in_time) / (ended - began),
                    "latency": [received[g] - feeds.added[g] for g in in_time],
                    "received": len(in_time),
                    "sent": count,
                }
        finally:
            daemon.stop()
            feeds.stop()
            fast.stop()
            if slow_api is not fast:
                slow_api.stop()
    return result


def late_entry(samples: int, backlog_size: int) -> list[float]:
    """Fast-target latency of an entry on feed b while the slow target drains feed a's backlog."""
    feeds, fast, slow = c.FeedServer(keep=max(backlog_size, 10)), c.FakeApi(), c.FakeApi(delay=0.1)
    urls = {name: feeds.create(name, back_catalogue=3) for name in ("a", "b")}
    targets = [c.Target("fast", fast.base), c.Target("slow", slow.base)]
    latencies = []
    with c.workdir("late") as folder:
        config = c.write_config(folder, feeds=[(n, u, 1) for n, u in urls.items()], targets=targets)
        daemon = c.Daemon(config)
        try:
            daemon.wait_ready()
            database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
            c.wait_until(
                lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized") == 2, 20
            )
            for sample in range(samples):
                feeds.add("a", *[f"a{sample}-{i}" for i in range(backlog_size)])
                c.wait_until(lambda: fast.count() >= (sample + 1) * (backlog_size + 1) - 1, 60)  # noqa: B023
                added = feeds.add("b", f"late{sample}")
                c.wait_until(lambda: f"late{sample}" in fast.received_at("fast"), 60)  # noqa: B023
                latencies.append(fast.received_at("fast")[f"late{sample}"] - added)
                c.wait_until(lambda: slow.count() >= fast.count(), 60)
        finally:
            daemon.stop()
            feeds.stop()
            fast.stop()
            slow.stop()
    return latencies


def main() -> None:
    args = c.arguments(
        __doc__, repeats=(3, "backlogs per platform delay"), stream_seconds=(10.0, "stream length")
    )
    repeats = 1 if args.quick else args.repeats
    seconds = 1.0 if args.quick else args.stream_seconds
    sizes = {0.0: 4} if args.quick else {0.0: 100, 0.1: 30}
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    for delay, entries in sizes.items():
        ours, bare = backlog(delay, entries, repeats), baseline(delay, entries, repeats)
        raw[f"backlog_{delay * 1000:g}ms"] = {"syndicator": ours, "bare": bare}
        label = f"{delay * 1000:g} ms platform, {entries}×{len(TARGETS)}"
        ours_rate = c.summary(ours["per_second"])["median"]
        bare_rate = c.summary(bare["per_second"])["median"]
        rows.append(
            c.stat_row(
                f"{label}: syndicator",
                ours["per_second"],
                "deliv/s",
                vs_bare=c.ratio(ours_rate, bare_rate),
            )
        )
        rows.append(c.stat_row(f"{label}: bare", bare["per_second"], "deliv/s", vs_bare=1.0))
        rows.append(
            c.stat_row(
                f"{label}: syndicator CPU",
                ours["cpu_ms"],
                "ms/deliv",
                vs_bare=c.ratio(
                    c.summary(ours["cpu_ms"])["median"], c.summary(bare["cpu_ms"])["median"]
                ),
            )
        )
        rows.append(c.stat_row(f"{label}: bare CPU", bare["cpu_ms"], "ms/deliv", vs_bare=1.0))
    c.table(f"Backlog throughput ({repeats} runs each)", rows)

    grace = 0.5 if args.quick else 2.0
    cases = (None, "timeout") if args.quick else (None, "100ms", "timeout")
    streams = {case: stream(case, seconds, grace) for case in cases}
    raw["stream"] = streams
    stream_rows = []
    control = streams[None]
    for case, result in streams.items():
        fast_latency = [v for n in TARGETS[:-1] for v in result[n]["latency"]]
        fast_rate = sum(result[n]["per_second"] for n in TARGETS[:-1]) / (len(TARGETS) - 1)
        control_rate = sum(control[n]["per_second"] for n in TARGETS[:-1]) / (len(TARGETS) - 1)
        label = {None: "all fast", "100ms": f"{SLOW} at 100 ms", "timeout": f"{SLOW} times out"}[
            case
        ]
        stream_rows.append(
            c.stat_row(
                f"{label}: 4 fast targets latency",
                fast_latency,
                "s",
                per_target_per_s=fast_rate,
                vs_all_fast=c.ratio(fast_rate, control_rate),
            )
        )
        stream_rows.append(
            c.stat_row(
                f"{label}: {SLOW} latency",
                result[SLOW]["latency"],
                "s",
                per_target_per_s=result[SLOW]["per_second"],
            )
        )
    c.table(
        f"Stream of {RATE:g} entries/s for {seconds:g} s: per-target throughput and latency "
        f"(offered: {RATE:g}/s per target)",
        stream_rows,
    )
    cpu = c.summary(raw["backlog_0ms"]["syndicator"]["cpu_ms"])["median"]
    slow_ok = all(
        row.get("vs_all_fast") is None or row["vs_all_fast"] >= 0.95 for row in stream_rows
    )
    targets = {
        "cpu_per_delivery_at_most_5ms": cpu is not None and cpu <= 5.0,
        "fast_targets_keep_throughput_with_one_slow": slow_ok,
    }
    print("\ntargets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in targets.items()))
    late = late_entry(1 if args.quick else 3, 4 if args.quick else 20)
    raw["late_entry"] = late
    late_rows = [c.stat_row("fast target: entry on feed b during slow target's drain", late, "s")]
    c.table(
        "Late entry (the same daemon, 1 s polling; fast target ready, slow one busy)", late_rows
    )
    c.save(
        args,
        "throughput",
        {
            "late_rows": late_rows,
            "rows": rows,
            "stream_rows": stream_rows,
            "targets": targets,
            "rate": RATE,
            "stream_seconds": seconds,
            "raw": raw,
        },
    )


if __name__ == "__main__":
    main()
