"""Text for every platform: template, hashtags, UTM, length counting, safe truncation.

One module for all connectors, so preview, dry-run and publish show the same text and the
core can measure any draft by the platform's own rule.
"""

from __future__ import annotations

import html
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote_plus, unquote_plus, urlsplit, urlunsplit

import regex

from syndicator.connector import Limits, TextOptions
from syndicator.errors import ConfigError, PermanentError
from syndicator.models import Post

FIELDS = frozenset({"title", "url", "summary", "hashtags", "categories"})
ELLIPSIS = "…"

# WordPress's default category in common locales, folded as `_fold` does: never a hashtag.
MAX_CATEGORIES = 50  # a post with more is hostile or broken; the rest are ignored
DEFAULT_CATEGORIES = frozenset(
    {
        "uncategorized",
        "uncategorised",
        "nonclasse",
        "sincategoria",
        "senzacategoria",
        "semcategoria",
        "allgemein",
        "ongecategoriseerd",
        "bezkategorii",
    }
)

_WORD = regex.compile(r"[\p{L}\p{M}\p{Nd}]+")
_LETTER = regex.compile(r"\p{L}")
_GRAPHEME = regex.compile(r"\X")
# Whitespace that may be collapsed and cut at; no-break spaces (French «  ?») are kept.
_SPACES = regex.compile(r"[^\S\u00a0\u2007\u202f]+")
_BLOCK_TAG = regex.compile(r"<\s*/?\s*(?:p|br|div|li|h[1-6]|blockquote|tr|td)\b[^>]*>", regex.I)
_TAG = regex.compile(r"<[^>]*>")
_READ_MORE = regex.compile(r"\s*\[(?:…|\.\.\.)\]\s*$")
_UNSENDABLE = regex.compile(r"[\p{Cs}\p{Noncharacter_Code_Point}\ufeff]")
_BLANK_LINES = regex.compile(r"\n{3,}")
_TRIM_BEFORE_ELLIPSIS = " .,;:-–—"


@dataclass(frozen=True)
class _Parts:
    """The values a template is filled with; truncation shrinks them one at a time."""

    title: str
    summary: str
    url: str
    hashtags: tuple[str, ...]
    categories: tuple[str, ...]


def validate_template(template: str) -> None:
    """Raise ConfigError for unknown or formatted fields, so a typo fails at load time."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"invalid template: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            raise ConfigError(f"unknown field {{{name}}} in template")
        if spec or conversion:
            raise ConfigError(f"field {{{name}}} in template takes no format or conversion")


def target_link(post: Post, options: TextOptions) -> str:
    """The URL a target publishes: its short link when one was made (it already wraps the
    UTM-tagged URL), else the post's URL with the target's UTM parameters."""
    return post.link or with_utm(post.url, options.utm)


def with_utm(url: str, utm: Mapping[str, str]) -> str:
    """`url` with the target's UTM parameters; keys without `utm_` get it, same keys replaced."""
    if not utm:
        return url
    params = {(k if k.startswith("utm_") else f"utm_{k}"): v for k, v in utm.items()}
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and unquote_plus(p.split("=")[0]) not in params]
    added = [f"{quote_plus(k)}={quote_plus(v)}" for k, v in params.items()]
    return urlunsplit(parts._replace(query="&".join(kept + added)))


def hashtags(post: Post, options: TextOptions) -> list[str]:
    """'#CamelCase' tags from the post's categories and/or tags, deduplicated, capped."""
    sources = {"categories": post.categories, "tags": post.tags}
    result: list[str] = []
    seen: set[str] = set()
    for source in options.hashtags_from:
        if source not in sources:
            raise ConfigError(f"unknown hashtags_from source {source!r}")
        for name in sources[source][:MAX_CATEGORIES]:
            tag = _hashtag(name)
            if tag and tag.casefold() not in seen and len(result) < options.max_hashtags:
                seen.add(tag.casefold())
                result.append(tag)
    return result


def _hashtag(name: str) -> str | None:
    """'Événements spéciaux' -> '#ÉvénementsSpéciaux'; None without a letter or for a default."""
    words = _WORD.findall(unicodedata.normalize("NFC", name))
    if len(words) > 1:
        words = [w[:1].upper() + w[1:] for w in words]
    tag = "".join(words)
    if not _LETTER.search(tag) or _fold(tag) in DEFAULT_CATEGORIES:
        return None
    return "#" + tag


def _fold(name: str) -> str:
    """Case- and accent-insensitive key of a name, without spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if unicodedata.category(c)[0] in "LN")


def count(text: str, limits: Limits) -> int:
    """Length of `text` by the platform's own rule (see Limits.counting)."""
    text = unicodedata.normalize("NFC", text)
    if limits.counting == "twitter":
        from twitter_text import parse_tweet  # ~100 ms and 9 MB: only when a target counts so

        return parse_tweet(text).weightedLength
    if limits.counting == "graphemes":
        return len(_GRAPHEME.findall(text))
    length = len(text)
    if limits.url_length is not None:
        # twitter-text's extractor is what Mastodon itself uses to find the URLs it discounts
        from twitter_text import extract_urls_with_indices

        for url in extract_urls_with_indices(text, extract_urls_without_protocol=False):
            start, end = url["indices"]
            length += limits.url_length - (end - start)
    return length


def render(post: Post, options: TextOptions, limits: Limits, *, link: str | None = None) -> str:
    """The post's text for one platform, fitted to `limits.max_chars`.

    When too long: the summary is shortened first, then the title (at a word boundary,
    ending with "…"), then hashtags and category names are dropped from the end. The link
    and hashtags are never cut. PermanentError when the template's own text and the link
    alone do not fit.
    """
    validate_template(options.template)
    # Nothing longer than a few posts' worth is ever needed: hostile sizes stay cheap to fit.
    budget = 20 * limits.max_chars + 1000  # code points: a grapheme may hold a dozen
    categories = [
        _clean(c[:budget])
        for c in post.categories[:MAX_CATEGORIES]
        if _fold(c) not in DEFAULT_CATEGORIES
    ]
    parts = _Parts(
        title=_clean(post.title[:budget]),
        summary=_excerpt(post.summary[:budget]),
        url=link if link is not None else target_link(post, options),
        hashtags=tuple(hashtags(post, options)),
        categories=tuple(c for c in categories if c),
    )
    return _fit(options.template, parts, limits)


def _fit(template: str, parts: _Parts, limits: Limits) -> str:
    """Shrink `parts` step by step until the filled template fits."""

    def fits(candidate: _Parts) -> bool:
        return count(_fill(template, candidate), limits) <= limits.max_chars

    if not fits(parts):
        summary = _shorten(parts.summary, lambda s: fits(replace(parts, summary=s)))
        parts = replace(parts, summary=summary)
    if not fits(parts):
        parts = replace(parts, title=_shorten(parts.title, lambda t: fits(replace(parts, title=t))))
    for name in ("hashtags", "categories"):
        while not fits(parts) and getattr(parts, name):
            parts = replace(parts, **{name: getattr(parts, name)[:-1]})
    text = _fill(template, parts)
    if count(text, limits) > limits.max_chars:
        raise PermanentError(
            f"text cannot fit in {limits.max_chars}: the template's own text and the link"
            f" alone count {count(text, limits)}"
        )
    return text


def _fill(template: str, parts: _Parts) -> str:
    """Fill the template and tidy whitespace: no trailing spaces, no blank-line holes."""
    text = template.format(
        title=parts.title,
        summary=parts.summary,
        url=parts.url,
        hashtags=" ".join(parts.hashtags),
        categories=", ".join(parts.categories),
    )
    lines = [line.rstrip() for line in unicodedata.normalize("NFC", text).splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _shorten(value: str, fits: Callable[[str], bool]) -> str:
    """Longest shortened `value` that fits, ending with "…"; "" when nothing does.

    Cuts at a word boundary, unless that keeps under half of what a cut between
    graphemes would (scripts written without spaces, one very long word).
    """
    by_word = _longest(value, _word_ends(value), fits)
    by_grapheme = _longest(value, _grapheme_ends(value), fits)
    if by_word is not None and (by_grapheme is None or 2 * len(by_word) >= len(by_grapheme)):
        return by_word
    return by_grapheme if by_grapheme is not None else ""


def _longest(value: str, ends: Sequence[int], fits: Callable[[str], bool]) -> str | None:
    """The longest `value[:end] + "…"` that fits, `ends` ascending; binary search, then verify."""
    lo, hi = 0, len(ends)
    while lo < hi:  # find the first end that does NOT fit, assuming monotony
        mid = (lo + hi) // 2
        if fits(_ellipsize(value[: ends[mid]])):
            lo = mid + 1
        else:
            hi = mid
    for end in reversed(ends[:lo]):  # verify: counting URLs can make lengths non-monotonic
        candidate = _ellipsize(value[:end])
        if candidate != ELLIPSIS and fits(candidate):
            return candidate
    return None


def _word_ends(value: str) -> list[int]:
    """Positions of the breakable spaces in `value`, ascending."""
    return [m.start() for m in _SPACES.finditer(value)]


def _grapheme_ends(value: str) -> list[int]:
    """Ends of all grapheme clusters but the last, ascending: never splits an emoji or accent."""
    return [m.end() for m in _GRAPHEME.finditer(value)][:-1]


def _ellipsize(prefix: str) -> str:
    """`prefix` + "…", without dangling punctuation; a space keeps a final URL intact."""
    prefix = prefix.rstrip(_TRIM_BEFORE_ELLIPSIS)
    last = prefix.rsplit(" ", 1)[-1]
    return f"{prefix} {ELLIPSIS}" if last.startswith(("http://", "https://")) else prefix + ELLIPSIS


def _clean(text: str) -> str:
    """One line of sendable text: NFC, no control characters, single spaces."""
    text = _UNSENDABLE.sub("", unicodedata.normalize("NFC", text))
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return _SPACES.sub(" ", text).strip()


def _excerpt(summary: str) -> str:
    """The summary as plain text; WordPress's trailing '[…]' becomes '…' mid-sentence."""
    text = _clean(html.unescape(_TAG.sub("", _BLOCK_TAG.sub(" ", summary))))
    if _READ_MORE.search(text):
        text = _READ_MORE.sub("", text)
        text += "" if text.endswith((".", "!", "?", ELLIPSIS)) else ELLIPSIS
    return text
