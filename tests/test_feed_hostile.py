"""Feeds from a server that is slow, huge or malicious, and random entries (hypothesis)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import socket
import threading
import time
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from syndicator.errors import FeedError
from syndicator.feed import ParsedFeed, fetch, parse

Handler = Callable[[socket.socket, threading.Event], object]


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], str]]:
    """Start a one-connection TCP server on 127.0.0.1 that answers with `handler`."""
    stop = threading.Event()
    started: list[tuple[socket.socket, threading.Thread]] = []

    def start(handler: Handler) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)  # the request; its content does not matter here
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    handler(conn, stop)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.append((listener, thread))
        return f"http://127.0.0.1:{listener.getsockname()[1]}/feed"

    yield start
    stop.set()
    for listener, thread in started:
        thread.join(timeout=5)
        listener.close()


def drip(head: bytes, byte: bytes) -> Handler:
    """Send `head` at once, then one `byte` every 50 ms until stopped."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(head)
        while not stop.wait(0.05):
            conn.sendall(byte)

    return handler


# -- fetch -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "byte"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n",
            b"<",
        ),
        # inside a chunk-size line: a between-reads clock check would never run
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1"),
    ],
    ids=["content-length", "chunked"],
)
def test_slow_drip_fails_at_the_deadline(
    raw_server: Callable[[Handler], str], head: bytes, byte: bytes
) -> None:
    url = raw_server(drip(head, byte))
    started = time.monotonic()
    with pytest.raises(FeedError, match=r"not received within the 1s deadline: http://127"):
        fetch(url, timeout=0.5, deadline=1.0)
    assert time.monotonic() - started < 3.0


def test_silent_server_times_out(raw_server: Callable[[Handler], str]) -> None:
    url = raw_server(lambda conn, stop: stop.wait(5))
    started = time.monotonic()
    with pytest.raises(FeedError, match=r"no answer from http://127.0.0.1:\d+/feed within 0.3s"):
        fetch(url, timeout=0.3)
    assert time.monotonic() - started < 3.0


def test_connection_cut_mid_body_is_a_feed_error(raw_server: Callable[[Handler], str]) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<rss version='2.0'>"
    url = raw_server(lambda conn, stop: conn.sendall(head))
    with pytest.raises(
        FeedError, match=r"reading http://127.0.0.1:\d+/feed failed \(ChunkedEncodingError\)"
    ):
        fetch(url, timeout=2)


def test_gzip_bomb_is_capped_after_decompression(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 30_000_000, compresslevel=9)  # ~30 KB on the wire
    httpserver.expect_request("/feed").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="application/rss+xml"
    )
    with pytest.raises(FeedError, match="feed larger than 1000000 bytes"):
        fetch(httpserver.url_for("/feed"), max_bytes=1_000_000)


def test_a_100_mb_feed_is_refused_at_the_default_cap_without_reading_it_all(
    httpserver: HTTPServer,
) -> None:
    from werkzeug import Response

    sent = [0]

    def endless_items():
        item = b"<item><title>x</title><guid>g</guid></item>" * 1000  # ~45 KB
        yield b'<?xml version="1.0"?><rss version="2.0"><channel>'
        while sent[0] < 100_000_000:
            sent[0] += len(item)
            yield item

    httpserver.expect_request("/huge").respond_with_handler(
        lambda request: Response(endless_items(), content_type="application/rss+xml")
    )
    started = time.monotonic()
    with pytest.raises(FeedError, match="feed larger than 10000000 bytes"):
        fetch(httpserver.url_for("/huge"))  # the default cap
    assert time.monotonic() - started < 10
    assert sent[0] < 30_000_000  # the download stopped soon after the cap


# -- parse: entities, files, encodings ---------------------------------------------------------


def bounded_parse(
    body: bytes, headers: dict[str, str] | None = None
) -> tuple[ParsedFeed | FeedError, float, float]:
    """parse(), its outcome (a FeedError is an outcome too), seconds and peak MB allocated."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome: ParsedFeed | FeedError = parse("hostile", body, headers=headers)
    except FeedError as exc:
        outcome = exc
    seconds = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return outcome, seconds, peak


def longest_field(parsed: ParsedFeed | FeedError) -> int:
    if isinstance(parsed, FeedError):
        return 0
    return max((len(json.dumps(p.to_dict())) for p in parsed.posts), default=0)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><guid>g</guid><title>&lol9;</title><description>&lol9;</description></item>
</channel></rss>"""


