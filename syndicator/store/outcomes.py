"""The dispatcher's transitions out of `publishing`, each with its publish-log row."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from syndicator.models import Receipt, State
from syndicator.schema import deliveries
from syndicator.store.base import StoreBase
from syndicator.store.records import (
    Delivery,
)

log = logging.getLogger(__name__)


class OutcomesMixin(StoreBase):
    """Only the lease holder records an outcome."""

    def mark_published(
        self,
        delivery: Delivery,
        owner: str,
        receipt: Receipt,
        now: datetime,
        *,
        duration_ms: int,
        note: str | None = None,
    ) -> bool:
        """publishing → published, with the remote id and URL, and its log row."""
        with self._write() as conn:
            if not self._leave_publishing(
                conn,
                delivery,
                owner,
                now,
                state=State.PUBLISHED.value,
                remote_id=receipt.remote_id,
                remote_url=receipt.url,
                last_error=note,
                next_attempt_at=None,
            ):
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                "published",
                False,
                remote_id=receipt.remote_id,
                remote_url=receipt.url,
                error=note,
                duration_ms=duration_ms,
            )
            self._touch_target(conn, delivery.target, last_publish_at=now)
            return True

    def mark_dry_run(self, delivery: Delivery, owner: str, now: datetime) -> bool:
        """publishing → dry_run: the full payload goes to the log; nothing left the machine."""
        with self._write() as conn:
            if not self._leave_publishing(
                conn, delivery, owner, now, state=State.DRY_RUN.value, next_attempt_at=None
            ):
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                "dry_run",
                True,
                payload=delivery.payload,
                duration_ms=0,
            )
            return True

    def mark_retry(
        self,
        delivery: Delivery,
        owner: str,
        now: datetime,
        *,
        error: str,
        due: datetime,
        outcome: str = "retry",
        refund: bool = False,
        duration_ms: int | None = None,
    ) -> bool:
        """publishing → pending, due again at `due`. A refund does not count the attempt."""
        values: dict[str, Any] = {
            "state": State.PENDING.value,
            "last_error": error,
            "next_attempt_at": due,
        }
        if refund:
            values["attempts"] = deliveries.c.attempts - 1
        with self._write() as conn:
            if not self._leave_publishing(conn, delivery, owner, now, **values):
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                outcome,
                False,
                error=error,
                duration_ms=duration_ms,
            )
            return True

    def mark_failed(
        self,
        delivery: Delivery,
        owner: str,
        now: datetime,
        *,
        error: str,
        duration_ms: int | None = None,
    ) -> bool:
        """publishing → failed: needs a human (`queue retry`)."""
        with self._write() as conn:
            if not self._leave_publishing(
                conn,
                delivery,
                owner,
                now,
                state=State.FAILED.value,
                last_error=error,
                next_attempt_at=None,
            ):
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                "failed",
                False,
                error=error,
                duration_ms=duration_ms,
            )
            return True

    def mark_unknown(
        self,
        delivery: Delivery,
        owner: str,
        now: datetime,
        *,
        error: str,
        due: datetime | None,
        duration_ms: int | None = None,
    ) -> bool:
        """publishing → unknown: the post may have landed; resolve by lookup, or hold."""
        with self._write() as conn:
            if not self._leave_publishing(
                conn,
                delivery,
                owner,
                now,
                state=State.UNKNOWN.value,
                last_error=error,
                next_attempt_at=due,
            ):
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                "unknown",
                False,
                error=error,
                duration_ms=duration_ms,
            )
            return True

    def mark_skipped(self, delivery: Delivery, owner: str, now: datetime, *, reason: str) -> bool:
        """publishing → skipped (too old by the time it was due)."""
        with self._write() as conn:
            if not self._leave_publishing(
                conn,
                delivery,
                owner,
                now,
                state=State.SKIPPED.value,
                last_error=reason,
                next_attempt_at=None,
            ):
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                "skipped",
                delivery.dry_run,
                error=reason,
            )
            return True
