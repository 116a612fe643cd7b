"""Engagement readings: published live deliveries with their counters over time, and the
per-target refusal a platform gave to reading them."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from syndicator.models import State
from syndicator.schema import deliveries, engagement, posts, publish_log, targets
from syndicator.store.base import StoreBase


@dataclass(frozen=True)
class Reading:
    """One read-back of a post's counters at one step ("1h", "1d", ...)."""

    age: str
    at: datetime
    counters: dict[str, int]


@dataclass(frozen=True)
class Published:
    """A delivery that really landed on its platform, with the readings taken so far."""

    delivery_id: int
    post_id: int
    target: str
    remote_id: str
    remote_url: str | None
    published_at: datetime
    post_guid: str
    post_url: str
    post_title: str
    readings: tuple[Reading, ...] = field(default=())

    @property
    def ages(self) -> frozenset[str]:
        return frozenset(r.age for r in self.readings)


class EngagementMixin(StoreBase):
    """Counters per (delivery, step), written once; refusals per target, said once."""

    def published_since(
        self, since: datetime, *, targets: Sequence[str] | None = None
    ) -> list[Published]:
        """Live deliveries first published at or after `since` (oldest first), with readings.

        Only deliveries with a remote id: a post settled by hand without one cannot be asked.
        """
        first = (
            sa.select(
                publish_log.c.delivery_id, sa.func.min(publish_log.c.at).label("published_at")
            )
            .where(publish_log.c.outcome == State.PUBLISHED.value)
            .where(publish_log.c.dry_run.is_(False))
            .group_by(publish_log.c.delivery_id)
            .subquery()
        )
        query = (
            sa.select(
                deliveries.c.id,
                deliveries.c.post_id,
                deliveries.c.target,
                deliveries.c.remote_id,
                deliveries.c.remote_url,
                first.c.published_at,
                posts.c.guid,
                posts.c.url,
                posts.c.title,
            )
            .join(first, first.c.delivery_id == deliveries.c.id)
            .join(posts, posts.c.id == deliveries.c.post_id)
            .where(deliveries.c.state == State.PUBLISHED.value)
            .where(deliveries.c.dry_run.is_(False))
            .where(deliveries.c.remote_id.is_not(None), deliveries.c.remote_id != "")
            .where(first.c.published_at >= since)
            .order_by(first.c.published_at, deliveries.c.id)
        )
        if targets is not None:
            query = query.where(deliveries.c.target.in_(list(targets)))
        with self._read() as conn:
            rows = conn.execute(query).all()
            readings = self._readings(conn, [row.id for row in rows])
        return [
            Published(
                row.id,
                row.post_id,
                row.target,
                row.remote_id,
                row.remote_url,
                row.published_at,
                row.guid,
                row.url,
                row.title,
                tuple(readings.get(row.id, ())),
            )
            for row in rows
        ]

    def _readings(self, conn: sa.Connection, ids: list[int]) -> dict[int, list[Reading]]:
        found: dict[int, list[Reading]] = {}
        for start in range(0, len(ids), 500):  # stay under every database's parameter limit
            query = (
                sa.select(engagement)
                .where(engagement.c.delivery_id.in_(ids[start : start + 500]))
                .order_by(engagement.c.at)
            )
            for row in conn.execute(query):
                counters = {str(k): int(v) for k, v in (row.counters or {}).items()}
                found.setdefault(row.delivery_id, []).append(Reading(row.age, row.at, counters))
        return found

    def record_engagement(
        self, delivery_id: int, age: str, at: datetime, counters: dict[str, int]
    ) -> bool:
        """Store one reading; False when that step was already recorded (another daemon)."""
        with self._write() as conn:
            exists = conn.execute(
                sa.select(engagement.c.id).where(
                    engagement.c.delivery_id == delivery_id, engagement.c.age == age
                )
            ).first()
            if exists is not None:
                return False
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(
                    sa.insert(engagement).values(
                        delivery_id=delivery_id, at=at, age=age, counters=dict(counters)
                    )
                )
                return True
        return False

    def refuse_metrics(self, target: str, reason: str) -> bool:
        """Record that `target`'s platform refuses reads; True only the first time."""
        with self._write() as conn:
            self._ensure(conn, targets, name=target)
            result = conn.execute(
                sa.update(targets)
                .where(targets.c.name == target, targets.c.metrics_error.is_(None))
                .values(metrics_error=reason[:1000])
            )
            return result.rowcount == 1

    def clear_metrics_error(self, target: str | None = None) -> int:
        """Ask `target` (or every target) again; the number of refusals lifted."""
        query = sa.update(targets).where(targets.c.metrics_error.is_not(None))
        if target is not None:
            query = query.where(targets.c.name == target)
        with self._write() as conn:
            return int(conn.execute(query.values(metrics_error=None)).rowcount)

    def metrics_errors(self) -> dict[str, str]:
        """{target: the refusal its platform gave}."""
        query = sa.select(targets.c.name, targets.c.metrics_error).where(
            targets.c.metrics_error.is_not(None)
        )
        with self._read() as conn:
            return {name: error for name, error in conn.execute(query)}