def quadratic_blowup(declaration: bytes = b'<?xml version="1.0"?>') -> bytes:
    """One 10 KB entity referenced 10 000 times: 40 KB that expand to 100 MB."""
    return (
        declaration + b'\n<!DOCTYPE rss [\n<!ENTITY a "' + b"x" * 10_000 + b'">\n]>\n'
        b'<rss version="2.0"><channel><title>t</title><item><guid>g</guid><title>'
        + b"&a;" * 10_000
        + b"</title></item></channel></rss>"
    )


def test_billion_laughs_finishes_fast_without_expanding() -> None:
    outcome, seconds, peak = bounded_parse(BILLION_LAUGHS)
    assert seconds < 2 and peak < 50
    assert longest_field(outcome) < 2000


@pytest.mark.parametrize(
    "body",
    [
        quadratic_blowup(),
        quadratic_blowup().decode().encode("utf-16"),
        # UTF-7 hides "<!ENTITY" from a byte-level check: the guard reads feedparser's own view
        quadratic_blowup(b'<?xml version="1.0" encoding="utf-7"?>')
        .replace(b"<!DOCTYPE", b"+ADw-!DOCTYPE")
        .replace(b"<!ENTITY", b"+ADw-!ENTITY"),
    ],
    ids=["utf-8", "utf-16", "utf-7"],
)
def test_quadratic_entity_blowup_is_not_expanded(body: bytes) -> None:
    # Without the guard, feedparser's loose parser (used once expat gives up) expands this
    # to a 100 MB title with a 300 MB peak.
    outcome, seconds, peak = bounded_parse(body)
    assert seconds < 2 and peak < 50
    assert longest_field(outcome) < 100_000


@pytest.mark.parametrize(
    "declaration",
    [
        '<!ENTITY xxe SYSTEM "file://{path}">',
        '<!ENTITY xxe SYSTEM "{path}">',
        '<!ENTITY % dtd SYSTEM "file://{path}"> %dtd; <!ENTITY xxe "&#x25;dtd;">',
    ],
)
@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/xml"])
def test_external_entities_never_read_local_files(
    tmp_path: Path, declaration: str, content_type: str | None
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("MARKER-7f3a9c-SECRET")
    doctype = declaration.format(path=secret)
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE rss [ {doctype} ]>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>t &xxe;</title><link>https://blog.example/</link>
<item><guid isPermaLink="false">g &xxe;</guid><title>a &xxe;</title>
<link>https://blog.example/&xxe;</link><category>&xxe;</category>
<description>d &xxe;</description><content:encoded>c &xxe;</content:encoded></item>
</channel></rss>""".encode()
    headers = {"Content-Type": content_type} if content_type else None
    outcome, _, _ = bounded_parse(body, headers=headers)
    text = str(outcome) if isinstance(outcome, FeedError) else repr(outcome)
    assert "MARKER-7f3a9c" not in text


def test_a_body_that_names_a_local_file_is_not_opened(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would open this path and parse the file it names.
    local = tmp_path / "local-feed.xml"
    local.write_bytes(
        b"<rss version='2.0'><channel><title>local</title><item><guid>g</guid>"
        b"<title>MARKER-local-file</title></item></channel></rss>"
    )
    with pytest.raises(FeedError, match="not a feed"):
        parse("x", str(local).encode())


UTF8_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Café</title>
<item><guid>a</guid><title>Crème brûlée</title></item>
<item><guid>b</guid><title>Pâtisserie BAD du jour</title></item>
<item><guid>c</guid><title>Œufs à la neige</title></item>
</channel></rss>""".encode()


@pytest.mark.parametrize("content_type", [None, "application/rss+xml; charset=UTF-8"])
def test_invalid_utf8_bytes_are_replaced_not_misdecoded(content_type: str | None) -> None:
    body = UTF8_FEED.replace(b"BAD", b"\xe9t\xe9 \xff")  # Latin-1 "été" pasted into UTF-8
    headers = {"Content-Type": content_type} if content_type else None
    parsed = parse("u", body, headers=headers)
    assert parsed.title == "Café"
    titles = [p.title for p in parsed.posts]
    assert titles == ["Crème brûlée", "Pâtisserie \ufffdt\ufffd \ufffd du jour", "Œufs à la neige"]
    assert parsed.warnings == ["3 invalid UTF-8 sequence(s) replaced by U+FFFD"]


def test_undeclared_latin1_feed_is_decoded_as_windows_1252() -> None:
    body = UTF8_FEED.replace(b' encoding="UTF-8"', b"").replace(b"BAD", b"").decode()
    parsed = parse("l", body.encode("latin-1", "replace"))
    assert parsed.posts[0].title == "Crème brûlée"
    assert parsed.warnings[0].startswith("wrong character encoding: document declared as utf-8")


# -- random entries (hypothesis) ---------------------------------------------------------------

XML_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co"))
    | st.sampled_from("\t\n &<>\"'"),
    max_size=40,
)
SAFE_TEXT = st.text(alphabet=st.sampled_from("abcXYZ019 .,:;!?-_/()'\"é€😀—"), max_size=30)


