"""Alembic migrations of the syndicator schema."""
