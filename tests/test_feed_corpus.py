"""feed.parse on real feeds kept beside the repository (../shared/corpus/feeds).

SOURCES.md there lists, per file, how many entries feedparser finds; the expectations are
read from its tables, not copied here. A user's clone has no ../shared: everything skips.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from syndicator.errors import FeedError
from syndicator.feed import ParsedFeed, parse

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "feeds"
FILES = sorted(path.name for path in CORPUS.glob("*.xml")) if CORPUS.is_dir() else []
NO_IDENTITY = "has neither a guid nor a link; skipped"


def expected_entries() -> dict[str, int]:
    """file → entry count, from every SOURCES.md table that has an `entries` column."""
    counts: dict[str, int] = {}
    columns: list[str] = []
    for line in (CORPUS / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            columns = []
        elif not columns:
            columns = cells
        elif "entries" in columns and not set(cells[0]) <= set("-: "):
            counts[cells[0]] = int(cells[columns.index("entries")])
    return counts


@pytest.fixture(scope="module")
def entries() -> dict[str, int]:
    if not CORPUS.is_dir():
        pytest.skip("the feed corpus (../shared/corpus/feeds) is not present")
    return expected_entries()


def load(name: str) -> ParsedFeed:
    if not CORPUS.is_dir():
        pytest.skip("the feed corpus (../shared/corpus/feeds) is not present")
    return parse(name.split(".")[0], (CORPUS / name).read_bytes())


@pytest.mark.parametrize("name", FILES or [pytest.param("", marks=pytest.mark.skip("no corpus"))])
def test_every_corpus_feed_parses(name: str, entries: dict[str, int]) -> None:
    expected = entries.get(name)
    try:
        parsed = load(name)
    except FeedError:
        assert expected == 0, f"{name}: FeedError although SOURCES.md lists {expected} entries"
        return
    skipped = sum(NO_IDENTITY in warning for warning in parsed.warnings)
    if expected:
        # an entry is either a Post or a warning saying why not (empty <item/> elements)
        assert len(parsed.posts) + skipped == expected
    if name.startswith("wp"):
        assert skipped == 0  # WordPress always writes a guid and a link
    guids = [post.guid for post in parsed.posts]
    assert all(guids) and len(set(guids)) == len(guids)
    for post in parsed.posts:
        assert post.url == "" or urlsplit(post.url).scheme in ("http", "https")
        assert post.title == post.title.strip() and "\n" not in post.title
        assert "appeared first on" not in post.summary
        assert all(urlsplit(image.url).scheme in ("http", "https") for image in post.images)
        assert len({image.url for image in post.images}) == len(post.images)
        assert not any("emoji" in image.url or "smilies" in image.url for image in post.images)
        for when in (post.published, post.updated):
            assert when is None or when.utcoffset() is not None


def test_corpus_expectations_were_read(entries: dict[str, int]) -> None:
    assert entries["wp6.1-rsscom-blog-100items.rss.xml"] == 100
    assert len(entries) >= 38


def test_titleless_wordpress_microposts() -> None:
    parsed = load("wp4.2-manton-titleless-microposts.rss.xml")
    assert len(parsed.posts) == 10
    untitled = [post for post in parsed.posts if post.title == ""]
    assert len(untitled) == 4
    assert all(post.summary and post.url for post in untitled)


def test_wordpress_com_media_content_images() -> None:
    parsed = load("wpcom-techcrunch-media-content.rss.xml")
    assert len(parsed.posts) == 20
    assert parsed.warnings == [
        "malformed XML at line 2: XML or text declaration not at start of entity; "
        "20 entries recovered"
    ]
    first = parsed.posts[0]
    assert first.images[0].url == (
        "http://tctechcrunch2011.files.wordpress.com/2011/11/angies-list.jpeg?w=150"
    )
    assert first.url.startswith("http://techcrunch.com/2011/11/02/")  # feedburner:origLink
    for post in parsed.posts:
        assert post.images and "files.wordpress.com" in post.images[0].url
        hosts = {urlsplit(image.url).hostname for image in post.images}
        assert not hosts & {"1.gravatar.com", "feeds.feedburner.com", "feedads.g.doubleclick.net"}


def test_french_wordpress_titles_and_image_enclosures() -> None:
    parsed = load("wp3.3-sametmax-french-enclosures.rss.xml")
    titles = [post.title for post in parsed.posts]
    assert "Qu’est-de que MVC et à quoi ça sert ?" in titles
    assert "Ignorer certains caractères spéciaux dans un template django" in titles
    first = parsed.posts[0]
    assert first.images[0].url == "http://sametmax.com/wp-content/uploads/2013/12/mOMU7AC.jpg"
    assert all("/wp-content/uploads/" in post.images[0].url for post in parsed.posts)
    assert not any("flattr" in image.url for post in parsed.posts for image in post.images)
    assert parsed.title == "Sam & Max: Python, Django, Git et du cul"


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("golem-de-iso-8859-1.rss.xml", "Wochenrückblick"),
        ("ibash-ru-windows-1251.rss.xml", "Цитата"),
        ("lecerclepsy-french-latin1-no-xml-declaration.rss.xml", "criminalité liée"),
        ("uol-noticias-portuguese.rss.xml", "simulações"),
    ],
)
def test_legacy_encodings_decode(name: str, word: str) -> None:
    assert any(word in post.title for post in load(name).posts)


def test_whitespace_inside_link_is_removed() -> None:
    [post] = load("wp5.1-earthquakes-whitespace-in-link.rss.xml").posts
    assert post.url == (
        "http://www.earthquakenewstoday.com/2019/08/06/"
        "minor-earthquake-3-5-mag-was-detected-near-aris-in-greece/"
    )


def test_yoast_footer_and_excerpt_tails_are_dropped() -> None:
    posts = load("wp6.1-rsscom-blog-100items.rss.xml").posts
    assert posts[0].summary == "There is no excerpt because this is a protected post."
    for name in ("wp2.5-mysqlperformanceblog.rss.xml", "wp2.8-atom10.atom.xml"):
        assert not any(p.summary.endswith(("[...]", "[…]")) for p in load(name).posts)


def test_illegally_nested_items_become_warnings_not_posts() -> None:
    parsed = load("feedburner-pcmag-illegally-nested.rss.xml")
    assert len(parsed.posts) == 10
    assert sum(NO_IDENTITY in warning for warning in parsed.warnings) == 10


def test_full_content_feed_with_a_bad_character_reference() -> None:
    parsed = load("next-inpact-french-full-content.rss.xml")
    assert len(parsed.posts) == 45
    assert parsed.warnings == [
        "malformed XML at line 428: reference to invalid character number; 45 entries recovered"
    ]