@dataclass(frozen=True)
class Item:
    """What a random RSS item holds; None means the element is absent."""

    guid: str | None
    link: str | None
    title: str | None
    categories: list[str]

    def xml(self) -> str:
        """The item as WordPress writes it, every text properly escaped."""
        xml = ""
        if self.guid is not None:
            xml += f'<guid isPermaLink="false">{escape(self.guid)}</guid>'
        if self.link is not None:
            xml += f"<link>{escape(self.link)}</link>"
        if self.title is not None:
            xml += f"<title>{escape(self.title)}</title>"
        for term in self.categories:
            xml += f"<category domain={quoteattr('category')}>{escape(term)}</category>"
        return f"<item>{xml}</item>"

    @staticmethod
    def identity_of(guid: str) -> str:
        return as_feedparser_reads(guid).strip()

    def identity(self) -> str:
        """The guid the Post should get: the stripped guid, else the link, else ""."""
        return self.identity_of(self.guid or "") or (self.link or "").strip()


def as_feedparser_reads(text: str) -> str:
    """feedparser "repairs" text of a UTF-8 feed that looks double-encoded: "Ã©" reads "é".

    Found by this test ("Â¡" became "¡"); real guids are ASCII URLs, which it never touches.
    """
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


@st.composite
def items(draw: st.DrawFn, text: st.SearchStrategy[str] = XML_TEXT) -> list[Item]:
    """Random RSS items; guids, when present, are unique once stripped, as in a real feed."""
    count = draw(st.integers(0, 8))
    unique = st.lists(XML_TEXT, min_size=count, max_size=count, unique_by=Item.identity_of)
    guids = draw(unique)
    drawn = []
    for number, guid in enumerate(guids):
        # WordPress can wrap <link> in whitespace and newlines; URLs are unique per item
        padding = draw(st.sampled_from(["", " ", "\n   "]))
        link = f"{padding}https://blog.example/{number}/\n"
        drawn.append(
            Item(
                guid=draw(st.none() | st.just(guid)),
                link=draw(st.none() | st.just(link)),
                title=draw(st.none() | text),
                categories=draw(st.lists(text, max_size=4)),
            )
        )
    return drawn


def render(drawn: list[Item]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        + "".join(item.xml() for item in drawn)
        + "</channel></rss>"
    ).encode()


@settings(max_examples=100, deadline=None)
@given(items())
def test_random_items_map_to_posts(drawn: list[Item]) -> None:
    try:
        parsed = parse("random", render(drawn))
    except FeedError:
        return  # allowed; anything else escaping parse() fails the test
    kept = [item for item in drawn if item.identity()]
    # guids are NFC-normalised (the same guid in another Unicode form is the same entry)
    nfc = functools.partial(unicodedata.normalize, "NFC")
    assert [nfc(post.guid) for post in parsed.posts] == [nfc(item.identity()) for item in kept]
    assert len({post.guid for post in parsed.posts}) == len(parsed.posts)
    for item, post in zip(kept, parsed.posts, strict=True):
        assert post.url == (item.link or "").strip()
        for text in (post.title, post.summary, *post.categories):
            assert text == text.strip() and "\n" not in text and "  " not in text


@settings(max_examples=100, deadline=None)
@given(items(text=SAFE_TEXT))
def test_plain_titles_and_terms_survive_unchanged(drawn: list[Item]) -> None:
    parsed = parse("plain", render(drawn))
    kept = [item for item in drawn if item.identity()]
    for item, post in zip(kept, parsed.posts, strict=True):
        assert post.title == " ".join((item.title or "").split())
        terms = [" ".join(term.split()) for term in item.categories]
        assert post.categories == tuple(dict.fromkeys(term for term in terms if term))


SAMPLE = files("syndicator").joinpath("sample/feed.xml").read_bytes()


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, len(SAMPLE)),
    st.integers(0, len(SAMPLE)),
    st.binary(max_size=30) | st.sampled_from([b"<", b"&", b"]]>", b"<!DOCTYPE x [", b"\xff"]),
)
def test_damaged_feeds_raise_nothing_but_feed_error(start: int, end: int, junk: bytes) -> None:
    start, end = sorted((start, end))
    try:
        parsed = parse("damaged", SAMPLE[:start] + junk + SAMPLE[end:])
    except FeedError:
        return
    assert all(post.guid for post in parsed.posts)
