"""Claiming deliveries: leases, pacing, settling open outcomes, recovering dead leases."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from syndicator.models import Draft, State
from syndicator.schema import deliveries, posts, publish_log, targets
from syndicator.store.base import StoreBase
from syndicator.store.records import (
    _DELIVERY_COLUMNS,
    Delivery,
    Pacing,
    _delivery,
)

log = logging.getLogger(__name__)


class ClaimsMixin(StoreBase):
    """Who may publish what, now."""

    def create_delivery(
        self,
        post_id: int,
        target: str,
        state: State,
        *,
        dry_run: bool,
        now: datetime,
        draft: Draft | None = None,
        due: datetime | None = None,
        error: str | None = None,
    ) -> int | None:
        """One delivery per (post, target), enforced by the database; None if it existed."""
        values = {
            "post_id": post_id,
            "target": target,
            "state": state.value,
            "dry_run": dry_run,
            "attempts": 0,
            "next_attempt_at": due,
            "payload": draft.to_dict() if draft else None,
            "payload_hash": draft.payload_hash if draft else None,
            "last_error": error,
            "created_at": now,
            "updated_at": now,
        }
        with self._write() as conn:
            try:
                with conn.begin_nested():
                    result = conn.execute(sa.insert(deliveries).values(**values))
            except IntegrityError:
                return None
            delivery_id = self._inserted_id(result)
            if state in (State.SKIPPED, State.FAILED):  # born final: the log must say why
                self._log(
                    conn, delivery_id, post_id, target, now, state.value, dry_run, error=error
                )
            return delivery_id

    def update_draft(self, delivery_id: int, draft: Draft, now: datetime) -> State | None:
        """After an edit: replace a not-yet-sent payload; re-ask approval if it was approved."""
        with self._write() as conn:
            row = conn.execute(
                sa.select(deliveries.c.state, deliveries.c.approved_hash).where(
                    deliveries.c.id == delivery_id
                )
            ).one()
            if row.state not in (State.PENDING, State.AWAITING_APPROVAL):
                return None
            state = State(row.state)
            if row.approved_hash and row.approved_hash != draft.payload_hash:
                state = State.AWAITING_APPROVAL
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.state == row.state)
                .values(
                    payload=draft.to_dict(),
                    payload_hash=draft.payload_hash,
                    state=state.value,
                    updated_at=now,
                )
            )
            return state

    def claim_due(
        self,
        owner: str,
        now: datetime,
        lease: float,
        *,
        target: str,
        limit: int,
        resolvable_unknown: bool,
        pacing: Pacing | None = None,
    ) -> list[Delivery]:
        """Lease up to `limit` due deliveries of one target, newest content first.

        Due means pending with next_attempt_at reached, or unknown with a resolution due
        (only when the target can resolve unknowns: lookup or resend policy). The target's
        pause, caps and spacing are checked in the same transaction, under a lock on its row,
        so they hold across several daemons.
        """
        with self._write() as conn:
            limit = min(limit, self._allowance(conn, target, now, pacing or Pacing()))
            if limit <= 0:
                return []
            self._recover(conn, now, target)
            states = [State.PENDING.value]
            if resolvable_unknown and self._unsettled(conn, target, owner):
                states = [State.UNKNOWN.value]
            query = (
                sa.select(deliveries.c.id, deliveries.c.state)
                .join(posts, posts.c.id == deliveries.c.post_id)
                .where(deliveries.c.target == target, deliveries.c.state.in_(states))
                .where(deliveries.c.next_attempt_at <= now)
                .order_by(posts.c.published_at.desc().nulls_last(), deliveries.c.id.desc())
                .limit(limit)
            )
            if self.is_postgres:
                query = query.with_for_update(of=deliveries, skip_locked=True)
            rows = conn.execute(query).all()
            for row in rows:
                conn.execute(
                    sa.update(deliveries)
                    .where(deliveries.c.id == row.id)
                    .values(
                        state=State.PUBLISHING.value,
                        claimed_from=row.state,
                        lease_owner=owner,
                        lease_until=now + timedelta(seconds=lease),
                        attempts=deliveries.c.attempts + 1,
                        updated_at=now,
                    )
                )
            return self._deliveries(conn, [r.id for r in rows])

    def _unsettled(self, conn: sa.Connection, target: str, owner: str) -> bool:
        """Does an earlier attempt on this target still have an open outcome?

        An unknown outcome, or a publish held by another (maybe dead) process, is settled
        before anything new goes to the target, so that a lookup of the platform's recent
        posts still sees the earlier post if it landed.
        """
        unknown = sa.and_(
            deliveries.c.state == State.UNKNOWN.value, deliveries.c.next_attempt_at.is_not(None)
        )
        elsewhere = sa.and_(
            deliveries.c.state == State.PUBLISHING.value, deliveries.c.lease_owner != owner
        )
        query = (
            sa.select(deliveries.c.id)
            .where(deliveries.c.target == target, sa.or_(unknown, elsewhere))
            .limit(1)
        )
        return conn.execute(query).first() is not None

    def _allowance(self, conn: sa.Connection, target: str, now: datetime, pacing: Pacing) -> int:
        """How many deliveries a target may start now: pause, caps (in flight counted), spacing."""
        self._ensure(conn, targets, name=target)
        query = sa.select(targets).where(targets.c.name == target)
        if self.is_postgres:
            query = query.with_for_update()
        row = conn.execute(query).one()
        if row.paused_until and row.paused_until > now:
            return 0
        in_flight = conn.execute(
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(deliveries.c.target == target, deliveries.c.state == State.PUBLISHING.value)
            .where(deliveries.c.dry_run.is_(False))
        ).scalar_one()
        allowed = 1_000_000
        if pacing.min_spacing:
            recent = (
                row.last_publish_at
                and (now - row.last_publish_at).total_seconds() < pacing.min_spacing
            )
            if recent or in_flight:
                return 0
            allowed = 1
        for cap, window in ((pacing.cap_per_hour, 3600), (pacing.cap_per_day, 86400)):
            if cap is not None:
                since = now - timedelta(seconds=window)
                used = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(publish_log)
                    .where(publish_log.c.target == target, publish_log.c.outcome == "published")
                    .where(publish_log.c.at >= since)
                ).scalar_one()
                allowed = min(allowed, cap - used - in_flight)
        return allowed

    def _deliveries(self, conn: sa.Connection, ids: Sequence[int]) -> list[Delivery]:
        if not ids:
            return []
        query = (
            sa.select(*_DELIVERY_COLUMNS)
            .join(posts, posts.c.id == deliveries.c.post_id)
            .where(deliveries.c.id.in_(ids))
        )
        by_id = {row.id: _delivery(row) for row in conn.execute(query)}
        return [by_id[i] for i in ids]

    def renew_lease(self, delivery: Delivery, owner: str, now: datetime, lease: float) -> bool:
        """A full lease again, right before sending; False when it was lost (it expired and
        another process recovered the delivery while it waited in this process's batch)."""
        with self._write() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery.id, deliveries.c.lease_owner == owner)
                .where(deliveries.c.state == State.PUBLISHING.value)
                .values(lease_until=now + timedelta(seconds=lease))
            )
            return result.rowcount == 1

    def renew_leases(self, owner: str, now: datetime, lease: float) -> int:
        """Extend every lease `owner` holds: it is alive and still working on them."""
        with self._write() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.lease_owner == owner)
                .where(deliveries.c.state == State.PUBLISHING.value)
                .values(lease_until=now + timedelta(seconds=lease))
            )
            return result.rowcount

    def release(self, delivery: Delivery, owner: str, now: datetime) -> bool:
        """publishing → the state it was claimed from, untouched (its target just paused)."""
        with self._write() as conn:
            return self._leave_publishing(
                conn,
                delivery,
                owner,
                now,
                state=delivery.claimed_from or State.PENDING.value,
                attempts=deliveries.c.attempts - 1,
            )

    def recover_expired(self, now: datetime) -> list[int]:
        """publishing with an expired lease → unknown: its process died mid-attempt."""
        with self._write() as conn:
            return self._recover(conn, now)

    def _recover(self, conn: sa.Connection, now: datetime, target: str | None = None) -> list[int]:
        query = sa.select(
            deliveries.c.id, deliveries.c.post_id, deliveries.c.target, deliveries.c.dry_run
        ).where(deliveries.c.state == State.PUBLISHING.value, deliveries.c.lease_until < now)
        if target is not None:
            query = query.where(deliveries.c.target == target)
        if self.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        error = "the process publishing this delivery stopped before recording the outcome"
        for row in rows:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(
                    state=State.UNKNOWN.value,
                    lease_owner=None,
                    lease_until=None,
                    last_error=error,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
            self._log(
                conn, row.id, row.post_id, row.target, now, "unknown", row.dry_run, error=error
            )
            log.warning("delivery %s: lease expired mid-publish, outcome now unknown", row.id)
        return [r.id for r in rows]
