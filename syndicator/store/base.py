"""The store's foundation: engine, migrations, transactions, the shared log writer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from syndicator.models import State
from syndicator.schema import deliveries, make_engine, publish_log, targets
from syndicator.store.records import Delivery

log = logging.getLogger(__name__)

SCHEMA_REVISION = "0003"  # alembic head; checked without importing alembic on the CLI's paths
MIGRATION_LOCK = 0x53594E44  # PostgreSQL advisory lock id held while migrating


class StoreBase:
    """Engine and transactions; every other part of the store builds on these."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"

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

    def _ensure(self, conn: sa.Connection, table: sa.Table, **values: Any) -> None:
        key = next(iter(table.primary_key.columns)).name
        exists = conn.execute(sa.select(table.c[key]).where(table.c[key] == values[key])).first()
        if exists is None:
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(sa.insert(table).values(**values))

    def _touch_target(self, conn: sa.Connection, name: str, **values: Any) -> None:
        self._ensure(conn, targets, name=name)
        conn.execute(sa.update(targets).where(targets.c.name == name).values(**values))

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

    @staticmethod
    def _inserted_id(result: sa.CursorResult[Any]) -> int:
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

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
