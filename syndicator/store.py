"""The only code that talks to the database: posts, deliveries, the publish log, feed state.

Every state change of a delivery is one function here, guarded by the state it expects
(and the lease it holds), committed before the caller takes its next step.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from syndicator.models import Draft, Post, Receipt, State
from syndicator.schema import daemons, deliveries, feeds, make_engine, posts, publish_log, targets

log = logging.getLogger(__name__)

SCHEMA_REVISION = "0001"  # alembic head; checked without importing alembic on the CLI's paths
MIGRATION_LOCK = 0x53594E44  # PostgreSQL advisory lock id held while migrating


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


class Store:
    """Database access for one process; safe to share between its threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"

    # -- set-up ------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the current revision; concurrent starters wait for one migrator."""
        if self.revision() == SCHEMA_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "syndicator:migrations")
        with self.engine.connect() as conn:
            if self.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if self.is_postgres:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    conn.commit()

    def revision(self) -> str | None:
        """The schema revision in the database, or None for an empty database."""
        with self._read() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect().execution_options(readonly=True) as conn, conn.begin():
            yield conn

    def _write(self) -> contextlib.AbstractContextManager[sa.Connection]:
        return self.engine.begin()

    # -- feeds -------------------------------------------------------------------------------

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
            self._ensure(conn, feeds, name=name, url=url, initialized=False)

    def claim_feed(self, name: str, url: str, owner: str, now: datetime, interval: float) -> bool:
        """Take the poll of a feed for this interval; False when another daemon has it."""
        lease_until = now + timedelta(seconds=max(interval * 0.8, 5))
        with self._write() as conn:
            self._ensure(conn, feeds, name=name, url=url, initialized=False)
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
                .values(lease_owner=owner, lease_until=lease_until, url=url)
            )
            return done.rowcount == 1

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

    # -- posts -------------------------------------------------------------------------------

    def add_post(self, post: Post, now: datetime, *, publish: bool) -> tuple[int, str, bool]:
        """Insert-or-ignore a post. Returns (id, "new" | "edited" | "same", needs fan-out).

        A post stored with `publish` keeps needing fan-out until `mark_fanned_out`, so a
        crash between storing a post and creating its deliveries loses nothing.
        """
        select = sa.select(posts.c.id, posts.c.content_hash, posts.c.fanned_out).where(
            posts.c.feed == post.feed, posts.c.guid == post.guid
        )
        with self._write() as conn:
            row = conn.execute(select).first()
            if row is None:
                values = self._post_values(post, now)
                try:
                    with conn.begin_nested():
                        result = conn.execute(
                            sa.insert(posts).values(**values, fanned_out=not publish)
                        )
                    return int(result.inserted_primary_key[0]), "new", publish
                except IntegrityError:  # another daemon stored it first
                    row = conn.execute(select).one()
            if row.content_hash == post.content_hash:
                return row.id, "same", not row.fanned_out
            values = self._post_values(post, now)
            del values["first_seen_at"]
            conn.execute(
                sa.update(posts)
                .where(posts.c.id == row.id)
                .values(**values, edits=posts.c.edits + 1)
            )
            return row.id, "edited", not row.fanned_out

    def mark_fanned_out(self, post_id: int) -> None:
        """Every delivery of this post exists now."""
        with self._write() as conn:
            conn.execute(sa.update(posts).where(posts.c.id == post_id).values(fanned_out=True))

    @staticmethod
    def _post_values(post: Post, now: datetime) -> dict[str, Any]:
        return {
            "feed": post.feed,
            "guid": post.guid,
            "url": post.url,
            "title": post.title,
            "content_hash": post.content_hash,
            "data": post.to_dict(),
            "published_at": post.published or post.updated,
            "first_seen_at": now,
            "updated_at": now,
        }

    def post(self, post_id: int) -> Post:
        with self._read() as conn:
            data = conn.execute(sa.select(posts.c.data).where(posts.c.id == post_id)).scalar_one()
        return Post.from_dict(data)

    def find_posts(self, guid: str) -> list[int]:
        """Ids of posts whose guid or URL is `guid` (the CLI accepts either)."""
        with self._read() as conn:
            query = sa.select(posts.c.id).where(sa.or_(posts.c.guid == guid, posts.c.url == guid))
            return list(conn.execute(query).scalars())

    # -- deliveries: creation ----------------------------------------------------------------

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
            delivery_id = int(result.inserted_primary_key[0])
            if state == State.SKIPPED:
                self._log(conn, delivery_id, post_id, target, now, "skipped", dry_run, error=error)
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

    # -- deliveries: the dispatcher's transitions --------------------------------------------

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

    def _leave_publishing(
        self,
        conn: sa.Connection,
        delivery: Delivery,
        owner: str,
        now: datetime,
        **values: Any,
    ) -> bool:
        """Compare-and-set out of `publishing`: only the lease holder may record an outcome."""
        result = conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == delivery.id, deliveries.c.state == State.PUBLISHING.value)
            .where(deliveries.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None, updated_at=now, **values)
        )
        if result.rowcount != 1:
            log.warning(
                "delivery %s: lease lost before recording %s", delivery.id, values.get("state")
            )
            return False
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

    # -- deliveries: human actions -----------------------------------------------------------

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
            self._log(conn, delivery_id, row.post_id, row.target, now, outcome, row.dry_run)
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

    # -- targets -----------------------------------------------------------------------------

    def _ensure(self, conn: sa.Connection, table: sa.Table, **values: Any) -> None:
        key = next(iter(table.primary_key.columns)).name
        exists = conn.execute(sa.select(table.c[key]).where(table.c[key] == values[key])).first()
        if exists is None:
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(sa.insert(table).values(**values))

    def _touch_target(self, conn: sa.Connection, name: str, **values: Any) -> None:
        self._ensure(conn, targets, name=name)
        conn.execute(sa.update(targets).where(targets.c.name == name).values(**values))

    def pause_target(self, name: str, until: datetime, reason: str) -> None:
        """Hold every delivery of one target until `until` (rate limit, expired token)."""
        with self._write() as conn:
            self._touch_target(conn, name, paused_until=until, pause_reason=reason)

    def resume_target(self, name: str, now: datetime) -> None:
        """Lift a pause; the deliveries it held back are due at once."""
        with self._write() as conn:
            self._touch_target(conn, name, paused_until=None, pause_reason=None)
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.target == name, deliveries.c.state == State.PENDING.value)
                .where(deliveries.c.next_attempt_at > now)
                .values(next_attempt_at=now, updated_at=now)
            )

    def target_state(self, name: str) -> TargetState:
        with self._read() as conn:
            row = conn.execute(sa.select(targets).where(targets.c.name == name)).first()
        if row is None:
            return TargetState(name, None, None, None)
        return TargetState(**row._mapping)

    # -- daemons -----------------------------------------------------------------------------

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

    # -- log ---------------------------------------------------------------------------------

    def _log(
        self,
        conn: sa.Connection,
        delivery_id: int,
        post_id: int,
        target: str,
        now: datetime,
        outcome: str,
        dry_run: bool,
        **values: Any,
    ) -> None:
        conn.execute(
            sa.insert(publish_log).values(
                delivery_id=delivery_id,
                post_id=post_id,
                target=target,
                at=now,
                outcome=outcome,
                dry_run=dry_run,
                **values,
            )
        )

    def log_attempt(self, delivery: Delivery, now: datetime, outcome: str, **values: Any) -> None:
        """A log row without a state change (e.g. an image fallback note)."""
        with self._write() as conn:
            self._log(
                conn,
                delivery.id,
                delivery.post_id,
                delivery.target,
                now,
                outcome,
                delivery.dry_run,
                **values,
            )
