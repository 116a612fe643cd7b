"""Feed state between polls, and the daemons' heartbeats."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from syndicator.schema import daemons, feeds
from syndicator.store.base import StoreBase
from syndicator.store.records import (
    FeedState,
)
from syndicator.urls import redact

log = logging.getLogger(__name__)


class FeedsMixin(StoreBase):
    """Per-feed validators, poll outcomes and poll leases; daemon liveness."""

    def feed_state(self, name: str) -> FeedState | None:
        with self._read() as conn:
            row = conn.execute(sa.select(feeds).where(feeds.c.name == name)).first()
        if row is None:
            return None
        fields = FeedState.__dataclass_fields__
        return FeedState(**{k: v for k, v in row._mapping.items() if k in fields})

    def feed_states(self) -> list[FeedState]:
        with self._read() as conn:
            rows = conn.execute(sa.select(feeds).order_by(feeds.c.name)).all()
        fields = FeedState.__dataclass_fields__
        return [FeedState(**{k: v for k, v in r._mapping.items() if k in fields}) for r in rows]

    def ensure_feed(self, name: str, url: str) -> None:
        """Create the feed's state row on first sight."""
        with self._write() as conn:
            self._ensure(conn, feeds, name=name, url=redact(url), initialized=False)

    def claim_feed(self, name: str, url: str, owner: str, now: datetime, interval: float) -> bool:
        """Take the poll of a feed for this interval; False when another daemon has it."""
        lease_until = now + timedelta(seconds=max(interval * 0.8, 5))
        with self._write() as conn:
            self._ensure(conn, feeds, name=name, url=redact(url), initialized=False)
            done = conn.execute(
                sa.update(feeds)
                .where(feeds.c.name == name)
                .where(
                    sa.or_(
                        feeds.c.lease_until.is_(None),
                        feeds.c.lease_until <= now,
                        feeds.c.lease_owner == owner,
                    )
                )
                .values(lease_owner=owner, lease_until=lease_until, url=redact(url))
            )
            return done.rowcount == 1

    def release_feeds(self, owner: str) -> None:
        """A clean stop hands its poll leases back, so a restart polls at once."""
        with self._write() as conn:
            conn.execute(
                sa.update(feeds)
                .where(feeds.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def record_poll(
        self,
        name: str,
        now: datetime,
        *,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        initialized: bool | None = None,
        next_poll_at: datetime | None = None,
    ) -> None:
        """Remember the outcome of a poll (validators only move forward on success)."""
        values: dict[str, Any] = {
            "last_poll_at": now,
            "last_error": error,
            "next_poll_at": next_poll_at,
        }
        if error is None:
            values.update(last_success_at=now, etag=etag, last_modified=last_modified)
        if initialized is not None:
            values["initialized"] = initialized
        with self._write() as conn:
            conn.execute(sa.update(feeds).where(feeds.c.name == name).values(**values))

    def heartbeat(self, daemon_id: str, host: str, pid: int, now: datetime) -> None:
        with self._write() as conn:
            self._ensure(
                conn, daemons, id=daemon_id, host=host, pid=pid, started_at=now, heartbeat_at=now
            )
            conn.execute(
                sa.update(daemons).where(daemons.c.id == daemon_id).values(heartbeat_at=now)
            )

    def forget_daemon(self, daemon_id: str) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(daemons).where(daemons.c.id == daemon_id))
