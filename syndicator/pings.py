"""The weblogUpdates ping protocol: decode a call safely, decide which feeds it names.

WordPress core (`weblog_ping()` in wp-includes/comment.php) sends, to each "Update Services"
URL, `weblogUpdates.extendedPing(blogname, home_url, rss2_url)` and, if that fails,
`weblogUpdates.ping(blogname, home_url)`. weblogs.com's extendedPing has a fourth parameter:
(name, url, changesURL, feedURL). Either of the last two may therefore hold the feed's URL.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from pyexpat import ParserCreate
from typing import Any
from urllib.parse import urlsplit

from syndicator.config import FeedSettings

METHODS = ("weblogUpdates.ping", "weblogUpdates.extendedPing")


@dataclass(frozen=True)
class Ping:
    """One decoded ping: the blog's home URL and the feed/changes URLs it named."""

    blog_name: str
    blog_url: str
    other_urls: tuple[str, ...]


class NotAPing(ValueError):
    """A well-formed XML-RPC call that is not a ping we understand (answered with a fault)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """Decode an XML-RPC call as `xmlrpc.client.loads` does, but refuse any DTD.

    XML-RPC never has a DOCTYPE; refusing it stops entity tricks (billion laughs, external
    entities) before expat expands anything, whatever encoding the body declares.
    """
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = ParserCreate(None, None)
    parser.StartElementHandler = unmarshaller.start
    parser.EndElementHandler = unmarshaller.end
    parser.CharacterDataHandler = unmarshaller.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    # As xmlrpc's own ExpatParser does: expat hands over str, so nothing is decoded twice.
    unmarshaller.xml(None, None)  # type: ignore[arg-type]
    parser.Parse(body, True)
    params = unmarshaller.close()
    return unmarshaller.getmethodname() or "", params


def _refuse_dtd(*_: object) -> None:
    raise ValueError("a DTD has no place in an XML-RPC call")


def to_ping(method: str, params: tuple[Any, ...]) -> Ping:
    """Check a decoded call is a weblogUpdates ping; NotAPing (with a fault code) if not."""
    if method not in METHODS:
        raise NotAPing(-32601, f"method {method!r} not supported")
    if len(params) < 2 or not all(isinstance(p, str) for p in params):
        raise NotAPing(-32602, "expected string parameters (blogName, blogURL, ...)")
    return Ping(blog_name=params[0], blog_url=params[1], other_urls=tuple(params[2:4]))


def is_about(ping: Ping, feed_url: str) -> bool:
    """True when the ping is about the feed at `feed_url`.

    Either one of its URLs is the feed's URL, or its blog URL has the feed's host and a
    path the feed's path lies under. Schemes, ports and trailing slashes are ignored.
    """
    feed = _url_key(feed_url)
    if feed is None:
        return False
    if any(_url_key(url) == feed for url in ping.other_urls):
        return True
    blog = _url_key(ping.blog_url)
    if blog is None or blog[0] != feed[0]:
        return False
    return feed[1] == blog[1] or feed[1].startswith(blog[1] + "/")


def _url_key(url: str) -> tuple[str, str, str] | None:
    """(host, path without trailing slash, query), or None for what is not a URL."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    return (host.lower(), parts.path.rstrip("/"), parts.query) if host else None


def matching(ping: Ping, feeds: Sequence[FeedSettings]) -> list[str]:
    """Names of the configured feeds this ping is about."""
    return [feed.name for feed in feeds if is_about(ping, feed.url)]
