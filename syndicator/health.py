"""One picture of the service for `status`, `/healthz` and the systemd STATUS line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from syndicator import queries
from syndicator.config import Settings
from syndicator.models import FINAL_STATES, State, utcnow
from syndicator.store import Store
from syndicator.urls import redact

ALIVE_WITHIN = timedelta(seconds=60)
FINAL = {s.value for s in FINAL_STATES} | {State.FAILED.value}


def collect(settings: Settings, store: Store) -> dict[str, Any]:
    """Feeds, targets, queue counts, trial period and live daemons, as plain data."""
    now = utcnow()
    counts = queries.counts_by_state(store)
    feed_states = {f.name: f for f in store.feed_states()}
    feeds = []
    for feed in settings.feeds:
        state = feed_states.get(feed.name)
        feeds.append(
            {
                "name": feed.name,
                "url": redact(feed.url),
                "last_poll_at": state.last_poll_at if state else None,
                "last_success_at": state.last_success_at if state else None,
                "last_error": state.last_error if state else None,
                "next_poll_at": state.next_poll_at if state else None,
            }
        )
    targets = []
    for target in settings.targets:
        pause = store.target_state(target.name)
        paused = pause.paused_until is not None and pause.paused_until > now
        dry = settings.mode == "dry-run" or target.dry_run or settings.trial_active(now)
        targets.append(
            {
                "name": target.name,
                "type": target.type,
                "enabled": target.enabled,
                "dry_run": dry,
                "status": "paused" if paused else ("disabled" if not target.enabled else "ok"),
                "paused_until": pause.paused_until if paused else None,
                "pause_reason": pause.pause_reason if paused else None,
                "last_publish_at": pause.last_publish_at,
                "queue": counts.get(target.name, {}),
            }
        )
    configured = {t.name for t in settings.targets}
    for name in sorted(set(counts) - configured):  # removed from the config, work left behind
        waiting = {s: n for s, n in counts[name].items() if s not in FINAL}
        if waiting:
            targets.append(
                {
                    "name": name,
                    "type": "?",
                    "enabled": False,
                    "dry_run": False,
                    "status": "not configured",
                    "paused_until": None,
                    "last_publish_at": None,
                    "pause_reason": "removed from the config: its deliveries wait (cancel them or "
                    "add the target back)",
                    "queue": counts[name],
                }
            )
    totals: dict[str, int] = {}
    for per_state in counts.values():
        for state_name, count in per_state.items():
            totals[state_name] = totals.get(state_name, 0) + count
    return {
        "mode": settings.mode,
        "trial": {"active": settings.trial_active(now), "until": settings.trial_until},
        "feeds": feeds,
        "targets": targets,
        "queue": totals,
        "daemons": queries.live_daemons(store, now - ALIVE_WITHIN),
    }


def healthy(settings: Settings, store: Store) -> tuple[bool, dict[str, Any]]:
    """Healthy when the database answers; details say what else needs a look."""
    try:
        report = collect(settings, store)
    except Exception as exc:  # the database is down: that is the unhealthy case
        return False, {"error": f"database: {type(exc).__name__}"}
    failing = [f["name"] for f in report["feeds"] if f["last_error"]]
    paused = [t["name"] for t in report["targets"] if t["status"] == "paused"]
    return True, {
        "failing_feeds": failing,
        "paused_targets": paused,
        "unknown": report["queue"].get("unknown", 0),
        "trial": report["trial"]["active"],
    }
