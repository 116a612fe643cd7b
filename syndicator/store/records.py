"""Rows the store hands out: plain frozen data, no database access."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syndicator.models import Draft, State
from syndicator.schema import deliveries, posts


@dataclass(frozen=True)
class Delivery:
    """One row of the queue, joined with its post's identity."""

    id: int
    post_id: int
    target: str
    state: State
    dry_run: bool
    attempts: int
    next_attempt_at: datetime | None
    claimed_from: str | None
    payload: dict[str, Any] | None
    payload_hash: str | None
    approved_hash: str | None
    remote_id: str | None
    remote_url: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    post_guid: str
    post_url: str
    post_title: str
    post_published: datetime | None
    post_feed: str

    @property
    def draft(self) -> Draft | None:
        return Draft.from_dict(self.payload) if self.payload else None

    @property
    def key(self) -> str:
        """Idempotency key: the same for a (post, target) across restarts, daemons and even a
        rebuilt database, so a platform that de-duplicates by key never gets the post twice."""
        identity = f"{self.post_feed}\0{self.post_guid}\0{self.target}".encode()
        return "syndicator-" + hashlib.sha256(identity).hexdigest()[:32]


@dataclass(frozen=True)
class Pacing:
    """A target's caps and spacing, applied when claiming."""

    cap_per_hour: int | None = None
    cap_per_day: int | None = None
    min_spacing: float = 0.0


@dataclass(frozen=True)
class FeedState:
    """What the store remembers about one feed between polls."""

    name: str
    etag: str | None
    last_modified: str | None
    initialized: bool
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    next_poll_at: datetime | None


@dataclass(frozen=True)
class TargetState:
    """Pause and pacing state of one target, shared by every daemon."""

    name: str
    paused_until: datetime | None
    pause_reason: str | None
    last_publish_at: datetime | None
    metrics_error: str | None = None


_DELIVERY_COLUMNS = [
    *deliveries.c,
    posts.c.guid.label("post_guid"),
    posts.c.url.label("post_url"),
    posts.c.title.label("post_title"),
    posts.c.published_at.label("post_published"),
    posts.c.feed.label("post_feed"),
]


def _delivery(row: sa.Row[Any]) -> Delivery:
    values = {k: v for k, v in row._mapping.items() if k in Delivery.__dataclass_fields__}
    values["state"] = State(values["state"])
    return Delivery(**values)
