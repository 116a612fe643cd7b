"""AT Protocol data helpers for the Bluesky connector: record keys and rich-text facets.

Pure functions, no I/O, so the exact bytes Bluesky gets can be tested without a server.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
# Record-key timestamps fall in a fixed 2**40 µs (12.7 days) window from this date: a
# delivery's key carries no time, and an rkey must never change between attempts.
_BASE_MICROS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_SPAN_MICROS = 2**40

_URL = re.compile(r"(?<![^\s(])https?://\S+")
# Bluesky's own hashtag rule: after a space or at the start, up to a space or invisible joiner.
_TAG = re.compile(r"(?<!\S)[#＃]([^\s\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2]+)")
_URL_TRAILING = ".,;:!?\"'"
TAG_MAX = 64


def tid(micros: int, clock: int) -> str:
    """A TID: 53 bits of microseconds since the epoch and a 10-bit clock id, in 13 chars."""
    if not (0 <= micros < 2**53 and 0 <= clock < 1024):
        raise ValueError("TID timestamp or clock id out of range")
    value = (micros << 10) | clock
    return "".join(TID_CHARS[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def record_key(*parts: str) -> str:
    """A TID derived only from `parts`: the same on every attempt, in every process.

    50 bits come from a hash (40 of time, 10 of clock id), so two deliveries collide with
    a probability of about n²/2⁵¹.
    """
    digest = int.from_bytes(hashlib.sha256("\n".join(parts).encode()).digest()[:8], "big")
    return tid(_BASE_MICROS + (digest >> 10) % _SPAN_MICROS, digest & 1023)


def facets(text: str) -> list[dict[str, Any]]:
    """Link and hashtag facets of `text`, indexed by UTF-8 byte offsets as Bluesky requires.

    Bluesky does not detect links itself: without a facet a URL is plain, unclickable text.
    """
    found = [_link(m) for m in _URL.finditer(text)] + [_tag(m) for m in _TAG.finditer(text)]
    spans = sorted((f for f in found if f is not None), key=lambda span: span[0])
    return [
        {"index": {"byteStart": _bytes(text, start), "byteEnd": _bytes(text, end)}, "features": [f]}
        for start, end, f in spans
    ]


def _link(match: re.Match[str]) -> tuple[int, int, dict[str, Any]] | None:
    """A link span, without sentence punctuation or an unbalanced closing parenthesis."""
    url = match.group()
    while url and (url[-1] in _URL_TRAILING or (url[-1] == ")" and "(" not in url)):
        url = url[:-1]
    if len(url) <= len("https://"):
        return None
    feature = {"$type": "app.bsky.richtext.facet#link", "uri": url}
    return match.start(), match.start() + len(url), feature


def _tag(match: re.Match[str]) -> tuple[int, int, dict[str, Any]] | None:
    """A hashtag span: not all digits, no trailing punctuation, at most 64 characters."""
    tag = match.group(1)
    while tag and unicodedata.category(tag[-1]).startswith("P"):
        tag = tag[:-1]
    meaningful = any(not c.isdigit() and not unicodedata.category(c).startswith("P") for c in tag)
    if not meaningful or tag.startswith("\ufe0f") or len(tag) > TAG_MAX:
        return None
    feature = {"$type": "app.bsky.richtext.facet#tag", "tag": tag}
    return match.start(), match.start(1) + len(tag), feature


def _bytes(text: str, index: int) -> int:
    """The UTF-8 byte offset of character `index`."""
    return len(text[:index].encode("utf-8"))
