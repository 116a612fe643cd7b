"""Feed bytes → Posts: feedparser does the XML (and sanitizes the HTML), this maps entries.

Before feedparser sees a document, the few things it gets wrong are put right: charset rules
(RFC 7303), stray invalid UTF-8 bytes, and inline DTD entities (expanded by its fallback
parser). The mapping follows real WordPress feeds: emoji as `<img class="wp-smiley">`, Yoast
footers, `[…]` excerpt tails, author avatars and stats pixels posing as images.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import io
import json
import re
import time
import unicodedata
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.encodings import convert_to_utf8

from syndicator.errors import FeedError
from syndicator.models import Image, Post

# Images that are not part of the post, matched as substrings of the URL: WordPress plugin
# and core chrome (share buttons, badges, smilies; post images live in /wp-content/uploads/),
# WordPress.com author avatars, stats pixels and share buttons, Feedburner flares and ads.
NOT_POST_IMAGES = (
    "/wp-content/plugins/",
    "/wp-includes/",
    "gravatar.com/avatar/",
    "://stats.wordpress.com/",
    "://pixel.wp.com/",
    "://feeds.wordpress.com/",
    "://feeds.feedburner.com/",
    "://feedads.g.doubleclick.net/",
)
MAX_GUID = 1000  # longer guids are replaced by their hash
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
_BLOCK_TAGS = {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr"}
_BLOCK_TAGS |= {"blockquote", "pre", "figure", "figcaption", "table", "hr", "section"}
_SKIP_TAGS = {"script", "style", "template"}
_SPACES = re.compile(r"[^\S\xa0\u202f]+")
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_XML_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)", re.I)
_FIRST_ELEMENT = re.compile(rb"<\w")
_YOAST_FOOTER = re.compile(r"\s*The post .+? appeared first on .+?\.?\s*$", re.S)
_TAIL = re.compile(
    r"\s*(?:\[(?:…|\.{3})\]|(?:continue reading|read more)\b[^.!?]{0,80}(?:…|\.{3})?)\s*$", re.I
)


@dataclass(frozen=True)
class ParsedFeed:
    """What one feed document holds; `warnings` say what was recovered or skipped."""

    posts: list[Post]
    warnings: list[str]
    title: str


def parse(
    feed_name: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
) -> ParsedFeed:
    """Parse a feed document; raise FeedError when it is not a feed or nothing is recoverable.

    `headers` are the real response headers: they carry the charset and Content-Location.
    """
    if not body.strip():
        raise FeedError("not a feed: empty document")
    response_headers = _normalized(headers or {}, base_url)
    content_type = _lower_keys(headers or {}).get("content-type", "")
    body, warnings = _mend_utf8(body, response_headers["content-type"])
    try:
        body, response_headers, unsafe = _without_entities(body, response_headers)
        # A BytesIO, never bytes: feedparser opens a bytes argument as a *file name* if it can.
        data = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    except Exception as exc:  # hostile input must not take the poller down with a parser bug
        raise FeedError(f"feed could not be parsed ({type(exc).__name__})") from exc
    # feedparser puts an XML declaration on a line of its own when the document has none
    shift = 0 if body.removeprefix(codecs.BOM_UTF8).startswith(b"<?xml") else 1
    warnings += unsafe + _check(data, content_type, shift)
    language = _language(data.feed.get("language"))
    posts: list[Post] = []
    seen: dict[str, str] = {}  # guid → link
    for number, entry in enumerate(data.entries, start=1):
        try:
            post = _without_nul(_post(feed_name, entry, language, base_url))
        except Exception as exc:  # one hostile entry must not cost the feed its other entries
            warnings.append(f"entry {number} could not be read ({type(exc).__name__}); skipped")
            continue
        raw = (entry.get("id") or "").strip()
        if post is not None and seen.get(post.guid, post.url) != post.url and raw != post.guid:
            post = replace(post, guid=raw)  # two articles whose guids only NFC made equal
        if post is None:
            warnings.append(f"entry {number} has neither a guid nor a link; skipped")
        elif post.guid in seen:
            warnings.append(f"entry {number} repeats guid {post.guid!r}; skipped")
        else:
            seen[post.guid] = post.url
            posts.append(post)
    return ParsedFeed(posts=posts, warnings=warnings, title=_text(data.feed, "title"))


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """A plain dict with lower-case keys, whatever mapping the caller passed."""
    return {key.lower(): value for key, value in headers.items()}


def _normalized(headers: Mapping[str, str], base_url: str) -> dict[str, str]:
    """Response headers as feedparser should read them (it wants lower-case keys).

    Per RFC 7303 the XML declaration decides the charset of `text/xml` without a charset
    parameter and of a response without Content-Type; feedparser still applies RFC 3023
    (US-ASCII, ISO-8859-1) and would warn on, or garble, every such UTF-8 feed.
    """
    result = _lower_keys(headers)
    if base_url:
        result.setdefault("content-location", base_url)
    mime = result.get("content-type", "").split(";")[0].strip().lower()
    if mime in ("", "text/xml") and "charset" not in result.get("content-type", ""):
        result["content-type"] = "application/xml"
    return result


def _mend_utf8(body: bytes, content_type: str) -> tuple[bytes, list[str]]:
    """Replace stray invalid bytes in a mostly-UTF-8 feed that claims (or defaults to) UTF-8.

    feedparser would re-decode the whole document as windows-1252 instead, turning every
    correct "é" into "Ã©". A document that is mostly *not* UTF-8 (Latin-1 without a
    declaration) is left to feedparser's guess.
    """
    header = _HTTP_CHARSET.search(content_type)
    declared = _XML_ENCODING.match(body[:1024])
    claim = header.group(1) if header else (declared.group(1).decode() if declared else "utf-8")
    if claim.lower().replace("-", "") != "utf8" or body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return body, []
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        bad = text.count("\ufffd")
        non_ascii = len(text) - len(text.encode("ascii", "ignore"))
        if non_ascii - bad > bad:
            return text.encode("utf-8"), [f"{bad} invalid UTF-8 sequence(s) replaced by U+FFFD"]
    return body, []


def _without_entities(
    body: bytes, headers: dict[str, str]
) -> tuple[bytes, dict[str, str], list[str]]:
    """Drop an inline DTD that declares entities, before feedparser sees it.

    Expat stops entity bombs, but feedparser then re-parses with its loose parser, which
    expands every "safe" entity declared in the prolog: 40 KB of `&a;` referencing a 10 KB
    entity became a 100 MB title. The check runs on feedparser's own UTF-8 view of the
    document, so UTF-16, UTF-7 or EBCDIC cannot hide a declaration from it.
    """
    scratch: dict[str, Any] = {}
    text = convert_to_utf8(headers, body, scratch)
    if b"<!ENTITY" not in _prolog(text):
        return body, headers, []
    while (start := _prolog(text).find(b"<!DOCTYPE")) >= 0:
        text = text[:start] + text[len(_prolog(text)) :]
    headers = {**headers, "content-type": "application/xml; charset=utf-8"}
    return text, headers, ["inline DTD with entity declarations removed"]


def _prolog(text: bytes) -> bytes:
    """What precedes the first element, as feedparser delimits it (DOCTYPE and all)."""
    root = _FIRST_ELEMENT.search(text)
    return text[: root.start()] if root else text


def _check(data: Any, content_type: str, line_shift: int) -> list[str]:
    """Refuse what is not a feed; return a warning for a damaged feed with entries."""
    count = len(data.entries)
    if not data.get("version") and not count:
        served_as = f" (served as {content_type.split(';')[0].strip()})" if content_type else ""
        raise FeedError(f"not a feed{served_as}: no RSS or Atom root element")
    if not data.bozo:
        return []
    problem = _problem(data.bozo_exception, line_shift)
    if not count:
        raise FeedError(f"{problem}; no entries recovered")
    return [f"{problem}; {count} entries recovered"]


def _problem(exc: Exception, line_shift: int) -> str:
    """A one-line description of what feedparser tripped over."""
    if isinstance(exc, xml.sax.SAXParseException):
        line = max((exc.getLineNumber() or 1) - line_shift, 1)
        return f"malformed XML at line {line}: {exc.getMessage()}"
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"wrong character encoding: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _post(feed_name: str, entry: Any, language: str | None, base_url: str) -> Post | None:
    """Map one feedparser entry to a Post, or None when it has no identity at all."""
    url = _link(entry, base_url)
    # NFC: the same guid written in another Unicode form is the same entry
    guid = unicodedata.normalize("NFC", (entry.get("id") or "").strip()) or url
    if not guid:
        return None
    if len(guid) > MAX_GUID:  # an index cannot hold it (PostgreSQL btree rows ~2.7 kB)
        guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    categories, tags = _terms(entry.get("tags") or [])
    content = _content_html(entry)
    return Post(
        feed=feed_name,
        guid=guid,
        url=url,
        title=_text(entry, "title"),
        summary=_summary(entry),
        content_html=content,
        categories=categories,
        tags=tags,
        images=_images(entry, content, url or base_url),
        published=_when(entry.get("published_parsed")),
        # dict.get: entry.get() would hand back published_parsed (feedparser issue 310)
        updated=_when(dict.get(entry, "updated_parsed")),
        language=_entry_language(entry) or language,
    )


def _without_nul(post: Post | None) -> Post | None:
    """NUL characters (`&#0;` gets through feedparser) removed: PostgreSQL text refuses them."""
    if post is None:
        return None
    text = json.dumps(post.to_dict())
    nul = "\\u0000"  # how json.dumps writes U+0000
    return post if nul not in text else Post.from_dict(json.loads(text.replace(nul, "")))


def _link(entry: Any, base_url: str) -> str:
    """The canonical http(s) link: Feedburner's origLink, else rel=alternate, else `link`."""
    alternates = [
        link.get("href")
        for link in entry.get("links") or []
        if link.get("rel", "alternate") == "alternate" and link.get("href")
    ]
    href = entry.get("feedburner_origlink") or (alternates or [entry.get("link") or ""])[0]
    # As a browser does: drop newlines and tabs (pretty-printed <link>), encode spaces.
    href = re.sub(r"[\t\r\n]", "", href).strip().replace(" ", "%20")
    return _http_url(href, base_url)


def _http_url(href: str, base: str) -> str:
    """`href` made absolute against `base`, or "" unless it is an http(s) URL."""
    try:
        absolute = urljoin(base, href.strip())
        parts = urlsplit(absolute)
    except ValueError:  # e.g. an invalid IPv6 literal
        return ""
    return absolute if parts.scheme in ("http", "https") and parts.netloc else ""


def _text(holder: Any, key: str) -> str:
    """A title-like field as plain text; HTML unless feedparser says it is text/plain."""
    value = holder.get(key) or ""
    kind = (holder.get(f"{key}_detail") or {}).get("type")
    return _collapse(html.unescape(value)) if kind == "text/plain" else _plain_text(value)


def _summary(entry: Any) -> str:
    """The excerpt as plain text, without Yoast's footer or a "[…]"/"Continue reading" tail."""
    text = _text(entry, "summary")
    text = _YOAST_FOOTER.sub("", text)
    return _TAIL.sub("", text).strip()


def _content_html(entry: Any) -> str:
    """content:encoded or Atom content (HTML preferred), else the summary, as HTML."""
    details = list(entry.get("content") or [])
    details.sort(key=lambda detail: "html" not in detail.get("type", ""))
    if entry.get("summary_detail"):
        details.append(entry.summary_detail)
    for detail in details:
        value = detail.get("value") or ""
        if value.strip():
            return value if "html" in detail.get("type", "") else html.escape(value)
    return ""


def _terms(tags: Iterable[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split entry.tags into (categories, tags); only a "…tag" scheme/domain marks a tag."""
    categories: dict[str, None] = {}
    labels: dict[str, None] = {}
    for tag in tags:
        term = _collapse(html.unescape(tag.get("term") or tag.get("label") or ""))
        scheme = (tag.get("scheme") or "").rstrip("/").lower()
        if term:
            (labels if scheme.endswith("tag") else categories)[term] = None
    return tuple(categories), tuple(labels)


def _images(entry: Any, content_html: str, base: str) -> tuple[Image, ...]:
    """Media RSS images, thumbnails and image enclosures, then the <img> of the content."""
    found: list[tuple[str, str]] = []
    for media in entry.get("media_content") or []:
        if _is_image(media.get("url") or "", media.get("medium"), media.get("type")):
            found.append((media.get("url") or "", ""))
    found += [(thumb.get("url") or "", "") for thumb in entry.get("media_thumbnail") or []]
    for enclosure in entry.get("enclosures") or []:
        if (enclosure.get("type") or "").startswith("image/"):
            found.append((enclosure.get("href") or "", ""))
    found += _HtmlScan.of(content_html).images
    images: dict[str, Image] = {}
    for src, alt in found:
        url = _http_url(src, base)
        if not url or any(bad in url for bad in NOT_POST_IMAGES):
            continue
        if url not in images or (alt and not images[url].alt):  # keep order, gain the alt
            images[url] = Image(url=url, alt=alt)
    return tuple(images.values())


def _is_image(url: str, medium: str | None, mime: str | None) -> bool:
    """A media:content is an image by medium or type; with neither, by file extension."""
    if medium or mime:
        return medium == "image" or (mime or "").startswith("image/")
    try:
        path = urlsplit(url).path
    except ValueError:  # "http://[not-an-ip/" and the like
        return False
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _when(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None when absent or impossible."""
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _entry_language(entry: Any) -> str | None:
    """xml:lang (or Content-Language) of the entry's title, summary or content."""
    details = [entry.get("title_detail"), entry.get("summary_detail"), *entry.get("content", [])]
    return next((lang for d in details if d and (lang := _language(d.get("language")))), None)


def _language(value: str | None) -> str | None:
    """A language tag, or None for absent or empty (WordPress emits xml:lang="")."""
    return (value or "").strip() or None


def _collapse(text: str) -> str:
    """Runs of whitespace become one space; no-break spaces stay (French "Lyon\xa0!")."""
    return _SPACES.sub(" ", text).strip(" ")


def _plain_text(markup: str) -> str:
    """Visible text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    return _collapse(_HtmlScan.of(markup).text())


class _HtmlScan(HTMLParser):
    """One pass over an HTML fragment collecting its visible text and its post images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.images: list[tuple[str, str]] = []
        self._skipping = 0

    @classmethod
    def of(cls, markup: str) -> _HtmlScan:
        """Scan `markup` completely."""
        scan = cls()
        scan.feed(markup)
        scan.close()
        return scan

    def text(self) -> str:
        """The visible text, whitespace not yet collapsed."""
        return "".join(self.parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")
        elif tag == "img":
            self._img({name: value or "" for name, value in attrs})

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def _img(self, attrs: dict[str, str]) -> None:
        """WordPress emoji/smilies are text (their alt); pixels and data: URIs are dropped."""
        src, alt = attrs.get("src", "").strip(), _collapse(attrs.get("alt", ""))
        if "wp-smiley" in attrs.get("class", "") or "/images/core/emoji/" in src:
            self.parts.append(alt)
        elif src and not src.lower().startswith("data:") and not _is_pixel(attrs):
            self.images.append((src, alt))


def _is_pixel(attrs: dict[str, str]) -> bool:
    """A 1×1 (or 0×0) tracking pixel, by its declared width or height."""
    sizes = (attrs.get(name, "").strip().lower().removesuffix("px") for name in ("width", "height"))
    return any(size in ("0", "1") for size in sizes)
