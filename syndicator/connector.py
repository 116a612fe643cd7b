"""The contract between the core and a platform connector.

A connector is a class registered under the ``syndicator.connectors`` entry-point group.
Built-in connectors are registered exactly like third-party ones (see pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from syndicator.models import AccountInfo, Draft, Image, ImageFile, Post, Receipt

Counting = Literal["chars", "graphemes", "twitter"]


@dataclass(frozen=True)
class Limits:
    """A platform's limits, declared as data so the core applies them the same way for all."""

    max_chars: int
    counting: Counting = "chars"
    url_length: int | None = None
    max_images: int = 4
    max_image_bytes: int = 5_000_000
    max_image_side: int | None = None
    image_types: tuple[str, ...] = ("image/jpeg", "image/png")


@dataclass(frozen=True)
class TextOptions:
    """How a target wants its text: template, hashtags, UTM parameters."""

    template: str = "{title}\n\n{url}\n\n{hashtags}"
    max_hashtags: int = 3
    hashtags_from: tuple[str, ...] = ("categories", "tags")
    utm: Mapping[str, str] = field(default_factory=dict)


ImageLoader = Callable[[Image, Limits], ImageFile]
"""Fetches an image (once per post) and fits it to the given limits; raises MediaError."""


@dataclass(frozen=True)
class ConnectorContext:
    """What the core hands every connector: its target's name and shared services."""

    target: str
    text: TextOptions
    state_dir: Path
    load_image: ImageLoader
    user_agent: str = "syndicator"
    timeout: float = 30.0


@runtime_checkable
class Connector(Protocol):
    """One platform account. Preview and dry-run call `prepare` only; live adds `publish`."""

    name: ClassVar[str]
    limits: ClassVar[Limits]
    secret_keys: ClassVar[tuple[str, ...]]
    can_lookup: ClassVar[bool]

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (raise ConfigError); no I/O."""

    def prepare(self, post: Post) -> Draft:
        """Pure: the exact text, images, album and link card this platform will get."""

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """One attempt; no sleeping, no retrying. `key` is stable per delivery."""

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """Did an earlier attempt with this key or link land? None when it did not."""

    def check(self) -> AccountInfo:
        """Are the credentials valid; which account; when does the token expire."""
