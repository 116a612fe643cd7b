"""feed.fetch against a local HTTP server, and feed.parse on small hand-written documents."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from importlib.resources import files

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from syndicator.errors import FeedError
from syndicator.feed import fetch, parse, redact
from syndicator.models import Image

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Shop</title><link>https://shop.example/</link>
<item><title>Hello</title><link>https://shop.example/hello/</link>
<guid isPermaLink="false">https://shop.example/?p=1</guid></item></channel></rss>"""


def rss(*items: str, channel: str = "", namespaces: str = "") -> bytes:
    """A WordPress-shaped RSS 2.0 document around the given <item> bodies."""
    body = "".join(f"<item>{item}</item>" for item in items)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
  xmlns:media="http://search.yahoo.com/mrss/" {namespaces}>
<channel><title>Blog</title><link>https://blog.example/</link><language>en-US</language>
{channel}{body}</channel></rss>""".encode()


# -- fetch -------------------------------------------------------------------------------------


def test_fetch_returns_body_validators_and_final_url(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/feed/")}
    )
    httpserver.expect_request("/feed/").respond_with_data(
        RSS,
        content_type="application/rss+xml; charset=UTF-8",
        headers={"ETag": '"v1"', "Last-Modified": "Tue, 14 May 2024 09:12:44 GMT"},
    )
    result = fetch(httpserver.url_for("/old"), user_agent="syndicator-test/1")
    assert (result.status, result.body) == (200, RSS)
    assert result.etag == '"v1"'
    assert result.last_modified == "Tue, 14 May 2024 09:12:44 GMT"
    assert result.url == httpserver.url_for("/feed/")
    assert result.headers["content-type"] == "application/rss+xml; charset=UTF-8"
    sent = httpserver.log[-1][0]
    assert sent.headers["User-Agent"] == "syndicator-test/1"
    assert "application/rss+xml" in sent.headers["Accept"]
    assert "If-None-Match" not in sent.headers


def test_conditional_get_sends_validators_and_304_has_no_body(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(
            RSS, headers={"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        )

    httpserver.expect_request("/feed").respond_with_handler(handler)
    url = httpserver.url_for("/feed")
    first = fetch(url)
    second = fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.body) == (304, None)
    # the 304 did not repeat the validators: the ones sent still hold
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = httpserver.log[-1][0].headers
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Mon, 01 Jan 2024 00:00:00 GMT"


def test_http_error_names_status_without_secrets(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data("busy", status=503)
    port = httpserver.port
    with pytest.raises(FeedError) as caught:
        fetch(f"http://reader:hunter2@127.0.0.1:{port}/feed?token=s3cret#frag")
    message = str(caught.value)
    assert message == f"HTTP 503 from http://127.0.0.1:{port}/feed"
    assert "hunter2" not in message and "s3cret" not in message


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/feed", "gopher://x/", "/feed.xml", "http://"]
)
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(FeedError, match="only http"):
        fetch(url)


def test_redirect_to_a_local_file_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        "", status=302, headers={"Location": "file:///etc/passwd"}
    )
    with pytest.raises(FeedError, match="redirected to a URL that cannot be fetched"):
        fetch(httpserver.url_for("/feed"))


def test_connection_refused_is_a_feed_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FeedError, match=f"cannot connect to http://127.0.0.1:{port}/feed$"):
        fetch(f"http://127.0.0.1:{port}/feed?key=secret", timeout=2)


def test_body_over_the_cap_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"x" * 5000)
    with pytest.raises(FeedError, match="feed larger than 4096 bytes"):
        fetch(httpserver.url_for("/feed"), max_bytes=4096)
    assert fetch(httpserver.url_for("/feed"), max_bytes=5000).body == b"x" * 5000


def test_html_page_fetches_but_is_not_a_feed(httpserver: HTTPServer) -> None:
    page = b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>Hi</p></body></html>"
    httpserver.expect_request("/").respond_with_data(page, content_type="text/html")
    result = fetch(httpserver.url_for("/"))
    with pytest.raises(FeedError, match=r"not a feed \(served as text/html\)"):
        parse("blog", result.body or b"", headers=result.headers, base_url=result.url)


def test_redact_keeps_scheme_host_port_and_path() -> None:
    assert redact("https://u:p@[::1]:8443/a/feed/?k=v#x") == "https://[::1]:8443/a/feed/"
    assert redact("http://[bad") == "<invalid URL>"


# -- parse -------------------------------------------------------------------------------------


def test_wordpress_item_maps_to_post() -> None:
    item = """<title>Caf&#233; &#8211; &lt;b&gt;open&lt;/b&gt;   late</title>
    <link>
        https://blog.example/2024/05/cafe/
    </link>
    <guid isPermaLink="false">  https://blog.example/?p=7  </guid>
    <pubDate>Tue, 14 May 2024 11:12:44 +0200</pubDate>
    <category><![CDATA[news]]></category><category><![CDATA[Tips &amp; Tricks]]></category>
    <category domain="post_tag"><![CDATA[coffee]]></category>
    <description><![CDATA[<p>We open <em>late</em> &#8230; [&#8230;]</p>
    <p>The post <a href="https://blog.example/2024/05/cafe/">Café</a> appeared first on
    <a href="https://blog.example">Blog</a>.</p>]]></description>
    <content:encoded><![CDATA[<p>Long text</p><script>alert("x")</script>
    <a href="javascript:alert(1)" onclick="steal()">click</a>
    <img src="/wp-content/uploads/2024/05/a.jpg" alt="A  latte" width="640">
    <img src="https://blog.example/wp-content/uploads/2024/05/hero.jpg" alt="Hero">
    <img src="data:image/gif;base64,R0lGOD" alt="inline">
    <img src="https://track.example/p.gif" width="1" height="1">
    <img src="https://s.w.org/images/core/emoji/15.0.3/72x72/2615.png" alt="☕" class="wp-smiley">
    ]]></content:encoded>
    <media:content url="https://blog.example/wp-content/uploads/2024/05/hero.jpg" medium="image"/>
    <media:content url="https://blog.example/video.mp4" medium="video"/>
    <media:thumbnail url="https://blog.example/wp-content/uploads/2024/05/thumb.jpg"/>
    <enclosure url="https://blog.example/wp-content/uploads/2024/05/e.png" type="image/png"
      length="1"/>
    <enclosure url="https://blog.example/ep1.mp3" type="audio/mpeg" length="1"/>
    <media:content url="https://1.gravatar.com/avatar/abc?s=96" medium="image"/>"""
    parsed = parse("blog", rss(item))
    assert parsed.warnings == [] and parsed.title == "Blog"
    [post] = parsed.posts
    assert post.feed == "blog"
    assert post.guid == "https://blog.example/?p=7"
    assert post.url == "https://blog.example/2024/05/cafe/"
    assert post.title == "Café – open late"
    assert post.summary == "We open late …"
    assert post.content_html.startswith("<p>Long text</p>")
    for unsafe in ("<script", "alert", "onclick", "javascript:"):  # feedparser sanitizes
        assert unsafe not in post.content_html
    assert post.categories == ("news", "Tips & Tricks")
    assert post.tags == ("coffee",)
    assert post.images == (
        Image("https://blog.example/wp-content/uploads/2024/05/hero.jpg", "Hero"),
        Image("https://blog.example/wp-content/uploads/2024/05/thumb.jpg"),
        Image("https://blog.example/wp-content/uploads/2024/05/e.png"),
        Image("https://blog.example/wp-content/uploads/2024/05/a.jpg", "A latte"),
    )
    assert post.published == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
    assert post.updated is None  # WordPress RSS has no modification date
    assert post.language == "en-US"


def test_atom_entry_maps_to_post() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title type="html">Le &lt;em&gt;blog&lt;/em&gt;</title><id>urn:blog</id>
  <updated>2024-03-11T09:00:00+01:00</updated>
  <entry>
    <title type="text">R&#233;visions &amp; caf&#233;</title>
    <id>https://blog.example/?p=9</id>
    <link rel="replies" href="https://blog.example/2024/03/revisions/#comments"/>
    <link rel="alternate" type="text/html" href="https://blog.example/2024/03/revisions/"/>
    <published>2024-03-11T08:00:00+01:00</published>
    <updated>2024-03-12T10:30:00Z</updated>
    <category scheme="https://blog.example" term="news"/>
    <category scheme="https://blog.example/post_tag" term="lyon"/>
    <summary type="html">&lt;p&gt;Ouverture&amp;nbsp;!&lt;/p&gt;</summary>
    <content type="html">&lt;p&gt;Texte &lt;img src="/up/v.jpg" alt="V&#233;lo"&gt;
      &lt;/p&gt;</content>
  </entry>
</feed>"""
    parsed = parse("fr", atom, base_url="https://blog.example/feed/atom/")
    assert parsed.title == "Le blog"
    [post] = parsed.posts
    assert post.url == "https://blog.example/2024/03/revisions/"
    assert post.title == "Révisions & café"
    assert post.summary == "Ouverture\xa0!"
    assert post.categories == ("news",) and post.tags == ("lyon",)
    assert post.images == (Image("https://blog.example/up/v.jpg", "Vélo"),)
    assert post.published == datetime(2024, 3, 11, 7, 0, tzinfo=UTC)
    assert post.updated == datetime(2024, 3, 12, 10, 30, tzinfo=UTC)
    assert post.language == "fr"


