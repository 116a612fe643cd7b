"""Test doubles at the boundary: a scripted in-memory platform behind a real-looking connector,
and an RSS builder for the local feed server."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from syndicator.connector import ConnectorContext, Limits
from syndicator.errors import ConfigError
from syndicator.models import AccountInfo, Draft, Post, Receipt
from syndicator.render import render

PLATFORMS: dict[str, FakePlatform] = {}


@dataclass
class FakePlatform:
    """What a platform received, and the failures it should answer with next."""

    posts: list[tuple[str, Draft]] = field(default_factory=list)
    script: list[BaseException | None] = field(default_factory=list)
    land_before_failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def texts(self) -> list[str]:
        return [draft.text for _, draft in self.posts]


class FakeConnector:
    """Registered under the entry-point group in tests exactly like a real connector."""

    name: ClassVar[str] = "fake"
    limits: ClassVar[Limits] = Limits(max_chars=500, url_length=23)
    secret_keys: ClassVar[tuple[str, ...]] = ("token",)
    can_lookup: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        if "platform" not in options:
            raise ConfigError("platform: required")
        self.platform = PLATFORMS.setdefault(options["platform"], FakePlatform())
        self.context = context

    def prepare(self, post: Post) -> Draft:
        return Draft(
            text=render(post, self.context.text, self.limits), link=post.url, images=post.images[:1]
        )

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        with self.platform.lock:
            step = self.platform.script.pop(0) if self.platform.script else None
            if step is None or self.platform.land_before_failing:
                self.platform.posts.append((key, draft))
            if step is not None:
                raise step
            return Receipt(remote_id=key, url=f"https://fake.example/{key}")

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        found = any(k == key for k, _ in self.platform.posts)
        return Receipt(remote_id=key, url=f"https://fake.example/{key}") if found else None

    def check(self) -> AccountInfo:
        return AccountInfo(account="@fake")


@dataclass
class Entry:
    """One RSS item for the feed builder."""

    guid: str
    title: str
    link: str = ""
    published: datetime | None = None
    categories: tuple[str, ...] = ()
    content: str = ""

    def xml(self) -> str:
        link = self.link or f"https://blog.example/{self.guid}"
        cats = "".join(f"<category>{escape(c)}</category>" for c in self.categories)
        date = self.published.strftime("%a, %d %b %Y %H:%M:%S +0000") if self.published else ""
        return (
            f"<item><title>{escape(self.title)}</title><link>{escape(link)}</link>"
            f'<guid isPermaLink="false">{escape(self.guid)}</guid>'
            + (f"<pubDate>{date}</pubDate>" if date else "")
            + f"{cats}<description>{escape(self.content or self.title)}</description></item>"
        )


def rss(entries: list[Entry]) -> str:
    """A WordPress-like RSS 2.0 document."""
    items = "".join(e.xml() for e in entries)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>Test blog</title><link>https://blog.example/</link>"
        f"<description>test</description>{items}</channel></rss>"
    )
