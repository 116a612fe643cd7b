r"""LinkedIn's "little" text format, in which the Posts API reads a post's `commentary`.

Its reserved characters `\ | { } @ [ ] ( ) < > # * _ ~` must be backslash-escaped even where
they form no element; an unescaped one makes LinkedIn cut the post short without an error.
Hashtags are sent as `{hashtag|\#|Tag}` templates, the form LinkedIn itself returns. Links are
not backslash-escaped (users report that it breaks them, e.g. `utm\_source`): the reserved
characters a link may hold are percent-encoded instead, which leaves the address the same.
"""

from __future__ import annotations

import re

import regex

_RESERVED = frozenset("\\|{}@[]()<>#*_~")
# Percent-encoded inside links: the same address, and no markup for LinkedIn's parser. `_`, `~`
# (unreserved) and `#` (the fragment) stay: encoding them would change or break UTM links.
_IN_URL = frozenset("\\|{}@[]()<>*")
URL = re.compile(r"https?://[^\s<>\"\\]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"…"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_HASHTAG = regex.compile(
    r"(?<![\p{L}\p{M}\p{Nd}_#&\\])#([\p{L}\p{M}\p{Nd}]*\p{L}[\p{L}\p{M}\p{Nd}]*)(?![\w\p{M}])"
)


def to_little(text: str) -> str:
    """Plain text as a little-format `commentary`: escaped, with hashtags and intact links."""
    out, pos = [], 0
    for match in URL.finditer(text):
        end = match.start() + len(trim_url(match.group()))
        out += [_escape_text(text[pos : match.start()]), _encode_url(text[match.start() : end])]
        pos = end
    out.append(_escape_text(text[pos:]))
    return "".join(out)


def trim_url(url: str) -> str:
    """The URL without the sentence punctuation or unbalanced bracket that follows it."""
    while url and (
        url[-1] in _TRAILING
        or (url[-1] in _CLOSERS and url.count(url[-1]) > url.count(_CLOSERS[url[-1]]))
    ):
        url = url[:-1]
    return url


def _escape_text(text: str) -> str:
    """Escape reserved characters; hashtags become hashtag templates."""
    out, pos = [], 0
    for match in _HASHTAG.finditer(text):
        out += [_escape(text[pos : match.start()]), "{hashtag|\\#|" + match.group(1) + "}"]
        pos = match.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _RESERVED else c for c in text)


def _encode_url(url: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _IN_URL else c for c in url)
