"""The baseline: the least any cross-poster must do, with the same libraries and no store.

    python -m bench._bare publish FEED_URL API_BASE INSTANCE...   fetch, parse, post everything
    python -m bench._bare poll FEED_URL API_BASE INSTANCE --interval 1   poll forever, post new
    python -m bench._bare fetch --threads N URL...                    one conditional GET each

requests + feedparser, one thread per target, no database, no retries, no logging. It runs as
its own process so its CPU is accounted like the daemon's; `publish` and `fetch` print one
JSON line: wall seconds and CPU seconds of the work itself (imports excluded).
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import feedparser
import requests


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def entries(session: requests.Session, url: str, etag: str | None) -> tuple[list, str | None]:
    """(entries, etag) of one conditional GET; no entries on 304."""
    headers = {"If-None-Match": etag} if etag else {}
    response = session.get(url, headers=headers, timeout=10)
    if response.status_code == 304:
        return [], etag
    response.raise_for_status()
    return feedparser.parse(response.content).entries, response.headers.get("ETag")


def post(session: requests.Session, api: str, instance: str, entry: dict) -> None:
    response = session.post(
        f"{api}/{instance}/api/v1/statuses",
        data={"status": f"{entry['title']} {entry['link']}", "visibility": "public"},
        headers={"Authorization": "Bearer bare", "Idempotency-Key": entry["id"]},
        timeout=30,
    )
    response.raise_for_status()


def publish(feed: str, api: str, instances: list[str]) -> dict[str, float]:
    began, cpu0 = time.perf_counter(), cpu()
    with requests.Session() as session:
        found, _ = entries(session, feed, None)

    def one_target(instance: str) -> None:
        with requests.Session() as session:
            for entry in found:
                post(session, api, instance, entry)

    with ThreadPoolExecutor(len(instances)) as pool:
        list(pool.map(one_target, instances))
    return {
        "seconds": time.perf_counter() - began,
        "cpu": cpu() - cpu0,
        "posts": len(found) * len(instances),
    }


def poll(feed: str, api: str, instances: list[str], interval: float) -> None:
    session = requests.Session()
    found, etag = entries(session, feed, None)
    seen = {e["id"] for e in found}
    print("ready", flush=True)
    while True:
        time.sleep(interval)
        found, etag = entries(session, feed, etag)
        for entry in found:
            if entry["id"] not in seen:
                seen.add(entry["id"])
                for instance in instances:
                    post(session, api, instance, entry)


def fetch(urls: list[str], etags: list[str], threads: int) -> dict[str, float]:
    began, cpu0 = time.perf_counter(), cpu()
    local = threading.local()

    def one(pair: tuple[str, str]) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        found, _ = entries(local.session, pair[0], pair[1] or None)
        return len(found)

    with ThreadPoolExecutor(threads) as pool:
        parsed = sum(pool.map(one, zip(urls, etags, strict=True)))
    return {"seconds": time.perf_counter() - began, "cpu": cpu() - cpu0, "entries": parsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("publish")
    p.add_argument("feed")
    p.add_argument("api")
    p.add_argument("instances", nargs="+")
    q = sub.add_parser("poll")
    q.add_argument("feed")
    q.add_argument("api")
    q.add_argument("instances", nargs="+")
    q.add_argument("--interval", type=float, default=1.0)
    f = sub.add_parser("fetch")
    f.add_argument("--threads", type=int, default=1)
    f.add_argument("--list", required=True, help="file: one 'URL ETAG' per line")
    args = parser.parse_args()
    if args.mode == "publish":
        print(json.dumps(publish(args.feed, args.api, args.instances)), flush=True)
    elif args.mode == "poll":
        poll(args.feed, args.api, args.instances, args.interval)
    else:
        lines = Path(args.list).read_text().splitlines()
        pairs = [line.split(" ", 1) for line in lines if line]
        urls, etags = [p[0] for p in pairs], [p[1] if len(p) > 1 else "" for p in pairs]
        print(json.dumps(fetch(urls, etags, args.threads)), flush=True)


if __name__ == "__main__":
    main()
