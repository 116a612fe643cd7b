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
    """One platform account. Preview and dry-run call `prepare` only; live adds `publish`.

    A connector that can read a post's counters back also has the optional members of
    `ReadsMetrics` (`metrics`, `fetch_metrics`).
    """

    name: ClassVar[str]
    limits: ClassVar[Limits]
    secret_keys: ClassVar[tuple[str, ...]]
    can_lookup: ClassVar[bool]
    # optional: `option_keys: ClassVar[frozenset[str]]`, the connector's own config keys;
    # when declared, the registry refuses any other key in the target's table

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


COUNTERS = (
    "likes",
    "shares",
    "comments",
    "quotes",
    "bookmarks",
    "impressions",
    "clicks",
    "link_clicks",  # bit.ly's count for the target's short link (see shorten.py)
)
"""The counter names connectors report, whatever the platform calls them: likes are
favourites, likes or reactions; shares are reblogs, reposts, retweets or reshares; comments
are replies or first-level comments. A connector may add its own names; objectives use these."""


@runtime_checkable
class ReadsMetrics(Protocol):
    """Optional members of a Connector that reads a post's public counters back.

    Not part of `Connector`, so connectors without them (third-party ones, say) still load:
    `metric_names` treats them as reading nothing.
    """

    metrics: ClassVar[tuple[str, ...]]

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        """The post's counters now, named from `metrics`; one request or a few, no retry.

        {} when the post no longer exists. Raises the connector error kinds: RateLimited or
        RetryableError (try later), AuthExpired or PermanentError (the platform refuses
        these reads to this account: stop asking).
        """


def metric_names(connector: object) -> tuple[str, ...]:
    """The counters a connector can read; () when it declares none or declares them wrongly."""
    names = getattr(connector, "metrics", ())
    if not callable(getattr(connector, "fetch_metrics", None)) or not isinstance(names, tuple):
        return ()
    return tuple(name for name in names if isinstance(name, str) and name)
