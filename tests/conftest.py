"""Shared fixtures: a local feed server, a config writer, a store on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from hypothesis import settings
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from syndicator import registry
from syndicator.models import utcnow
from tests import fakes
from tests.fakes import Entry, rss

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

# The suite replays the same examples every run (CI must not fail on a new random draw);
# `HYPOTHESIS_PROFILE=explore make test` searches afresh.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
PG_URL = os.environ.get("SYNDICATOR_TEST_DATABASE_URL")


@pytest.fixture(autouse=True)
def fake_connector_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register tests.fakes:FakeConnector under the real entry-point group."""
    real = registry.available

    def available() -> dict[str, EntryPoint]:
        found = real()
        found["fake"] = EntryPoint("fake", "tests.fakes:FakeConnector", registry.GROUP)
        return found

    monkeypatch.setattr(registry, "available", available)
    fakes.PLATFORMS.clear()
    yield
    fakes.PLATFORMS.clear()


class FeedServer:
    """A feed on 127.0.0.1 whose entries a test changes between polls; honours ETags."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.entries: list[Entry] = []
        self.requests = 0
        self.conditional_hits = 0
        server.expect_request("/feed.xml").respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/feed.xml")

    def add(
        self,
        guid: str,
        title: str | None = None,
        *,
        age: timedelta = timedelta(hours=1),
        **kw: object,
    ) -> Entry:
        entry = Entry(guid=guid, title=title or f"Post {guid}", published=utcnow() - age, **kw)  # type: ignore[arg-type]
        self.entries.insert(0, entry)
        return entry

    def body(self) -> str:
        return rss(self.entries)

    def _handle(self, request: Request) -> Response:
        self.requests += 1
        body = self.body()
        etag = f'"{abs(hash(body))}"'
        if request.headers.get("If-None-Match") == etag:
            self.conditional_hits += 1
            return Response(status=304, headers={"ETag": etag})
        return Response(
            body, content_type="application/rss+xml; charset=UTF-8", headers={"ETag": etag}
        )


@pytest.fixture
def feed_server(httpserver: HTTPServer) -> FeedServer:
    return FeedServer(httpserver)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite in tmp_path, or a fresh schema on the PostgreSQL given by the environment."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture
def write_config(tmp_path: Path, database_url: str):
    """Write a config TOML; `{db}` and `{state}` are filled in."""

    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(
            text.replace("{db}", database_url).replace("{state}", str(tmp_path / "state"))
        )
        return path

    return write
