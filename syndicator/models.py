"""Plain data shared by the core and the connectors: no I/O here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Image:
    """An image a post carries, by URL, with the alt text the author wrote."""

    url: str
    alt: str = ""


@dataclass(frozen=True)
class Post:
    """One feed entry, mapped to what syndicator needs; identity is (feed, guid)."""

    feed: str
    guid: str
    url: str
    title: str
    summary: str = ""
    content_html: str = ""
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None
    link: str | None = None  # a short link made for the one target being prepared

    @property
    def content_hash(self) -> str:
        """Hash of what a reader sees; a changed hash under the same guid is an edit."""
        parts = [self.url, self.title, self.summary, self.content_html, *self.categories, "|"]
        parts += [*self.tags, "|", *(f"{i.url} {i.alt}" for i in self.images)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in the database."""
        data = asdict(self)
        for key in ("published", "updated"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Post:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for key in ("published", "updated"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        values["categories"] = tuple(values.get("categories", ()))
        values["tags"] = tuple(values.get("tags", ()))
        values["images"] = tuple(Image(**i) for i in values.get("images", ()))
        return cls(**values)


@dataclass(frozen=True)
class Card:
    """A link preview built client-side (LinkedIn, Bluesky do not scrape)."""

    url: str
    title: str
    description: str = ""
    image: Image | None = None


@dataclass(frozen=True)
class Draft:
    """Exactly what one platform will get for one post; stored before anything is sent."""

    text: str
    link: str | None = None
    images: tuple[Image, ...] = ()
    album: str | None = None
    card: Card | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in the delivery and the publish log."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Draft:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["images"] = tuple(Image(**i) for i in values.get("images", ()))
        card = values.get("card")
        if card:
            image = card.get("image")
            values["card"] = Card(**{**card, "image": Image(**image) if image else None})
        values["notes"] = tuple(values.get("notes", ()))
        return cls(**values)

    @property
    def payload_hash(self) -> str:
        """Stable hash of the payload; approval pins it."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """What a platform answered for a post that landed."""

    remote_id: str
    url: str | None = None


@dataclass(frozen=True)
class AccountInfo:
    """What `check --online` reports about a target's credentials."""

    account: str
    expires_at: datetime | None = None
    details: tuple[str, ...] = ()


class State(StrEnum):
    """Life of a delivery (one post on one target). See store.py for the transitions."""

    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"


FINAL_STATES = frozenset({State.PUBLISHED, State.CANCELLED, State.SKIPPED, State.DRY_RUN})


def utcnow() -> datetime:
    """Timezone-aware now; the one clock the core reads."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ImageFile:
    """Image bytes ready to upload: already checked and fitted to one platform's limits."""

    data: bytes
    mime: str
    width: int
    height: int
    alt: str = ""
    source_url: str = ""