def test_identity_falls_back_to_link_and_entries_without_one_are_skipped() -> None:
    parsed = parse(
        "b",
        rss(
            "<title>no guid</title><link>https://blog.example/a/</link>",
            "<title>nothing to identify me</title>",
            "<title>first</title><guid isPermaLink='false'>dup</guid>",
            "<title>second</title><guid isPermaLink='false'>dup</guid>",
        ),
    )
    assert [(p.guid, p.title) for p in parsed.posts] == [
        ("https://blog.example/a/", "no guid"),
        ("dup", "first"),
    ]
    assert parsed.warnings == [
        "entry 2 has neither a guid nor a link; skipped",
        "entry 4 repeats guid 'dup'; skipped",
    ]


def test_titleless_micropost_and_missing_fields() -> None:
    [post] = parse("m", rss("<guid>https://blog.example/?p=3</guid>")).posts
    assert (post.title, post.summary, post.content_html) == ("", "", "")
    assert post.url == "https://blog.example/?p=3"  # an RSS guid is a permalink by default
    assert (post.published, post.updated, post.images) == (None, None, ())


def test_only_http_links_become_urls() -> None:
    item = "<guid isPermaLink='false'>x</guid><link>javascript:alert(1)</link>"
    assert parse("b", rss(item)).posts[0].url == ""


