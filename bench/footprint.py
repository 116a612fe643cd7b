"""Footprint: idle RSS and CPU of the daemon with 5 targets; start-up time to READY.

    python -m bench.footprint [--quick] [--idle 60] [--starts 5]

Two daemons idle side by side for `--idle` seconds (default 60), with the config's defaults
(feed every 5 min, dispatch every 10 s): five Mastodon targets, and one target of each
platform (Mastodon, Facebook, X, LinkedIn, Bluesky; fake credentials, API bases on
127.0.0.1 — an idle daemon sends nothing). RSS (/proc VmRSS) is sampled every second, CPU
(/proc utime+stime) per 10 s window; both against two baselines idling alongside: a bare
`python` and one that imported the daemon's libraries (SQLAlchemy, requests, feedparser,
APScheduler, click). Start-up is timed from spawn to READY=1 on a NOTIFY_SOCKET, first on a
fresh database (migration) then warm, against a cold `python -c "import <those libraries>"`.
One more start with PYTHONPROFILEIMPORTTIME lists what the daemon imported by READY.
Targets: idle RSS ≤ 80 MB, idle CPU ≤ 0.5 %.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import _common as c

LIBRARIES = "sqlalchemy.orm, requests, feedparser, apscheduler.schedulers.background, click"
WINDOW = 10.0
OFF = "https://127.0.0.1:9"  # nothing listens: nothing can leave the machine
PLATFORMS = {  # type → its required keys (fake credentials)
    "facebook": 'page_id = "123456789012345"\naccess_token = "fb-token"',
    "x": 'api_key = "k1"\napi_secret = "k2"\naccess_token = "k3"\naccess_token_secret = "k4"',
    "linkedin": 'author = "urn:li:organization:1"\naccess_token = "li-token"',
    "bluesky": 'handle = "bench.bsky.social"\napp_password = "abcd-efgh-ijkl-mnop"',
}


def configs(root: Path, feed: str, api: c.FakeApi) -> dict[str, Path]:
    mastodons = [c.Target(f"m{i}", api.base) for i in range(5)]
    mixed = [c.Target("mastodon", api.base)] + [
        c.Target(name, "", kind=name, extra=f'{extra}\napi_base = "{OFF}"')
        for name, extra in PLATFORMS.items()
    ]
    out = {}
    for label, targets in (("5 × mastodon", mastodons), ("5 platforms", mixed)):
        folder = root / label.replace(" ", "").replace("×", "x")
        folder.mkdir()
        out[label] = c.write_config(folder, feeds=[("blog", feed, 300)], targets=targets)
    return out


def startups(config: Path, starts: int) -> dict[str, Any]:
    """Spawn → READY: the first start migrates a fresh database, the others are warm."""
    times = []
    for _ in range(starts + 1):
        daemon = c.Daemon(config)
        try:
            times.append(daemon.wait_ready())
        finally:
            daemon.stop()
    return {"first": times[0], "warm": times[1:]}


def idle(
    configs: dict[str, Path], seconds: float, settle: float = 5.0
) -> dict[str, dict[str, list[float]]]:
    """Daemons and baselines idle together; RSS every second, CPU % per window."""
    daemons = {label: c.Daemon(config) for label, config in configs.items()}
    sleeper = f"import time; time.sleep({seconds + 60})"
    others = {
        "bare python": subprocess.Popen([sys.executable, "-c", sleeper]),
        "python + libraries": subprocess.Popen(
            [sys.executable, "-c", f"import {LIBRARIES}; {sleeper}"]
        ),
    }
    pids = {label: d.pid for label, d in daemons.items()} | {k: p.pid for k, p in others.items()}
    try:
        for daemon in daemons.values():
            daemon.wait_ready()
        time.sleep(settle)  # first poll and heartbeat done: from here on the daemon is idle
        out: dict[str, dict[str, list[float]]] = {k: {"rss_mb": [], "cpu_pct": []} for k in pids}
        window_start = {k: (time.monotonic(), c.proc_cpu(pid)) for k, pid in pids.items()}
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            time.sleep(1.0)
            now = time.monotonic()
            for label, pid in pids.items():
                out[label]["rss_mb"].append(c.proc_rss(pid) / 1e6)
                began, cpu = window_start[label]
                if now - began >= min(WINDOW, seconds) - 0.01:
                    used = c.proc_cpu(pid)
                    out[label]["cpu_pct"].append(100 * (used - cpu) / (now - began))
                    window_start[label] = (now, used)
        return out
    finally:
        for daemon in daemons.values():
            daemon.stop()
        for process in others.values():
            process.kill()
            process.wait()


def imports(config: Path) -> dict[str, Any]:
    """What a daemon has imported by READY, from PYTHONPROFILEIMPORTTIME in its log."""
    daemon = c.Daemon(config, env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        daemon.wait_ready()
    finally:
        daemon.stop()
    roots: dict[str, int] = {}
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for match in line.finditer(daemon.log.read_text(errors="replace")):
        root = match.group(4).split(".")[0]
        roots[root] = roots.get(root, 0) + int(match.group(1))  # self time, so no double count
    ranked = sorted(roots.items(), key=lambda kv: -kv[1])
    heavy = (
        "PIL",
        "tweepy",
        "facebook",
        "oauthlib",
        "requests_oauthlib",
        "alembic",
        "mako",
        "regex",
    )
    return {
        "top_ms": {k: round(v / 1000, 1) for k, v in ranked[:15]},
        "loaded_of_interest": [h for h in heavy if h in roots],
        "modules_total_ms": round(sum(roots.values()) / 1000, 1),
    }


def main() -> None:
    args = c.arguments(__doc__, idle=(60.0, "idle seconds"), starts=(5, "warm starts"))
    seconds, starts = (2.0, 0) if args.quick else (args.idle, args.starts)
    feeds, api = c.FeedServer(), c.FakeApi()
    feed = feeds.create("blog", back_catalogue=10)
    try:
        with c.workdir("footprint") as root:
            paths = configs(root, feed, api)
            started = {label: startups(path, starts) for label, path in paths.items()}
            baseline = [
                c.run_timed([sys.executable, "-c", f"import {LIBRARIES}"])
                for _ in range(starts + 1)
            ]
            idled = idle(paths, seconds, 0.5 if args.quick else 5.0)
            imported = {label: imports(path) for label, path in paths.items()}
    finally:
        feeds.stop()
        api.stop()
    lib_rss = c.summary(idled["python + libraries"]["rss_mb"])["median"]
    rows = []
    for label, data in idled.items():
        rss = c.summary(data["rss_mb"])
        rows.append(
            c.stat_row(
                f"{label}: RSS", data["rss_mb"], "MB", vs_libraries=c.ratio(rss["median"], lib_rss)
            )
        )
        rows.append(c.stat_row(f"{label}: CPU", data["cpu_pct"], "% of a core"))
    c.table(
        f"Idle for {seconds:g} s (RSS every 1 s; CPU per {min(WINDOW, seconds):g} s window)", rows
    )
    base = c.summary(baseline)["median"]
    start_rows = [
        c.stat_row("cold python importing the libraries", baseline, "s", vs_libraries=1.0)
    ]
    for label, times in started.items():
        start_rows.append(
            c.stat_row(
                f"{label}: first start (migrates)",
                [times["first"]],
                "s",
                vs_libraries=c.ratio(times["first"], base),
            )
        )
        start_rows.append(
            c.stat_row(
                f"{label}: warm start → READY",
                times["warm"],
                "s",
                vs_libraries=c.ratio(c.summary(times["warm"])["median"], base),
            )
        )
    c.table("Start-up to READY=1", start_rows)
    for label, found in imported.items():
        heavy = ", ".join(found["loaded_of_interest"]) or "none"
        print(f"\nimported by READY ({label}): heavy ones: {heavy}")
        print(
            "  self import time by package (ms): "
            + ", ".join(f"{k} {v:g}" for k, v in found["top_ms"].items())
        )
    targets = {}
    for label in paths:
        rss, cpu = c.summary(idled[label]["rss_mb"]), c.summary(idled[label]["cpu_pct"])
        targets[f"{label}: idle RSS ≤ 80 MB"] = rss["max"] is not None and rss["max"] <= 80
        targets[f"{label}: idle CPU ≤ 0.5 %"] = cpu["median"] is not None and cpu["median"] <= 0.5
    print("\ntargets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in targets.items()))
    c.save(
        args,
        "footprint",
        {
            "idle_seconds": seconds,
            "rows": rows,
            "start_rows": start_rows,
            "imports": imported,
            "targets": targets,
            "raw": {"idle": idled, "starts": started, "baseline_start": baseline},
        },
    )


if __name__ == "__main__":
    main()
