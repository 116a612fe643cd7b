"""Migrations: the models and the alembic chain agree, and an old database upgrades."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from syndicator.schema import metadata
from syndicator.store import SCHEMA_REVISION, Store


def test_schema_revision_constant_is_the_alembic_head():
    config = Config()
    config.set_main_option("script_location", "syndicator:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_migrations_produce_exactly_the_declared_tables(database_url):
    store = Store(database_url)
    store.migrate()
    assert store.revision() == SCHEMA_REVISION
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    store.migrate()  # a second start is a no-op
    store.close()


def test_a_first_schema_database_upgrades_in_place(database_url):
    from alembic import command

    store = Store(database_url)
    config = Config()
    config.set_main_option("script_location", "syndicator:migrations")
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.commit()
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO targets (name) VALUES ('old')"))
    store.migrate()
    assert store.revision() == SCHEMA_REVISION
    assert store.target_state("old").name == "old"
    store.close()