def test_plain_text_content_is_escaped_into_html() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>e</id>
    <content type="text">a &lt; b &amp; c</content></entry></feed>"""
    assert parse("a", atom).posts[0].content_html == "a &lt; b &amp; c"


def test_continue_reading_tail_is_dropped() -> None:
    item = """<guid>g</guid><description><![CDATA[Short intro&#8230; <a class="more-link"
    href="https://blog.example/x/">Continue reading <span>Short</span> &#8594;</a>
    ]]></description>"""
    assert parse("b", rss(item)).posts[0].summary == "Short intro…"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", ""),
        (b"  \n ", "application/rss+xml"),
        (b"<!DOCTYPE html><html><body><p>Blog</p></body></html>", "text/html; charset=utf-8"),
        (b'{"items": []}', "application/json"),
        (b"\x00\x01\x02garbage\xff", ""),
        (b"<?xml version='1.0'?><note><to>x</to></note>", "application/xml"),
    ],
)
def test_documents_that_are_not_feeds_raise(body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with pytest.raises(FeedError, match="not a feed"):
        parse("x", body, headers=headers)


def test_truncated_feed_keeps_the_complete_entries_and_warns() -> None:
    whole = rss("<guid>a</guid><title>A</title>", "<guid>b</guid><title>B</title>")
    parsed = parse("t", whole[: whole.index(b"</channel>")])
    assert [p.title for p in parsed.posts] == ["A", "B"]
    assert parsed.warnings == ["malformed XML at line 5: no element found; 2 entries recovered"]


def test_broken_feed_without_entries_raises() -> None:
    with pytest.raises(FeedError, match="malformed XML at line 1: unclosed token; no entries"):
        parse("t", b"<rss version='2.0'><channel><title>t</title></channel></rss")


def test_empty_but_valid_feed_has_no_posts() -> None:
    parsed = parse("e", rss())
    assert (parsed.posts, parsed.warnings, parsed.title) == ([], [], "Blog")


def test_utf8_feed_served_as_text_xml_parses_without_warning() -> None:
    parsed = parse(
        "t", rss("<guid>g</guid><title>Crème</title>"), headers={"content-type": "text/xml"}
    )
    assert (parsed.posts[0].title, parsed.warnings) == ("Crème", [])


def test_http_charset_decodes_an_undeclared_feed() -> None:
    body = "<rss version='2.0'><channel><title>t</title><item><guid>g</guid><title>Привет</title>"
    body += "</item></channel></rss>"
    parsed = parse(
        "ru", body.encode("cp1251"), headers={"Content-Type": "text/xml; charset=windows-1251"}
    )
    assert parsed.posts[0].title == "Привет"


def test_bundled_sample_feed() -> None:
    body = files("syndicator").joinpath("sample/feed.xml").read_bytes()
    parsed = parse("sample", body, headers={"content-type": "text/xml"})
    assert parsed.warnings == []
    assert parsed.title == "Brightside Bikes – Blog"
    posts = {p.guid.rsplit("=", 1)[1]: p for p in parsed.posts}
    assert len(parsed.posts) == 5 and len(posts) == 5
    assert {c for p in parsed.posts for c in p.categories} >= {"events", "news", "product"}
    kit = posts["412"]
    assert kit.images == (
        Image(
            "https://brightside-bikes.example/wp-content/uploads/2024/05/trailhead-kit-1024x683.jpg"
        ),
    )
    assert kit.summary.endswith("open today at the shop counter and online.")  # no [...], no Yoast
    house = posts["398"]
    assert house.images == (
        Image(
            "https://brightside-bikes.example/wp-content/uploads/2024/04/open-house-2023-1024x768.jpg",
            "Mechanics and visitors around a repair stand in the Brightside workshop",
        ),
    )
    assert (
        posts["377"].title
        == "Bonjour Lyon\xa0! Notre atelier de réparation ouvre à la Croix-Rousse"
    )
    assert posts["352"].title.startswith("¡Hola, Madrid!")
    hiring = posts["330"]
    assert hiring.title == "We’re hiring: part-time bike mechanic 🚲"
    assert hiring.summary.endswith("Apprentices welcome 🛠")
    assert hiring.images == ()  # the emoji <img class="wp-smiley"> is text, not a picture
    assert all(p.published and p.published.tzinfo is UTC for p in parsed.posts)
