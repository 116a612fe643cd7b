"""Bursts: 50 entries appear at once in one feed with 5 targets; all 250 posts must arrive.

    python -m bench.burst [--quick] [--entries 50] [--repeats 5]

One daemon (feed interval 1 s) takes `repeats` bursts in turn; each is timed from the moment
the entries appear to the last post on the fake platform (so it includes waiting for the next
poll, up to 1 s), and from the first post to the last (the drain itself). The baseline
(bench/_bare.py publish) fetches a feed holding the same burst and posts every entry to 5
instances, one thread each, with no store: the floor for this much HTTP.
"""

from __future__ import annotations

import time

from bench import _common as c

TARGETS = [f"t{i}" for i in range(5)]


def syndicator(entries: int, repeats: int) -> dict[str, list[float]]:
    feeds, api = c.FeedServer(keep=max(entries, 10)), c.FakeApi()
    url = feeds.create("blog", back_catalogue=3)
    out: dict[str, list[float]] = {"total": [], "drain": [], "cpu_ms_per_delivery": []}
    with c.workdir("burst") as folder:
        config = c.write_config(
            folder,
            feeds=[("blog", url, 1)],
            targets=[c.Target(name, api.base) for name in TARGETS],
        )
        daemon = c.Daemon(config)
        try:
            daemon.wait_ready()
            database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
            c.wait_until(
                lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized"), 20
            )
            expected = 0
            for burst in range(repeats):
                time.sleep(0.5)
                cpu = daemon.cpu()
                started = feeds.add("blog", *[f"b{burst}-{i}" for i in range(entries)])
                expected += entries * len(TARGETS)
                c.wait_until(lambda: api.count(TARGETS) >= expected, 120)  # noqa: B023
                used = daemon.cpu() - cpu
                times = [
                    at
                    for name in TARGETS
                    for guid, at in api.received_at(name).items()
                    if guid.startswith(f"b{burst}-")
                ]
                out["total"].append(max(times) - started)
                out["drain"].append(max(times) - min(times))
                out["cpu_ms_per_delivery"].append(1000 * used / (entries * len(TARGETS)))
            out["received"] = [api.count(TARGETS)]
            out["expected"] = [expected]
        finally:
            daemon.stop()
            feeds.stop()
            api.stop()
    return out


def baseline(entries: int, repeats: int) -> dict[str, list[float]]:
    feeds, api = c.FeedServer(), c.FakeApi()
    url = feeds.create("burst")
    feeds.add("burst", *[f"bare-{i}" for i in range(entries)])
    out: dict[str, list[float]] = {"total": [], "cpu_ms_per_delivery": []}
    try:
        for repeat in range(repeats):
            names = [f"bare{repeat}-{t}" for t in TARGETS]
            report = c.bare("publish", url, api.base, *names)
            assert api.count(names) == entries * len(TARGETS)
            out["total"].append(report["seconds"])
            out["cpu_ms_per_delivery"].append(1000 * report["cpu"] / report["posts"])
    finally:
        feeds.stop()
        api.stop()
    return out


def main() -> None:
    args = c.arguments(__doc__, entries=(50, "entries per burst"), repeats=(5, "bursts"))
    entries, repeats = (5, 2) if args.quick else (args.entries, args.repeats)
    ours, bare = syndicator(entries, repeats), baseline(entries, repeats)
    deliveries = entries * len(TARGETS)
    ours_median = c.summary(ours["total"])["median"]
    bare_median = c.summary(bare["total"])["median"]
    rows = [
        c.stat_row(
            "syndicator: entry → last post",
            ours["total"],
            "s",
            deliveries_per_s=deliveries / ours_median,
            vs_bare=c.ratio(ours_median, bare_median),
        ),
        c.stat_row(
            "syndicator: first → last post",
            ours["drain"],
            "s",
            deliveries_per_s=deliveries / c.summary(ours["drain"])["median"],
        ),
        c.stat_row(
            "bare: fetch + post all",
            bare["total"],
            "s",
            deliveries_per_s=deliveries / bare_median,
            vs_bare=1.0,
        ),
        c.stat_row("syndicator: CPU per delivery", ours["cpu_ms_per_delivery"], "ms"),
        c.stat_row("bare: CPU per delivery", bare["cpu_ms_per_delivery"], "ms"),
    ]
    complete = ours["received"][0] == ours["expected"][0]
    c.table(
        f"Burst: {entries} entries × {len(TARGETS)} targets = {deliveries} deliveries, "
        f"{repeats} bursts (all received: {complete})",
        rows,
    )
    c.save(
        args,
        "burst",
        {
            "entries": entries,
            "targets": len(TARGETS),
            "repeats": repeats,
            "all_received": complete,
            "rows": rows,
            "raw": {"syndicator": ours, "bare": bare},
        },
    )


if __name__ == "__main__":
    main()
