"""What the posts achieved, as plain JSON-ready data computed from the store.

Counters belong to the post they were read from, and a post belongs to the period it was
published in: "200 shares a month" counts the shares (latest reading) of the posts published
that month. `report_text` prints this for people, `report_html` draws it; `--json` is this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from syndicator.config import Settings
from syndicator.models import utcnow
from syndicator.objectives import Objective, Window, parse_duration, windows
from syndicator.store import Published, Store

TERMS = (("short", 86400.0), ("medium", 7 * 86400.0), ("long", 30 * 86400.0))
"""Short, medium and long term: the configured step nearest to a day, a week, a month."""


def build(
    settings: Settings, store: Store, *, period: str = "30d", now: datetime | None = None
) -> dict[str, Any]:
    """The whole report: objectives, platforms, terms and posts of the last `period`."""
    now = now or utcnow()
    since = now - timedelta(seconds=parse_duration(period))
    spans = {o.name: windows(o.period, now) for o in settings.objectives}
    earliest = min([since, *(w.since for found in spans.values() for w in found)])
    items = store.published_since(earliest)
    recent = [item for item in items if item.published_at >= since]
    steps = _steps(settings, items)
    names = _target_names(settings, recent)
    refused = store.metrics_errors()
    return {
        "generated_at": _iso(now),
        "period": {"label": period, "since": _iso(since), "until": _iso(now)},
        "steps": steps,
        "objectives": [
            _objective(o, spans[o.name], items, settings, now) for o in settings.objectives
        ],
        "platforms": [_platform(name, settings, recent, steps, refused) for name in names],
        "terms": _terms(recent, names, steps, settings),
        "posts": [_post(item, steps) for item in _newest_first(recent, names)],
    }


def latest(item: Published) -> dict[str, int]:
    """The newest non-empty reading of a post (a deleted post keeps what it had)."""
    for reading in reversed(item.readings):
        if reading.counters:
            return dict(reading.counters)
    return {}


def totals(counters: Iterable[dict[str, int]]) -> dict[str, int]:
    """Counter-wise sums."""
    summed: dict[str, int] = {}
    for one in counters:
        for name, value in one.items():
            summed[name] = summed.get(name, 0) + value
    return summed


def _objective(
    objective: Objective,
    spans: Sequence[Window],
    items: Sequence[Published],
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    chosen = objective.targets or tuple(t.name for t in settings.targets)
    return {
        "name": objective.name,
        "metric": objective.metric,
        "target": objective.target,
        "period": objective.period,
        "aggregate": objective.aggregate,
        "targets": list(chosen),
        "windows": [_measure(objective, w, items, chosen, now) for w in spans],
    }


def _measure(
    objective: Objective,
    window: Window,
    items: Sequence[Published],
    chosen: Sequence[str],
    now: datetime,
) -> dict[str, Any]:
    """Value, progress and status of one objective over one window."""
    inside = [i for i in items if i.target in chosen]
    inside = [i for i in inside if window.since <= i.published_at < window.until]
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for item in inside:
        one = 1 if objective.metric == "posts" else latest(item).get(objective.metric)
        if one is not None:  # a platform that cannot read this counter does not count
            sums[item.target] = sums.get(item.target, 0) + one
            counts[item.target] = counts.get(item.target, 0) + 1
    measured = sum(counts.values())
    value = float(sum(sums.values()))
    by_target = sums
    projected = value
    if objective.aggregate == "average":
        value = round(value / measured, 1) if measured else 0.0
        by_target = {name: round(total / counts[name], 1) for name, total in sums.items()}
    elif not window.complete and window.elapsed(now) > 0:
        projected = round(value / window.elapsed(now), 1)
    return {
        "label": window.label,
        "since": _iso(window.since),
        "until": _iso(window.until),
        "complete": window.complete,
        "posts": len(inside),
        "measured": measured,
        "value": value,
        "progress": round(value / objective.target, 3),
        "projected": projected,
        "status": _status(objective, window, value, projected, len(inside), measured),
        "by_target": by_target,
    }


def _status(
    objective: Objective, window: Window, value: float, projected: float, posts: int, measured: int
) -> str:
    """met, missed (the window is over), on track or behind (it is not), or no data."""
    if objective.metric != "posts" and posts and not measured:
        return "no data"
    if value >= objective.target:
        return "met"
    if window.complete:
        return "missed"
    return "on track" if projected >= objective.target else "behind"


def _platform(
    name: str,
    settings: Settings,
    items: Sequence[Published],
    steps: list[str],
    refused: dict[str, str],
) -> dict[str, Any]:
    """One target: posts, latest totals, totals at each step and growth between steps."""
    mine = [i for i in items if i.target == name]
    at_step = {s: _all_at(mine, s) for s in steps}
    return {
        "target": name,
        "type": _type(settings, name),
        "posts": len(mine),
        "read": sum(1 for i in mine if i.readings),
        "latest": totals(latest(i) for i in mine),
        "steps": {s: {"posts": len(found), **totals(found)} for s, found in at_step.items()},
        "growth": _growth(mine, steps),
        "refused": refused.get(name),
    }


def _growth(items: Sequence[Published], steps: list[str]) -> list[dict[str, Any]]:
    """Between consecutive steps, the summed change of the posts read at both."""
    growth = []
    for earlier, later in zip(steps, steps[1:], strict=False):
        pairs = [(_at(i, earlier), _at(i, later)) for i in items]
        both = [(a, b) for a, b in pairs if a is not None and b is not None]
        if both:
            change = totals({k: v - a.get(k, 0) for k, v in b.items()} for a, b in both)
            growth.append({"from": earlier, "to": later, "posts": len(both), "change": change})
    return growth


def _terms(
    items: Sequence[Published], names: list[str], steps: list[str], settings: Settings
) -> list[dict[str, Any]]:
    """Short, medium and long term: per target, the totals at the step nearest each term."""
    lengths = {s.label: s.seconds for s in settings.engagement.steps}
    terms = []
    for term, seconds in TERMS:
        step = min(steps, key=lambda s: abs(lengths.get(s, _seconds(s)) - seconds), default=None)
        if step is None:
            continue
        per_target = {}
        for name in names:
            found = _all_at([i for i in items if i.target == name], step)
            per_target[name] = {"posts": len(found), **totals(found)}
        terms.append({"term": term, "step": step, "targets": per_target})
    return terms


def _post(item: Published, steps: list[str]) -> dict[str, Any]:
    """One post on one platform, with every reading and the change between them."""
    readings = sorted(item.readings, key=lambda r: _order(steps, r.age))
    return {
        "delivery_id": item.delivery_id,
        "post_guid": item.post_guid,
        "title": item.post_title,
        "url": item.post_url,
        "target": item.target,
        "remote_url": item.remote_url,
        "published_at": _iso(item.published_at),
        "readings": [{"age": r.age, "at": _iso(r.at), "counters": r.counters} for r in readings],
        "latest": latest(item),
        "growth": _growth([item], steps),
    }


def _newest_first(items: Sequence[Published], names: list[str]) -> list[Published]:
    """Newest post first; one post's platforms in the config's order."""
    order = {name: i for i, name in enumerate(names)}
    by_target = sorted(items, key=lambda i: order.get(i.target, len(order)))
    return sorted(by_target, key=lambda i: i.published_at, reverse=True)


def _all_at(items: Sequence[Published], step: str) -> list[dict[str, int]]:
    """The readings at `step` of the posts that have one."""
    return [found for item in items if (found := _at(item, step)) is not None]


def _at(item: Published, step: str) -> dict[str, int] | None:
    for reading in item.readings:
        if reading.age == step:
            return dict(reading.counters)
    return None


def _steps(settings: Settings, items: Sequence[Published]) -> list[str]:
    """The configured steps, plus any older ones found in the data, shortest first."""
    labels = {s.label: s.seconds for s in settings.engagement.steps}
    for item in items:
        for reading in item.readings:
            labels.setdefault(reading.age, _seconds(reading.age))
    return sorted(labels, key=lambda label: labels[label])


def _order(steps: list[str], age: str) -> int:
    return steps.index(age) if age in steps else len(steps)


def _seconds(label: str) -> float:
    try:
        return parse_duration(label)
    except ValueError:
        return float("inf")


def _target_names(settings: Settings, items: Sequence[Published]) -> list[str]:
    """Configured targets first, then any that published in the period and were removed."""
    names = [t.name for t in settings.targets]
    return names + sorted({i.target for i in items} - set(names))


def _type(settings: Settings, name: str) -> str | None:
    return next((t.type for t in settings.targets if t.name == name), None)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")
