"""render.py: templates, hashtags, UTM, counting per platform, truncation, golden texts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicator.connector import Limits, TextOptions
from syndicator.errors import ConfigError, PermanentError
from syndicator.models import Post
from syndicator.render import count, hashtags, render, validate_template, with_utm

GOLDEN = Path(__file__).parent / "golden" / "render"
TEMPLATE = "{title}\n\n{summary}\n\n{url}\n\n{hashtags}"
PROFILES = {
    "mastodon": Limits(500, "chars", url_length=23),
    "x": Limits(280, "twitter"),
    "bluesky": Limits(300, "graphemes"),
    "linkedin": Limits(3000, "chars"),
    "facebook": Limits(63206, "chars"),
}


def post(title: str = "Title", **fields: object) -> Post:
    """A post with only what a test cares about."""
    values: dict = {"feed": "blog", "guid": "1", "url": "https://blog.example.com/p/1/"}
    return Post(title=title, **{**values, **fields})


def assert_golden(path: Path, text: str) -> None:
    """Compare with the reviewed file; `UPDATE_GOLDEN=1` rewrites it instead."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1, then review it"
    assert text + "\n" == path.read_text(encoding="utf-8")


# --- golden files ---------------------------------------------------------------------

X_LINKS = (
    "This week: https://docs.python.org/3/library/unicodedata.html on normalisation, "
    "https://www.unicode.org/reports/tr29/ on grapheme clusters, "
    "https://github.com/twitter/twitter-text/tree/master/conformance for the counting rules "
    "and https://example.com/a/very/long/path/that/keeps/going?with=a&query=string for fun."
)
YORUBA_TITLE = (  # combining marks that NFC cannot fold into precomposed letters
    "E\u0323\u0300ko\u0323\u0301 o\u0323\u0300fe\u0323\u0301: free Yoru\u0300ba\u0301 classes"
    " for the whole family 👩\u200d👩\u200d👧\u200d👦"
)
YORUBA_SUMMARY = (
    "Every Saturday at the library: reading, songs and games for all ages 👍🏽. Everyone is"
    " welcome 🏳️\u200d🌈 🇳🇬, bring a friend and some snacks to share with us "
)
CASES = {
    "plain_english": post(
        "How we cut our build times in half",
        summary="<p>A short tour of the caching, parallelism and test-splitting changes that"
        " took our CI from 18 minutes to 9. [&#8230;]</p>",
        url="https://blog.example.com/2026/03/build-times/",
        categories=("Engineering", "Uncategorized"),
        tags=("CI", "build tools", "engineering"),
    ),
    "spanish": post(
        "¿Qué hay de nuevo en la edición 2026? Año de cambios",
        summary="Repasamos las novedades del festival: más escenarios, nuevas fechas y un"
        " cartel renovado.",
        url="https://ejemplo.es/2026/04/que-hay-de-nuevo/",
        categories=("Sin categoría", "Noticias"),
        tags=("edición 2026", "2026", "música en vivo"),
    ),
    "french": post(
        "Les événements de l'été à Besançon : où aller ?",
        summary="Concerts, marchés nocturnes et expositions : notre sélection pour profiter"
        " de l'été en ville.",
        url="https://exemple.fr/2026/07/evenements-ete-besancon/",
        categories=("Non classé", "Événements spéciaux", "Besançon"),
        tags=("été", "sorties"),
    ),
    "emoji": post(
        "Our 🎉 10th birthday party 🎂 — thank you! 👩\u200d👩\u200d👧\u200d👦",
        summary="Ten years, 1,000 posts and one very tired 🐈\u200d⬛. What comes next 🚀🇫🇷?",
        url="https://blog.example.com/2026/02/ten-years/",
        categories=("News",),
        tags=("birthday 🎉",),
    ),
    "x_at_limit": post(
        "Weekly links, issue 12",
        summary=X_LINKS + " Plus: why 日本語 and emoji count double.",
        url="https://blog.example.com/2026/05/weekly-links-12/",
        categories=("Links",),
    ),
    "x_over_limit": post(
        "Weekly links, issue 12",
        summary=X_LINKS + " Plus: why 日本 and emoji 🎉 count double.",
        url="https://blog.example.com/2026/05/weekly-links-12/",
        categories=("Links",),
    ),
    "bluesky_300": post(
        YORUBA_TITLE,
        summary=YORUBA_SUMMARY + "🍪!",
        url="https://blog.example.org/2026/06/eko-ofe/",
        categories=("Community",),
        tags=("Yorùbá",),
    ),
    "bluesky_301": post(
        YORUBA_TITLE,
        summary=YORUBA_SUMMARY + "🍪🥤!",
        url="https://blog.example.org/2026/06/eko-ofe/",
        categories=("Community",),
        tags=("Yorùbá",),
    ),
}


def options_for(platform: str) -> TextOptions:
    """What a target on `platform` would configure: summary in, UTM naming the platform."""
    return TextOptions(template=TEMPLATE, utm={"source": platform, "medium": "social"})


