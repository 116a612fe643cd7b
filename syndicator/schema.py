"""Table definitions and engine set-up. Imported only by store.py and the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL compares fine."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("initialized", sa.Boolean, nullable=False, default=False),
    sa.Column("last_poll_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("next_poll_at", UTCDateTime),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_until", UTCDateTime),
)

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed", sa.String(200), nullable=False),
    sa.Column("guid", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("published_at", UTCDateTime),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("edits", sa.Integer, nullable=False, default=0),
    sa.Column("fanned_out", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("feed", "guid", name="uq_posts_feed_guid"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("claimed_from", sa.String(32)),
    sa.Column("payload", sa.JSON),
    sa.Column("payload_hash", sa.String(64)),
    sa.Column("approved_hash", sa.String(64)),
    sa.Column("remote_id", sa.Text),
    sa.Column("remote_url", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("post_id", "target", name="uq_deliveries_post_target"),
    sa.Index("ix_deliveries_state_due", "state", "next_attempt_at"),
    sa.Index("ix_deliveries_target_state", "target", "state"),
    sa.Index("ix_deliveries_state_id", "state", "id"),  # `queue list --state`, newest first
)

publish_log = sa.Table(
    "publish_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("remote_id", sa.Text),
    sa.Column("remote_url", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("payload", sa.JSON),
    sa.Index("ix_publish_log_target_at", "target", "at"),
    sa.Index("ix_publish_log_target_id", "target", "id"),  # `log --target`, newest first
    sa.Index("ix_publish_log_post", "post_id"),
    sa.Index("ix_publish_log_delivery", "delivery_id"),
)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("paused_until", UTCDateTime),
    sa.Column("pause_reason", sa.Text),
    sa.Column("last_publish_at", UTCDateTime),
    sa.Column("metrics_error", sa.Text),  # a platform refused engagement reads: said once
)

engagement = sa.Table(
    "engagement",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("age", sa.String(16), nullable=False),  # the fetch-back step: "1h", "1d", "7d", "30d"
    sa.Column("counters", sa.JSON, nullable=False),  # {"likes": 3, "shares": 1, "clicks": 9, ...}
    sa.UniqueConstraint("delivery_id", "age", name="uq_engagement_delivery_age"),
    sa.Index("ix_engagement_at", "at"),
)

short_links = sa.Table(
    "short_links",
    metadata,
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), primary_key=True),
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("long_url", sa.Text, nullable=False),
    sa.Column("short_url", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

daemons = sa.Table(
    "daemons",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine with SQLite tuned for a daemon and a CLI working at once (WAL, busy timeout)."""
    if not url.startswith("sqlite"):
        # dispatch threads (one per target, up to 8) + scheduler jobs + listener
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(conn: sa.Connection) -> None:
        # Writers take the lock up front, so two writers queue on busy_timeout instead of
        # failing with "database is locked" when a read transaction tries to upgrade.
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine
