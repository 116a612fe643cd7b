"""Database growth: do `queue list --state failed` and `log --target X` stay flat as rows grow?

    python -m bench.dbgrowth [--quick] [--million] [--runs 5]

The same SQLite database shape is generated at 100,000 and 300,000 deliveries (three log rows
each; `--million` adds 1,000,000, two more minutes to generate: over 3 minutes in all; it is
left out of `make bench` for the time budget). At each size: cold CLI
processes (`queue list --state failed`, `queue list --before <middle id>` (a deep page),
`log --target facebook`), and the same queries in-process (warm, the SQL alone), with
SQLite's query plan. The bound: each figure at the largest size within 1.2× of the
smallest. Then the size of the store per 1,000 publishes: a real daemon publishes a backlog
to 5 fake targets and the database (checkpointed) is measured before and after, next to the
generated database's size per 1,000 deliveries.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import _common as c
from bench.cli import config_for

QUERIES = ("queue list --state failed", "queue list --before <middle>", "log --target facebook")


def cli_args(label: str, middle: int) -> list[str]:
    return {
        QUERIES[0]: ["queue", "list", "--state", "failed"],
        QUERIES[1]: ["queue", "list", "--before", str(middle)],
        QUERIES[2]: ["log", "--target", "facebook"],
    }[label]


WHAT_IF = (  # indexes that would let both filtered listings stop at the first page
    "CREATE INDEX bench_whatif_deliveries_state_id ON deliveries (state, id)",
    "CREATE INDEX bench_whatif_publish_log_target_id ON publish_log (target, id)",
)


def in_process(database: str, middle: int, runs: int, *, what_if: bool = False) -> dict[str, Any]:
    """Warm timings of the queries behind the commands, and their SQLite plans; with
    `what_if`, after adding the WHAT_IF indexes (the bench's proposal, not the schema)."""
    import sqlalchemy as sa

    from syndicator import queries
    from syndicator.store import Store

    store = Store(database)
    if what_if:
        with store.engine.begin() as conn:
            for statement in WHAT_IF:
                conn.execute(sa.text(statement))
    calls: dict[str, Callable[[], list[Any]]] = {
        QUERIES[0]: lambda: queries.list_deliveries(store, state="failed", limit=50),
        QUERIES[1]: lambda: queries.list_deliveries(store, before_id=middle, limit=50),
        QUERIES[2]: lambda: queries.log_entries(store, target="facebook", limit=50),
    }
    out: dict[str, Any] = {}
    for label, call in calls.items():
        call()
        times = []
        for _ in range(runs * 4):
            started = time.perf_counter()
            rows = call()
            times.append(time.perf_counter() - started)
        out[label] = {"times": times, "rows": len(rows)}
    plans = {}
    with store.engine.connect() as conn:
        for label, sql in (
            (
                QUERIES[0],
                "SELECT d.id FROM deliveries d JOIN posts p ON p.id = d.post_id "
                "WHERE d.state = 'failed' ORDER BY d.id DESC LIMIT 50",
            ),
            (
                QUERIES[2],
                "SELECT l.id FROM publish_log l JOIN posts p ON p.id = l.post_id "
                "WHERE l.target = 'facebook' ORDER BY l.id DESC LIMIT 50",
            ),
        ):
            plans[label] = [row[-1] for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))]
    store.close()
    out["plans"] = plans
    return out


def one_size(deliveries: int, runs: int) -> dict[str, Any]:
    with c.workdir("dbgrowth") as folder:
        database = f"sqlite:///{folder / 'growth.db'}"
        generated = c.generate_database(database, deliveries, 3 * deliveries)
        size = c.database_bytes(database)
        config = config_for(folder, database)
        middle = deliveries // 2
        cold: dict[str, list[float]] = {label: [] for label in QUERIES}
        for label in QUERIES:
            c.run_timed(c.syndicator_command(config, *cli_args(label, middle)))
        for _ in range(runs):
            for label in QUERIES:
                cold[label].append(
                    c.run_timed(c.syndicator_command(config, *cli_args(label, middle)))
                )
        warm = in_process(database, middle, runs)
        what_if = in_process(database, middle, runs, what_if=True)
    return {
        "deliveries": deliveries,
        "bytes": size,
        "generation_s": generated,
        "cold": cold,
        "warm": warm,
        "what_if": what_if,
    }