@pytest.mark.parametrize("platform", PROFILES)
@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, platform: str) -> None:
    limits = PROFILES[platform]
    text = render(CASES[case], options_for(platform), limits)
    assert count(text, limits) <= limits.max_chars
    assert_golden(GOLDEN / f"{case}.{platform}.txt", text)


def untruncated(case: str, platform: str) -> int:
    """Length of the case's full text on `platform`, with no limit applied."""
    limits = PROFILES[platform]
    roomy = Limits(10**6, limits.counting, url_length=limits.url_length)
    return count(render(CASES[case], options_for(platform), roomy), limits)


def test_edge_cases_sit_where_they_claim() -> None:
    assert untruncated("x_at_limit", "x") == 280
    assert untruncated("x_over_limit", "x") == 281
    assert untruncated("bluesky_300", "bluesky") == 300
    assert untruncated("bluesky_301", "bluesky") == 301
    # the Bluesky edge holds more code points than graphemes: a code-point count would cut it
    full = render(CASES["bluesky_300"], options_for("bluesky"), PROFILES["bluesky"])
    assert len(full) > 300 and "👩\u200d👩\u200d👧\u200d👦" in full


def test_at_limit_is_kept_whole_and_over_limit_cut_in_the_summary() -> None:
    at = render(CASES["x_at_limit"], options_for("x"), PROFILES["x"])
    assert "…" not in at and "emoji count double." in at
    over = render(CASES["x_over_limit"], options_for("x"), PROFILES["x"])
    assert "emoji 🎉 count…\n" in over and over.endswith("#Links")
    blue = render(CASES["bluesky_301"], options_for("bluesky"), PROFILES["bluesky"])
    assert "share with us…" in blue and "🍪" not in blue


# --- template --------------------------------------------------------------------------


def test_validate_template_accepts_every_field() -> None:
    validate_template("{title} {url} {summary} {hashtags} {categories} {{literal}}")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{title} {tittle}", "unknown field {tittle} in template"),
        ("{}", "unknown field {} in template"),
        ("{title.upper}", "unknown field {title.upper} in template"),
        ("{title:>40}", "takes no format"),
        ("{title!r}", "takes no format"),
        ("{title", "invalid template"),
    ],
)
def test_validate_template_rejects(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate_template(template)


def test_render_checks_the_template_too() -> None:
    with pytest.raises(ConfigError):
        render(post(), TextOptions(template="{body}"), PROFILES["mastodon"])


def test_empty_summary_leaves_no_blank_line_hole() -> None:
    text = render(post("Hello  world  "), TextOptions(template=TEMPLATE), PROFILES["mastodon"])
    assert text == "Hello world\n\nhttps://blog.example.com/p/1/"


def test_whitespace_is_tidied() -> None:
    options = TextOptions(template="{title}   \n\n\n\n{url}\t\n{categories}\n\n")
    text = render(post("A\x00b\nc", categories=("Uncategorized",)), options, PROFILES["x"])
    assert text == "A b c\n\nhttps://blog.example.com/p/1/"


def test_link_overrides_url_and_categories_are_listed() -> None:
    options = TextOptions(template="{title} {url} ({categories})", utm={"source": "x"})
    text = render(post(categories=("Tech", "Non classé", "Life")), options, PROFILES["x"])
    assert text == "Title https://blog.example.com/p/1/?utm_source=x (Tech, Life)"
    text = render(post(), options, PROFILES["x"], link="https://short.example/abc")
    assert text == "Title https://short.example/abc ()"


def test_summary_becomes_plain_text() -> None:
    options = TextOptions(template="{summary}")
    summary = "<p>Fish &amp; chips</p><p>are <em>great</em> and [&hellip;]</p>"
    assert render(post(summary=summary), options, PROFILES["x"]) == "Fish & chips are great and…"
    summary = "<p>A whole sentence. [&#8230;]</p>"
    assert render(post(summary=summary), options, PROFILES["x"]) == "A whole sentence."


# --- hashtags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Événements spéciaux", "#ÉvénementsSpéciaux"),
        ("web development", "#WebDevelopment"),
        ("iPhone", "#iPhone"),
        ("C++ / Rust!", "#CRust"),
        ("Москва новости", "#МоскваНовости"),
        ("日本語", "#日本語"),
        ("Édition 2026", "#Édition2026"),
        ("Cafe\u0301", "#Café"),
    ],
)
def test_hashtag_normalisation(name: str, tag: str) -> None:
    assert hashtags(post(categories=(name,)), TextOptions()) == [tag]


@pytest.mark.parametrize(
    "name", ["2026", "Uncategorized", "Non classé", "Sin categoría", "sin categoria", "!!!", ""]
)
def test_hashtag_dropped(name: str) -> None:
    assert hashtags(post(categories=(name,)), TextOptions()) == []


