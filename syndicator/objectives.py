"""Measuring settings: the engagement fetch-back steps and the objectives (step A of the
playbook) a report measures progress against. Plain data and calendar arithmetic; no I/O.

Parsed by `config.parse` through a `config_reader.Reader`, so errors name the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from syndicator.connector import COUNTERS

if TYPE_CHECKING:
    from syndicator.config_reader import Reader as _Reader

DEFAULT_STEPS = ("1h", "1d", "7d", "30d")
CALENDAR = ("week", "month", "quarter", "year")
AGGREGATES = ("sum", "average")
METRICS = ("posts", *COUNTERS)
_LABEL = re.compile(r"^\d+(\.\d+)?(s|m|h|d|w)?$")


@dataclass(frozen=True)
class Step:
    """One fetch-back age: its label as written ("1d") and its length in seconds."""

    label: str
    seconds: float


@dataclass(frozen=True)
class EngagementSettings:
    """`[engagement]`: when posts' counters are read back after publishing."""

    enabled: bool = True
    steps: tuple[Step, ...] = (
        Step("1h", 3600.0),
        Step("1d", 86400.0),
        Step("7d", 7 * 86400.0),
        Step("30d", 30 * 86400.0),
    )
    stop_after: float = 30 * 86400.0
    interval: float = 600.0


@dataclass(frozen=True)
class Objective:
    """`[[objectives]]`: `target` of `metric` per `period` on `targets` (empty: all of them)."""

    name: str
    metric: str
    target: float
    period: str
    targets: tuple[str, ...] = ()
    aggregate: str = "sum"


@dataclass(frozen=True)
class Window:
    """The stretch of time an objective is measured over; `complete` once it has ended."""

    label: str
    since: datetime
    until: datetime
    complete: bool

    def elapsed(self, now: datetime) -> float:
        """How much of the window has passed, from 0 to 1."""
        total = (self.until - self.since).total_seconds()
        return min(1.0, max(0.0, (now - self.since).total_seconds() / total)) if total else 1.0


def engagement(r: _Reader) -> EngagementSettings:
    """Read the optional `[engagement]` table."""
    r.reject_unknown({"enabled", "steps", "stop_after", "interval"})
    labels = r.get("steps", list, list(DEFAULT_STEPS))
    if not labels or not all(isinstance(v, str) and _LABEL.match(v.strip()) for v in labels):
        raise r.fail("steps", 'expected a list of durations such as ["1h", "1d", "7d", "30d"]')
    steps = sorted(
        (Step(label.strip(), parse_duration(label)) for label in labels), key=lambda s: s.seconds
    )
    if len({s.seconds for s in steps}) != len(steps) or steps[0].seconds <= 0:
        raise r.fail("steps", "durations must be positive and all different")
    stop_after = r.duration("stop_after", steps[-1].seconds) or steps[-1].seconds
    if stop_after < steps[-1].seconds:
        raise r.fail("stop_after", f"must be at least the last step ({steps[-1].label})")
    interval = r.duration("interval", EngagementSettings.interval) or EngagementSettings.interval
    if interval < 1:
        raise r.fail("interval", "must be at least 1 second")
    return EngagementSettings(
        enabled=r.get("enabled", bool, True),
        steps=tuple(steps),
        stop_after=stop_after,
        interval=interval,
    )


def objective(r: _Reader, targets: frozenset[str]) -> Objective:
    """Read one `[[objectives]]` table; `targets` are the configured target names."""
    r.reject_unknown({"name", "metric", "target", "period", "targets", "aggregate"})
    name = (r.get("name", str) or "").strip()
    if not name:
        raise r.fail("name", 'required, e.g. "Shares on Facebook and LinkedIn"')
    metric = r.get("metric", str)
    if metric not in METRICS:
        raise r.fail("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    goal = r.get("target", (int, float))
    if goal is None or goal <= 0:
        raise r.fail("target", "required: a positive number (e.g. 200)")
    period = (r.get("period", str) or "").strip()
    if period not in CALENDAR and not _is_duration(period):
        raise r.fail("period", f'expected "30d", "7d" or one of {", ".join(CALENDAR)}')
    chosen = r.get("targets", list, [])
    unknown = [t for t in chosen if not isinstance(t, str) or t not in targets]
    if unknown:
        known = ", ".join(sorted(targets)) or "none"
        raise r.fail("targets", f"no target named {unknown[0]!r} (targets: {known})")
    return Objective(
        name=name,
        metric=metric,
        target=float(goal),
        period=period,
        targets=tuple(chosen),
        aggregate=r.choice("aggregate", AGGREGATES, "sum"),
    )


def windows(period: str, now: datetime) -> list[Window]:
    """The windows a report shows for `period`: the current calendar one (still running) and
    the previous one (complete); or one rolling window ending now for a duration."""
    if period not in CALENDAR:
        seconds = parse_duration(period)
        return [Window(f"last {period}", now - timedelta(seconds=seconds), now, True)]
    start = _calendar_start(period, now)
    end = _next_start(period, start)
    previous = _calendar_start(period, start - timedelta(seconds=1))
    return [
        Window(f"this {period}", start, end, False),
        Window(f"last {period}", previous, start, True),
    ]


def parse_duration(text: str) -> float:
    """Seconds in a duration label such as "1h" or "30d" (the config has validated it)."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$", text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
    return float(match.group(1)) * units[match.group(2)]


def _is_duration(text: str) -> bool:
    try:
        return parse_duration(text) > 0
    except ValueError:
        return False


def _calendar_start(period: str, when: datetime) -> datetime:
    """Midnight UTC on the first day of the week (Monday), month, quarter or year of `when`."""
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


def _next_start(period: str, start: datetime) -> datetime:
    """The start of the window after the one starting at `start`."""
    if period == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)
