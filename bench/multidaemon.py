"""Several daemons, one database: deliveries per second with 1, 2 and 3 daemons on PostgreSQL,
and with 1 daemon on SQLite (the baseline the others are compared with).

    python -m bench.multidaemon [--quick] [--entries 60] [--repeats 3] [--delay 0.05]

PostgreSQL comes from SYNDICATOR_BENCH_DATABASE_URL, else SYNDICATOR_TEST_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test; each configuration gets a fresh schema,
dropped afterwards. Every daemon runs the same config (feed every 1 s, dispatch every 0.5 s so
the daemons that lose the feed's lease still look for due deliveries promptly) against 5 fake
Mastodon targets answering in `--delay` seconds. A backlog of `--entries` entries appears at
once; the rate is taken from the first post to the last, `repeats` times per configuration,
and every post must arrive exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import _common as c

TARGETS = [f"t{i}" for i in range(5)]


def run(
    database: str, folder: Path, daemons: int, entries: int, repeats: int, delay: float
) -> dict[str, Any]:
    feeds, api = c.FeedServer(keep=max(entries, 10)), c.FakeApi(delay=delay)
    url = feeds.create("blog", back_catalogue=3)
    config = c.write_config(
        folder,
        feeds=[("blog", url, 1)],
        targets=[c.Target(name, api.base) for name in TARGETS],
        database=database,
        dispatch_interval=0.5,
    )
    processes = [c.Daemon(config) for _ in range(daemons)]
    out: dict[str, Any] = {"per_second": [], "total": [], "cpu_ms": []}
    try:
        for process in processes:
            process.wait_ready(60)
        c.wait_until(lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized"), 30)
        expected = 0
        for run_index in range(repeats):
            time.sleep(0.5)
            cpu = sum(p.cpu() for p in processes)
            added = feeds.add("blog", *[f"m{run_index}-{i}" for i in range(entries)])
            expected += entries * len(TARGETS)
            c.wait_until(lambda: api.count(TARGETS) >= expected, 300)  # noqa: B023
            used = sum(p.cpu() for p in processes) - cpu
            times = [
                at
                for name in TARGETS
                for guid, at in api.received_at(name).items()
                if guid.startswith(f"m{run_index}-")
            ]
            out["per_second"].append((len(times) - 1) / (max(times) - min(times)))
            out["total"].append(max(times) - added)
            out["cpu_ms"].append(1000 * used / len(times))
        time.sleep(0.5)
        duplicates = 0
        for name in TARGETS:
            links = Counter(link for s in api.statuses(name) for link in s["links"])
            duplicates += sum(n - 1 for n in links.values() if n > 1)
        out["received"], out["expected"], out["duplicates"] = (
            api.count(TARGETS),
            expected,
            duplicates,
        )
    finally:
        for process in processes:
            process.stop()
        feeds.stop()
        api.stop()
    return out


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        c.query(url, "SELECT 1")
    except Exception as exc:  # any driver or connection failure: report, do not crash
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


def main() -> None:
    args = c.arguments(
        __doc__,
        entries=(60, "entries per backlog (× 5 targets)"),
        repeats=(3, "backlogs per configuration"),
        delay=(0.05, "seconds each fake platform takes to answer"),
    )
    entries, repeats = (4, 1) if args.quick else (args.entries, args.repeats)
    results: dict[str, Any] = {}
    with c.workdir("multi-sqlite") as folder:
        database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
        results["SQLite, 1 daemon"] = run(database, folder, 1, entries, repeats, args.delay)
    pg = c.postgres_url()
    why_not = postgres_reachable(pg)
    for count in (2,) if args.quick else (1, 2, 3):
        label = f"PostgreSQL, {count} daemon{'s' if count > 1 else ''}"
        if why_not:
            results[label] = {"unavailable": why_not}
            continue
        with c.postgres_schema(pg) as database, c.workdir("multi-pg") as folder:
            results[label] = run(database, folder, count, entries, repeats, args.delay)
    base = c.summary(results["SQLite, 1 daemon"]["per_second"])["median"]
    rows = []
    for label, result in results.items():
        if "unavailable" in result:
            rows.append({"case": label, "note": f"not available: {result['unavailable']}"})
            continue
        rate = c.summary(result["per_second"])["median"]
        rows.append(
            c.stat_row(
                label,
                result["per_second"],
                "deliv/s",
                vs_sqlite_1=c.ratio(rate, base),
                cpu_ms_per_delivery=c.summary(result["cpu_ms"])["median"],
                exactly_once=result["received"] == result["expected"] and not result["duplicates"],
            )
        )
    c.table(
        f"Backlog of {entries} × {len(TARGETS)} deliveries, platform answering in "
        f"{args.delay * 1000:g} ms, {repeats} runs per configuration",
        rows,
    )
    c.save(
        args,
        "multidaemon",
        {
            "entries": entries,
            "targets": len(TARGETS),
            "delay": args.delay,
            "repeats": repeats,
            "postgresql": why_not or "available",
            "rows": rows,
            "raw": results,
        },
    )


if __name__ == "__main__":
    main()
