"""Read-only queries behind the CLI and `status`: listing, showing, counting. Paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syndicator.schema import daemons, deliveries, feeds, posts, publish_log
from syndicator.store import _DELIVERY_COLUMNS, Delivery, Store, _delivery


def list_deliveries(
    store: Store,
    *,
    state: str | None = None,
    target: str | None = None,
    post_ids: list[int] | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Delivery]:
    """Newest first; `before_id` pages backwards without OFFSET scans."""
    query = sa.select(*_DELIVERY_COLUMNS).join(posts, posts.c.id == deliveries.c.post_id)
    if state:
        query = query.where(deliveries.c.state == state)
    if target:
        query = query.where(deliveries.c.target == target)
    if post_ids is not None:
        query = query.where(deliveries.c.post_id.in_(post_ids))
    if before_id:
        query = query.where(deliveries.c.id < before_id)
    query = query.order_by(deliveries.c.id.desc()).limit(limit)
    with store._read() as conn:
        return [_delivery(row) for row in conn.execute(query)]


def get_delivery(store: Store, delivery_id: int) -> Delivery | None:
    query = (
        sa.select(*_DELIVERY_COLUMNS)
        .join(posts, posts.c.id == deliveries.c.post_id)
        .where(deliveries.c.id == delivery_id)
    )
    with store._read() as conn:
        row = conn.execute(query).first()
    return _delivery(row) if row else None


def log_entries(
    store: Store,
    *,
    target: str | None = None,
    post_ids: list[int] | None = None,
    delivery_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Publish-log rows, newest first, with the post's guid and title."""
    query = (
        sa.select(
            publish_log.c.id,
            publish_log.c.at,
            publish_log.c.delivery_id,
            publish_log.c.target,
            publish_log.c.outcome,
            publish_log.c.remote_url,
            publish_log.c.error,
            publish_log.c.duration_ms,
            publish_log.c.dry_run,
            posts.c.guid.label("post_guid"),
            posts.c.title.label("post_title"),
        )
        .join(posts, posts.c.id == publish_log.c.post_id)
        .order_by(publish_log.c.id.desc())
        .limit(limit)
    )
    if target:
        query = query.where(publish_log.c.target == target)
    if post_ids is not None:
        query = query.where(publish_log.c.post_id.in_(post_ids))
    if delivery_id is not None:
        query = query.where(publish_log.c.delivery_id == delivery_id)
    with store._read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def counts_by_state(store: Store) -> dict[str, dict[str, int]]:
    """{target: {state: count}}."""
    query = sa.select(deliveries.c.target, deliveries.c.state, sa.func.count()).group_by(
        deliveries.c.target, deliveries.c.state
    )
    result: dict[str, dict[str, int]] = {}
    with store._read() as conn:
        for target, state, count in conn.execute(query):
            result.setdefault(target, {})[state] = count
    return result


def live_daemons(store: Store, since: datetime) -> list[dict[str, Any]]:
    """Daemons whose heartbeat is newer than `since`, with what each holds."""
    held = (
        sa.select(deliveries.c.lease_owner, sa.func.count().label("held"))
        .where(deliveries.c.lease_owner.is_not(None))
        .group_by(deliveries.c.lease_owner)
        .subquery()
    )
    query = (
        sa.select(*daemons.c, sa.func.coalesce(held.c.held, 0).label("held"))
        .outerjoin(held, held.c.lease_owner == daemons.c.id)
        .where(daemons.c.heartbeat_at >= since)
        .order_by(daemons.c.started_at)
    )
    with store._read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        feed_rows = conn.execute(sa.select(feeds.c.name, feeds.c.lease_owner)).all()
    for row in rows:
        row["feeds"] = [name for name, owner in feed_rows if owner == row["id"]]
    return rows