def test_hashtags_deduplicated_capped_and_sourced() -> None:
    p = post(categories=("News", "Tech"), tags=("news", "TECH", "AI", "Space"))
    assert hashtags(p, TextOptions()) == ["#News", "#Tech", "#AI"]
    assert hashtags(p, TextOptions(max_hashtags=5)) == ["#News", "#Tech", "#AI", "#Space"]
    assert hashtags(p, TextOptions(hashtags_from=("tags",))) == ["#news", "#TECH", "#AI"]
    assert hashtags(p, TextOptions(max_hashtags=0)) == []
    with pytest.raises(ConfigError, match="hashtags_from"):
        hashtags(p, TextOptions(hashtags_from=("keywords",)))


# --- UTM -------------------------------------------------------------------------------


def test_with_utm() -> None:
    utm = {"source": "mastodon", "utm_medium": "social", "campaign": "été 2026"}
    assert with_utm("https://b.example/p/?id=3&utm_source=rss#top", utm) == (
        "https://b.example/p/?id=3&utm_source=mastodon&utm_medium=social"
        "&utm_campaign=%C3%A9t%C3%A9+2026#top"
    )
    assert with_utm("https://b.example/p/?a=%20b", {}) == "https://b.example/p/?a=%20b"


# --- counting --------------------------------------------------------------------------


def test_count_chars_with_url_length() -> None:
    url = "https://example.com/" + "a" * 80
    assert count(f"see {url} now", PROFILES["mastodon"]) == 4 + 23 + 4
    assert count(f"see {url} now", PROFILES["linkedin"]) == 8 + len(url)
    assert count("https://localhost:3000/x", PROFILES["mastodon"]) == 24  # no TLD, no discount
    assert count("e\u0301", PROFILES["mastodon"]) == 1  # counted after NFC


def test_count_graphemes() -> None:
    limits = PROFILES["bluesky"]
    assert count("👩\u200d👩\u200d👧\u200d👦 🇫🇷 👍🏽 o\u0323\u0300", limits) == 7
    assert count("https://example.com/" + "a" * 80, limits) == 100  # URLs count in full


def test_count_twitter_weights() -> None:
    limits = PROFILES["x"]
    assert count("abc", limits) == 3
    assert count("日本語", limits) == 6
    assert count("👩\u200d👩\u200d👧\u200d👦", limits) == 2
    assert count("https://example.com/" + "a" * 80, limits) == 23
    assert count("…", limits) == 2


# --- truncation ------------------------------------------------------------------------


def test_summary_shortened_before_title() -> None:
    options = TextOptions(template="{title}\n{summary}\n{url}")
    p = post("A fine title", summary="one two three four five six seven eight nine ten")
    text = render(p, options, Limits(62, "chars"))
    assert text == "A fine title\none two three four…\nhttps://blog.example.com/p/1/"


def test_title_shortened_at_word_boundary_then_hashtags_dropped() -> None:
    options = TextOptions(template="{title} {url} {hashtags}")
    p = post("Alpha beta, gamma delta", summary="gone", categories=("One", "Two"))
    assert render(p, options, Limits(51, "chars")) == (
        "Alpha beta… https://blog.example.com/p/1/ #One #Two"
    )
    assert render(p, options, Limits(35, "chars")) == "https://blog.example.com/p/1/ #One"


def test_text_without_spaces_is_cut_between_graphemes() -> None:
    options = TextOptions(template="{title} {url}")
    p = post("日本語のタイトルはスペースがありません👩\u200d👩\u200d👧")
    text = render(p, options, Limits(40, "graphemes"))
    assert text == "日本語のタイトルは… https://blog.example.com/p/1/"


def test_template_and_link_that_cannot_fit() -> None:
    with pytest.raises(PermanentError, match="cannot fit in 20"):
        render(post(), TextOptions(), Limits(20, "graphemes"))


URL = "https://blog.example.com/2026/05/a-post/"


def prose(words: int) -> st.SearchStrategy[str]:
    """Random Unicode, long enough to overflow: words with spaces, or one unbroken run."""
    spaced = st.lists(st.text(min_size=1, max_size=15), min_size=words // 2, max_size=words)
    return st.one_of(spaced.map(" ".join), st.text(min_size=words, max_size=8 * words))


@pytest.mark.parametrize("platform", ["mastodon", "x", "bluesky"])
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=prose(60),
    summary=prose(150),
    categories=st.lists(prose(4), max_size=6),
    tags=st.lists(st.text(max_size=40), max_size=6),
)
def test_always_fits_and_never_cuts_link_or_hashtag(
    platform: str, title: str, summary: str, categories: list[str], tags: list[str]
) -> None:
    p = post(title, url=URL, summary=summary, categories=tuple(categories), tags=tuple(tags))
    limits = PROFILES[platform]
    text = render(p, TextOptions(template=TEMPLATE), limits)
    assert count(text, limits) <= limits.max_chars
    assert URL in text
    kept = text.rsplit(URL, 1)[1].split()
    assert kept == hashtags(p, TextOptions())[: len(kept)]