def publishes(entries: int) -> dict[str, float]:
    """Bytes the store grows by per 1,000 real publishes (a daemon, 5 fake Mastodon targets)."""
    feeds, api = c.FeedServer(keep=max(entries, 10)), c.FakeApi()
    url = feeds.create("blog", back_catalogue=10)
    targets = [c.Target(name, api.base) for name in c.TARGET_NAMES]
    try:
        with c.workdir("dbsize") as folder:
            config = c.write_config(folder, feeds=[("blog", url, 1)], targets=targets)
            database = f"sqlite:///{folder / 'state' / 'syndicator.db'}"
            daemon = c.Daemon(config)
            try:
                daemon.wait_ready()
                c.wait_until(
                    lambda: c.query(database, "SELECT count(*) FROM feeds WHERE initialized"), 20
                )
                before = c.database_bytes(database)
                feeds.add("blog", *[f"size-{i}" for i in range(entries)])
                c.wait_until(lambda: api.count() >= entries * len(targets), 120)
            finally:
                daemon.stop()
            after = c.database_bytes(database)
            count = c.query(database, "SELECT count(*) FROM deliveries WHERE state = 'published'")
    finally:
        feeds.stop()
        api.stop()
    return {
        "publishes": count,
        "bytes_before": before,
        "bytes_after": after,
        "kb_per_1000": (after - before) / 1024 / count * 1000,
    }


def main() -> None:
    args = c.arguments(
        __doc__, million=(False, "also 1,000,000 deliveries"), runs=(5, "cold runs per query")
    )
    sizes = (
        [1000, 3000] if args.quick else [100_000, 300_000] + ([1_000_000] if args.million else [])
    )
    runs = 1 if args.quick else args.runs
    results = [one_size(n, runs) for n in sizes]
    real = publishes(4 if args.quick else 100)
    rows = []
    smallest = results[0]
    for result in results:
        n = result["deliveries"]
        for label in QUERIES:
            cold = c.summary(result["cold"][label])["median"]
            warm = c.summary(result["warm"][label]["times"])["median"]
            rows.append(
                {
                    "case": f"{n:,}: {label}",
                    "cold_ms_median": 1000 * cold,
                    "cold_ms_max": 1000 * max(result["cold"][label]),
                    "cold_vs_smallest": c.ratio(cold, statistics.median(smallest["cold"][label])),
                    "sql_ms_median": 1000 * warm,
                    "sql_ms_p90": 1000 * c.summary(result["warm"][label]["times"])["p90"],
                    "sql_vs_smallest": c.ratio(
                        warm, statistics.median(smallest["warm"][label]["times"])
                    ),
                    "what_if_sql_ms": 1000 * c.summary(result["what_if"][label]["times"])["median"],
                }
            )
    c.table(f"Queries as the tables grow ({runs} cold runs, {4 * runs} warm runs each)", rows)
    for label, plan in results[-1]["warm"]["plans"].items():
        print(f"  plan, {label}: {' / '.join(plan)}")
        print(f"    with the what-if indexes: {' / '.join(results[-1]['what_if']['plans'][label])}")
    print("  what-if indexes (a proposal, not the schema): " + "; ".join(WHAT_IF))
    size_rows = [
        {
            "case": f"generated, {r['deliveries']:,} deliveries",
            "MB": r["bytes"] / 1e6,
            "kb_per_1000_deliveries": r["bytes"] / 1024 / r["deliveries"] * 1000,
            "generation_s": r["generation_s"],
        }
        for r in results
    ]
    size_rows.append(
        {
            "case": f"real daemon, {real['publishes']} publishes",
            "MB": real["bytes_after"] / 1e6,
            "kb_per_1000_deliveries": real["kb_per_1000"],
        }
    )
    c.table("Database size (SQLite, after a WAL checkpoint)", size_rows)
    largest = [r for r in rows if r["case"].startswith(f"{sizes[-1]:,}:")]
    flat = all((r["cold_vs_smallest"] or 0) <= 1.2 for r in largest)
    sql_flat = all((r["sql_vs_smallest"] or 0) <= 1.2 for r in largest)
    targets = {"cold_commands_flat_within_1.2x": flat, "sql_flat_within_1.2x": sql_flat}
    print("\ntargets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in targets.items()))
    c.save(
        args,
        "dbgrowth",
        {
            "sizes": sizes,
            "rows": rows,
            "size_rows": size_rows,
            "targets": targets,
            "raw": {"sizes": results, "real": real},
        },
    )


if __name__ == "__main__":
    main()
