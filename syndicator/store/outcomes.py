"""The dispatcher's transitions out of `publishing`, each with its publish-log row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syndicator.models import Draft, Receipt, State
from syndicator.schema import deliveries
from syndicator.store.base import StoreBase
from syndicator.store.records import Delivery


class OutcomesMixin(StoreBase):
    """Only the lease holder records an outcome; state and log row commit together."""

    def _finish(
        self,
        delivery: Delivery,
        owner: str,
        now: datetime,
        state: State,
        outcome: str,
        entry: dict[str, Any],
        **values: Any,
    ) -> bool:
        with self._write() as conn:
            if not self._leave_publishing(conn, delivery, owner, now, state=state.value, **values):
                return False
            dry_run = entry.pop("dry_run", delivery.dry_run)
            self._log(
                conn, delivery.id, delivery.post_id, delivery.target, now, outcome, dry_run, **entry
            )
            if state == State.PUBLISHED:
                self._touch_target(conn, delivery.target, last_publish_at=now)
            return True

    def mark_published(
        self,
        delivery: Delivery,
        owner: str,
        receipt: Receipt,
        now: datetime,
        *,
        duration_ms: int,
        note: str | None = None,
        sent: Draft | None = None,
    ) -> bool:
        """publishing → published, with the remote id and URL, and the draft really sent
        when it differs from the prepared one (an image dropped on the way)."""
        remote: dict[str, Any] = {"remote_id": receipt.remote_id, "remote_url": receipt.url}
        if sent is not None and sent.payload_hash != delivery.payload_hash:
            remote.update(payload=sent.to_dict(), payload_hash=sent.payload_hash)
        entry = {k: v for k, v in remote.items() if k != "payload_hash"}
        entry.update(error=note, duration_ms=duration_ms)
        if self._finish(
            delivery,
            owner,
            now,
            State.PUBLISHED,
            "published",
            dict(entry),
            last_error=note,
            next_attempt_at=None,
            **remote,
        ):
            return True
        return self._late_receipt(delivery, now, entry, remote)

    def _late_receipt(
        self, delivery: Delivery, now: datetime, entry: dict[str, Any], remote: dict[str, Any]
    ) -> bool:
        """A receipt that arrives after the lease was lost still settles an unknown outcome:
        the post is on the platform and we know where."""
        note = "the receipt arrived after this process's lease had run out"
        with self._write() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery.id, deliveries.c.state == State.UNKNOWN.value)
                .values(
                    state=State.PUBLISHED.value,
                    last_error=note,
                    next_attempt_at=None,
                    updated_at=now,
                    **remote,
                )
            )
            if result.rowcount != 1:
                return False
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                "published",
                delivery.dry_run,
                **{**entry, "error": note},
            )
            self._touch_target(conn, delivery.target, last_publish_at=now)
            return True

    def mark_dry_run(self, delivery: Delivery, owner: str, now: datetime) -> bool:
        """publishing → dry_run: the full payload goes to the log; nothing left the machine."""
        entry = {"dry_run": True, "payload": delivery.payload, "duration_ms": 0}
        return self._finish(
            delivery, owner, now, State.DRY_RUN, "dry_run", entry, next_attempt_at=None
        )

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
        values: dict[str, Any] = {"last_error": error, "next_attempt_at": due}
        if refund:
            values["attempts"] = deliveries.c.attempts - 1
        entry = {"error": error, "duration_ms": duration_ms}
        return self._finish(delivery, owner, now, State.PENDING, outcome, entry, **values)

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
        entry = {"error": error, "duration_ms": duration_ms}
        return self._finish(
            delivery,
            owner,
            now,
            State.FAILED,
            "failed",
            entry,
            last_error=error,
            next_attempt_at=None,
        )

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
        """publishing → unknown: the post may have landed; resolve by lookup (at `due`), or hold."""
        entry = {"error": error, "duration_ms": duration_ms}
        return self._finish(
            delivery,
            owner,
            now,
            State.UNKNOWN,
            "unknown",
            entry,
            last_error=error,
            next_attempt_at=due,
        )

    def mark_skipped(self, delivery: Delivery, owner: str, now: datetime, *, reason: str) -> bool:
        """publishing → skipped (too old by the time it was due)."""
        return self._finish(
            delivery,
            owner,
            now,
            State.SKIPPED,
            "skipped",
            {"error": reason},
            last_error=reason,
            next_attempt_at=None,
        )

    def ask_approval(self, delivery: Delivery, owner: str, now: datetime) -> bool:
        """publishing → awaiting_approval: the target wants approval and this payload has none."""
        return self._finish(
            delivery,
            owner,
            now,
            State.AWAITING_APPROVAL,
            "awaiting_approval",
            {},
            next_attempt_at=now,
        )

    def attach_draft(self, delivery: Delivery, owner: str, draft: Draft, now: datetime) -> bool:
        """Store the payload prepared while publishing (a retry after a failed prepare)."""
        with self._write() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery.id, deliveries.c.lease_owner == owner)
                .where(deliveries.c.state == State.PUBLISHING.value)
                .values(payload=draft.to_dict(), payload_hash=draft.payload_hash, updated_at=now)
            )
            return result.rowcount == 1
