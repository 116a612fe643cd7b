"""Human actions (retry, cancel, approve, reject) and target pauses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syndicator.models import Receipt, State
from syndicator.schema import deliveries, targets
from syndicator.store.base import StoreBase
from syndicator.store.records import (
    TargetState,
)

log = logging.getLogger(__name__)


class ActionsMixin(StoreBase):
    """What people do through the CLI, and pauses the dispatcher sets."""

    def _human(
        self,
        delivery_id: int,
        from_states: Sequence[State],
        now: datetime,
        outcome: str,
        **values: Any,
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                sa.select(deliveries.c.post_id, deliveries.c.target, deliveries.c.dry_run).where(
                    deliveries.c.id == delivery_id
                )
            ).first()
            if row is None:
                return False
            result = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .where(deliveries.c.state.in_([s.value for s in from_states]))
                .values(updated_at=now, **values)
            )
            if result.rowcount != 1:
                return False
            remote = {k: values[k] for k in ("remote_id", "remote_url") if k in values}
            self._log(
                conn, delivery_id, row.post_id, row.target, now, outcome, row.dry_run, **remote
            )
            if outcome == "published":
                self._touch_target(conn, row.target, last_publish_at=now)
            return True

    def retry(self, delivery_id: int, now: datetime) -> bool:
        """failed / unknown / cancelled → pending, due now, attempts reset."""
        return self._human(
            delivery_id,
            (State.FAILED, State.UNKNOWN, State.CANCELLED),
            now,
            "requeued",
            state=State.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
        )

    def look_again(self, delivery_id: int, now: datetime) -> bool:
        """A held unknown, due now and attempts reset: it is looked up before any resend."""
        return self._human(
            delivery_id,
            (State.UNKNOWN,),
            now,
            "requeued",
            attempts=0,
            next_attempt_at=now,
            last_error="re-queued by hand: looked up before any resend",
        )

    def cancel(self, delivery_id: int, now: datetime) -> bool:
        """Any state not yet final and not in flight → cancelled."""
        from_states = (State.PENDING, State.AWAITING_APPROVAL, State.FAILED, State.UNKNOWN)
        return self._human(
            delivery_id,
            from_states,
            now,
            "cancelled",
            state=State.CANCELLED.value,
            next_attempt_at=None,
        )

    def mark_resolved_published(self, delivery_id: int, receipt: Receipt, now: datetime) -> bool:
        """unknown → published, when a human confirms the post is on the platform."""
        return self._human(
            delivery_id,
            (State.UNKNOWN,),
            now,
            "published",
            state=State.PUBLISHED.value,
            remote_id=receipt.remote_id,
            remote_url=receipt.url,
            next_attempt_at=None,
        )

    def approve(self, delivery_id: int, now: datetime) -> bool:
        """awaiting_approval → pending, pinning the exact payload that was approved."""
        with self._write() as conn:
            payload_hash = conn.execute(
                sa.select(deliveries.c.payload_hash).where(deliveries.c.id == delivery_id)
            ).scalar()
        return self._human(
            delivery_id,
            (State.AWAITING_APPROVAL,),
            now,
            "approved",
            state=State.PENDING.value,
            approved_hash=payload_hash,
        )

    def reject(self, delivery_id: int, now: datetime) -> bool:
        """awaiting_approval → cancelled."""
        return self._human(
            delivery_id,
            (State.AWAITING_APPROVAL,),
            now,
            "rejected",
            state=State.CANCELLED.value,
            next_attempt_at=None,
        )

    def pause_target(self, name: str, until: datetime, reason: str) -> None:
        """Hold every delivery of one target until `until` (rate limit, expired token)."""
        with self._write() as conn:
            self._touch_target(conn, name, paused_until=until, pause_reason=reason)

    def resume_target(self, name: str, now: datetime) -> None:
        """Lift a pause; the deliveries it held back (due when it would have ended) are due at
        once, while a later `delay` or retry backoff keeps its own time."""
        with self._write() as conn:
            until = conn.execute(
                sa.select(targets.c.paused_until).where(targets.c.name == name)
            ).scalar()
            self._touch_target(conn, name, paused_until=None, pause_reason=None)
            if until is None or until <= now:
                return
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.target == name, deliveries.c.state == State.PENDING.value)
                .where(deliveries.c.next_attempt_at > now)
                .where(deliveries.c.next_attempt_at <= until)
                .values(next_attempt_at=now, updated_at=now)
            )

    def target_state(self, name: str) -> TargetState:
        with self._read() as conn:
            row = conn.execute(sa.select(targets).where(targets.c.name == name)).first()
        if row is None:
            return TargetState(name, None, None, None)
        return TargetState(**row._mapping)
