"""A draft for one (post, target): the short link first (made once, stored), then the
connector's own `prepare`. The poller uses it for new posts and for edits."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from syndicator import render
from syndicator.config import Settings, TargetSettings
from syndicator.connector import Connector
from syndicator.errors import ConnectorError
from syndicator.models import Draft, Post
from syndicator.store import Store

if TYPE_CHECKING:
    from syndicator.shorten import Bitly

log = logging.getLogger(__name__)


class ShortLinkWait(Exception):
    """bit.ly failed and the target's policy is to wait for it (on_shortener_error = "wait")."""


class Drafter:
    """Prepares drafts; holds the bit.ly client, created on first use."""

    def __init__(self, settings: Settings, store: Store, connectors: dict[str, Connector]) -> None:
        self.settings = settings
        self.store = store
        self.connectors = connectors
        self._bitly: Bitly | None = None

    def draft(
        self, post_id: int, post: Post, target: TargetSettings, *, live: bool, now: datetime
    ) -> Draft:
        """The exact payload; a live target with `shorten` gets its own short link."""
        connector = self.connectors[target.name]
        if not (live and target.shorten):
            return connector.prepare(post)
        try:
            short = self._short_link(post_id, post, target, now)
        except ConnectorError as exc:
            if target.on_shortener_error == "wait":
                raise ShortLinkWait(f"bit.ly: {exc}") from None
            log.warning(
                "post %r target %s: bit.ly failed, long URL kept: %s", post.guid, target.name, exc
            )
            draft = connector.prepare(post)
            return replace(draft, notes=(*draft.notes, f"long URL kept: bit.ly failed: {exc}"))
        return connector.prepare(replace(post, link=short))

    def _short_link(self, post_id: int, post: Post, target: TargetSettings, now: datetime) -> str:
        """Stored once per (post, target); bit.ly answers the same bitlink for a long URL it
        has seen, so a crash between making and storing cannot make a second one."""
        stored = self.store.short_link(post_id, target.name)
        if stored:
            return stored
        long_url = render.target_link(post, target.text)
        short = self._client().shorten(long_url)
        return self.store.save_short_link(post_id, target.name, long_url, short, now)

    def _client(self) -> Bitly:
        from syndicator.shorten import bitly_for

        if self._bitly is None:
            self._bitly = bitly_for(self.settings)
            assert self._bitly is not None  # config refuses `shorten` without [bitly]
        return self._bitly
