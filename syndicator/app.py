"""Wiring: settings → store, connectors, poller, dispatcher. Shared by the daemon and the CLI."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

from syndicator import registry
from syndicator.config import Settings
from syndicator.connector import Connector, Limits
from syndicator.dispatcher import Dispatcher
from syndicator.metrics import Metrics
from syndicator.models import Image, ImageFile, utcnow
from syndicator.poller import Poller, PollResult
from syndicator.store import Store

log = logging.getLogger(__name__)


def daemon_id() -> str:
    """Unique per process: host, pid and a random suffix (pids are reused after restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ImageLoader:
    """Hands connectors one image cache per dispatch tick, so a post's images are fetched once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._cache: object | None = None

    def fresh(self) -> None:
        """Start a new cache (called before each tick; the old one is garbage)."""
        with self._lock:
            self._cache = None

    def __call__(self, image: Image, limits: Limits) -> ImageFile:
        from syndicator.media import ImageCache, MediaPolicy

        # One lock: target threads wanting the same image wait for the first download.
        with self._lock:
            if self._cache is None:
                policy = MediaPolicy(
                    allowed_private_hosts=self.settings.allow_private_hosts,
                    user_agent=self.settings.user_agent,
                )
                self._cache = ImageCache(policy)
            assert isinstance(self._cache, ImageCache)
            return self._cache.load(image, limits)


@dataclass
class App:
    """Everything one process needs to poll and publish."""

    settings: Settings
    store: Store
    connectors: dict[str, Connector]
    images: ImageLoader
    owner: str = field(default_factory=daemon_id)

    @classmethod
    def build(cls, settings: Settings, *, migrate: bool = True) -> App:
        """Open the store (migrating it) and instantiate every enabled connector."""
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        images = ImageLoader(settings)
        connectors = registry.build(settings, images)
        store = Store(settings.database)
        if migrate:
            store.migrate()
        return cls(settings, store, connectors, images)

    def poller(self) -> Poller:
        return Poller(self.settings, self.store, self.connectors)

    def dispatcher(self, metrics: Metrics | None = None) -> Dispatcher:
        return Dispatcher(self.settings, self.store, self.connectors, self.owner, metrics=metrics)

    def poll_due_feeds(self, *, force: bool = False) -> list[PollResult]:
        """Poll every feed whose lease this process wins (all of them, with one daemon)."""
        results = []
        poller = self.poller()
        for feed in self.settings.feeds:
            now = utcnow()
            if force or self.store.claim_feed(feed.name, feed.url, self.owner, now, feed.interval):
                results.append(poller.poll(feed, now))
        return results

    def run_once(self) -> tuple[list[PollResult], Counter[str]]:
        """One poll of every feed, then dispatch everything due (cron and tests)."""
        results = self.poll_due_feeds(force=True)
        dispatcher = self.dispatcher()
        try:
            self.images.fresh()
            counts = dispatcher.tick()
        finally:
            dispatcher.close()
        return results, counts

    def close(self) -> None:
        self.store.close()
