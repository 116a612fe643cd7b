"""weblogUpdates pings: safe decoding and which feeds a ping is about."""

from __future__ import annotations

import time
import xmlrpc.client

import pytest

from syndicator.config import FeedSettings
from syndicator.pings import NotAPing, Ping, is_about, matching, parse_call, to_ping

# What WordPress's IXR_Request::getXml() puts on the wire for weblog_ping().
WORDPRESS_EXTENDED_PING = b"""<?xml version="1.0"?>
<methodCall>
<methodName>weblogUpdates.extendedPing</methodName>
<params>

<param><value><string>Example &amp; Co Blog</string></value></param>
<param><value><string>https://blog.example.com/</string></value></param>
<param><value><string>https://blog.example.com/feed/</string></value></param>
</params></methodCall>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
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
<methodCall><methodName>weblogUpdates.ping</methodName><params>
<param><value><string>&lol9;</string></value></param>
<param><value><string>https://blog.example.com/</string></value></param>
</params></methodCall>"""


def test_parses_the_wordpress_payload() -> None:
    method, params = parse_call(WORDPRESS_EXTENDED_PING)
    assert method == "weblogUpdates.extendedPing"
    assert params == (
        "Example & Co Blog",
        "https://blog.example.com/",
        "https://blog.example.com/feed/",
    )


def test_parses_what_pythons_xmlrpc_client_sends() -> None:
    body = xmlrpc.client.dumps(("Blog", "https://b.example/"), "weblogUpdates.ping")
    assert parse_call(body.encode()) == ("weblogUpdates.ping", ("Blog", "https://b.example/"))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_refuses_any_dtd_before_expanding_entities(encoding: str) -> None:
    body = BILLION_LAUGHS.replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
    started = time.monotonic()
    with pytest.raises(ValueError, match="DTD"):
        parse_call(body.encode(encoding))
    assert time.monotonic() - started < 2.0


def test_refuses_external_entities() -> None:
    body = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
    <methodCall><methodName>weblogUpdates.ping</methodName><params>
    <param><value><string>&e;</string></value></param></params></methodCall>"""
    with pytest.raises(ValueError, match="DTD"):
        parse_call(body)


def test_to_ping_takes_weblog_updates_calls_only() -> None:
    ping = to_ping("weblogUpdates.extendedPing", ("B", "https://b/", "https://b/c", "https://b/f"))
    assert ping == Ping("B", "https://b/", ("https://b/c", "https://b/f"))
    with pytest.raises(NotAPing) as exc:
        to_ping("pingback.ping", ("https://a/", "https://b/"))
    assert exc.value.code == -32601
    with pytest.raises(NotAPing) as exc:
        to_ping("weblogUpdates.ping", ("only a name",))
    assert exc.value.code == -32602
    with pytest.raises(NotAPing):
        to_ping("weblogUpdates.ping", ("B", 42))


@pytest.mark.parametrize(
    ("feed_url", "blog_url", "other_urls", "expected"),
    [
        # the feed URL named in the ping, scheme and trailing slash aside
        (
            "https://blog.example.com/feed/",
            "https://elsewhere.net/",
            ("http://blog.example.com/feed",),
            True,
        ),
        # WordPress without pretty permalinks: the query is the feed
        (
            "https://b.example/?feed=rss2",
            "https://x.example/",
            ("https://b.example/?feed=rss2",),
            True,
        ),
        (
            "https://b.example/?feed=atom",
            "https://x.example/",
            ("https://b.example/?feed=rss2",),
            False,
        ),
        # the blog's home: same host, the feed's path lies under the blog's path
        ("https://blog.example.com/feed/", "https://blog.example.com/", (), True),
        ("https://Blog.Example.com:443/feed/", "http://blog.example.com", (), True),
        ("https://example.com/news/feed/", "https://example.com/news/", (), True),
        ("https://example.com/news", "https://example.com/news/", (), True),
        ("https://example.com/newsroom/feed/", "https://example.com/news/", (), False),
        ("https://example.com/jobs/feed/", "https://example.com/news/", (), False),
        ("https://blog.example.com/feed/", "https://www.blog.example.com/", (), False),
        ("https://blog.example.com/feed/", "https://evil.example/blog.example.com/", (), False),
        ("https://blog.example.com/feed/", "not a url", ("", "http://[::1"), False),
    ],
)
def test_is_about(
    feed_url: str, blog_url: str, other_urls: tuple[str, ...], expected: bool
) -> None:
    assert is_about(Ping("Blog", blog_url, other_urls), feed_url) is expected


def test_matching_names_every_feed_of_the_blog() -> None:
    feeds = [
        FeedSettings(name="news", url="https://example.com/news/feed/"),
        FeedSettings(name="all", url="https://example.com/feed/"),
        FeedSettings(name="other", url="https://other.example/feed/"),
    ]
    assert matching(Ping("B", "https://example.com/", ()), feeds) == ["news", "all"]
    assert matching(Ping("B", "https://example.com/news/", ()), feeds) == ["news"]
