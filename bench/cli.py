"""CLI speed: cold `syndicator` processes against a database of 100,000 deliveries.

    python -m bench.cli [--quick] [--runs 10] [--deliveries 100000] [--log-rows 300000]

Each command is run `--runs` times as a fresh process (the console script, as a user types
it), interleaved with the baseline `python -c "import sqlalchemy.orm"` (the least a
database-reading CLI must import) and a bare `python -c pass`. The database (SQLite) is
filled with bulk Core inserts after `Store.migrate()`. One more run of each command with
PYTHONPROFILEIMPORTTIME lists what it imported: platform SDKs, Pillow, APScheduler (and the
connectors, requests, feedparser) have no business on these paths.
Targets: `--help` under 150 ms; `queue list` (first page) within 1.5× the baseline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import _common as c

OFFENDERS = (
    "PIL",
    "tweepy",
    "facebook",
    "apscheduler",
    "connectors",
    "requests",
    "feedparser",
    "alembic",
    "twitter_text",
    "regex",
    "prometheus_client",
    "oauthlib",
    "urllib3",
)


def config_for(folder: Path, database: str) -> Path:
    return c.write_config(
        folder,
        feeds=[("blog", "https://blog.example/feed/", 300)],
        targets=[c.Target(name, "http://127.0.0.1:9") for name in c.TARGET_NAMES],
        database=database,
    )


def commands(config: Path) -> dict[str, list[str]]:
    return {
        "syndicator --help": [c.syndicator_command(config)[0], "--help"],
        "syndicator queue list --json": c.syndicator_command(config, "queue", "list", "--json"),
        "syndicator log": c.syndicator_command(config, "log"),
        "baseline: python -c 'import sqlalchemy.orm'": [
            sys.executable,
            "-c",
            "import sqlalchemy.orm",
        ],
        "floor: python -c pass": [sys.executable, "-c", "pass"],
    }


def imported(command: list[str]) -> dict[str, Any]:
    """Root packages a command imports, with self import time (ms), from PYTHONPROFILEIMPORTTIME."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    roots: dict[str, int] = {}
    for match in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", done.stderr):
        root = match.group(2).split(".")[0]
        roots[root] = roots.get(root, 0) + int(match.group(1))
    return {
        "offenders": [name for name in OFFENDERS if name in roots],
        "top_ms": {
            k: round(v / 1000, 1) for k, v in sorted(roots.items(), key=lambda kv: -kv[1])[:10]
        },
        "total_ms": round(sum(roots.values()) / 1000, 1),
    }


def main() -> None:
    args = c.arguments(
        __doc__,
        runs=(10, "cold runs per command"),
        deliveries=(100_000, "deliveries in the database"),
        log_rows=(300_000, "publish-log rows"),
    )
    runs, deliveries, log_rows = (
        (2, 500, 1500) if args.quick else (args.runs, args.deliveries, args.log_rows)
    )
    with c.workdir("cli") as folder:
        database = f"sqlite:///{folder / 'cli.db'}"
        generated = c.generate_database(database, deliveries, log_rows)
        size = c.database_bytes(database)
        config = config_for(folder, database)
        cmds = commands(config)
        times: dict[str, list[float]] = {label: [] for label in cmds}
        for command in cmds.values():
            c.run_timed(command)  # warm the page cache: "cold" means a new process, not a cold disk
        for _ in range(runs):
            for label, command in cmds.items():
                times[label].append(c.run_timed(command))
        imports = {
            label: imported(command)
            for label, command in cmds.items()
            if label.startswith("syndicator")
        }
    baseline = c.summary(times["baseline: python -c 'import sqlalchemy.orm'"])["median"]
    rows = [
        c.stat_row(
            label,
            [t * 1000 for t in values],
            "ms",
            vs_baseline=c.ratio(c.summary(values)["median"], baseline),
        )
        for label, values in times.items()
    ]
    c.table(
        f"Cold CLI processes, {runs} runs each; database: {deliveries:,} deliveries, "
        f"{log_rows:,} log rows, {size / 1e6:.0f} MB (generated in {generated:.1f} s)",
        rows,
    )
    for label, found in imports.items():
        print(
            f"\n{label}: imports {found['total_ms']:g} ms of modules; "
            f"offenders: {', '.join(found['offenders']) or 'none'}"
        )
        print(
            "  self import time by package (ms): "
            + ", ".join(f"{k} {v:g}" for k, v in found["top_ms"].items())
        )
    help_ms = 1000 * c.summary(times["syndicator --help"])["median"]
    queue_ratio = c.ratio(c.summary(times["syndicator queue list --json"])["median"], baseline)
    targets = {
        "help_under_150ms": help_ms < 150,
        "queue_list_within_1.5x_baseline": queue_ratio is not None and queue_ratio <= 1.5,
        "no_offending_imports": not any(found["offenders"] for found in imports.values()),
    }
    print("\ntargets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in targets.items()))
    c.save(
        args,
        "cli",
        {
            "deliveries": deliveries,
            "log_rows": log_rows,
            "database_mb": size / 1e6,
            "generation_s": generated,
            "runs": runs,
            "rows": rows,
            "imports": imports,
            "targets": targets,
            "raw": times,
        },
    )


if __name__ == "__main__":
    main()
