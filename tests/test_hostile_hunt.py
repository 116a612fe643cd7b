"""Hostile-input hunt: inputs that crash, hang, blow memory, leak secrets or lose posts.

Each known problem is a strict xfail whose reason names the input and what goes wrong; the
plain tests pin down hostile inputs that are handled well and were not covered elsewhere.
Everything runs against 127.0.0.1; each test ends within two seconds (a hang is cut by a
subprocess timeout).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import unicodedata
import xmlrpc.client
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from PIL import Image as PILImage
from pytest_httpserver import HTTPServer
from werkzeug import Response

from syndicator import config
from syndicator import listener as listener_module
from syndicator.app import App
from syndicator.config import FeedSettings
from syndicator.connector import Limits
from syndicator.errors import ConfigError, MediaError
from syndicator.feed import parse
from syndicator.listener import Listener
from syndicator.media import ImageCache, MediaPolicy
from syndicator.metrics import Metrics
from syndicator.models import Image, State, utcnow
from syndicator.queries import list_deliveries
from syndicator.render import render
from syndicator.scheduler import Daemon
from tests.fakes import Entry

ROOT = Path(__file__).resolve().parents[1]

PIPELINE = """
[syndicator]
mode = "{mode}"
state_dir = "{state}"
database = "{db}"
CORE

[[feeds]]
name = "blog"
url = "FEED_URL"
FEED

[targets.alpha]
type = "fake"
platform = "alpha"
TARGET
"""


def pipeline_config(
    write_config: Callable[..., Path],
    feed_url: str,
    *,
    mode: str = "dry-run",
    core: str = "",
    feed: str = "",
    target: str = "",
    name: str = "config.toml",
) -> Path:
    text = (
        PIPELINE.replace("{mode}", mode)
        .replace("FEED_URL", feed_url)
        .replace("CORE", core)
        .replace("FEED\n", feed + "\n")
        .replace("TARGET", target)
    )
    return write_config(text, name)


@pytest.fixture
def apps() -> Iterator[list[App]]:
    opened: list[App] = []
    yield opened
    for app in opened:
        app.close()


def build(apps: list[App], path: Path) -> App:
    app = App.build(config.load(path))
    apps.append(app)
    return app


def run_python(code: str, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (killed at `timeout`: TimeoutExpired)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kwargs,  # type: ignore[arg-type]
    )


# == config.load ================================================================================

CONFIG_ONLY = """
[syndicator]
state_dir = "{state}"
CORE

[[feeds]]
name = "blog"
url = "https://blog.example/feed/"
FEED

[targets.alpha]
type = "fake"
platform = "alpha"
TARGET
"""


def config_text(core: str = "", feed: str = "", target: str = "", state: str = "") -> str:
    text = CONFIG_ONLY.replace("CORE", core).replace("FEED", feed).replace("TARGET", target)
    return text.replace('state_dir = "{state}"', state) if state else text


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("state", 'state_dir = "~no-such-user-4711/state"'),
        ("state", 'state_dir = "state\\u0000dir"'),
        ("target", 'token_file = "tok\\u0000en"'),
        ("target", 'token_file = "BINARY"'),
        ("core", 'webhook_secret_file = "BINARY"'),
    ],
)
def test_config_load_raises_only_config_error(tmp_path: Path, where: str, line: str) -> None:
    (tmp_path / "binary").write_bytes(b"\xff\xfe\xfa not UTF-8 \xc3\x28")
    text = config_text(**{where: line.replace("BINARY", str(tmp_path / "binary"))})
    path = tmp_path / "config.toml"
    path.write_text(text.replace("{state}", str(tmp_path / "state")))
    with pytest.raises(ConfigError):
        config.load(path)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "config-is-a-fifo"])
def test_secret_file_that_never_ends_is_refused(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    secret = {"fifo": str(fifo), "dev-zero": "/dev/zero"}.get(kind, "unused")
    path = tmp_path / "config.toml"
    path.write_text(
        config_text(core=f'webhook_secret_file = "{secret}"').replace(
            "{state}", str(tmp_path / "state")
        )
    )
    target = fifo if kind == "config-is-a-fifo" else path
    code = f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1_000_000_000, 1_000_000_000))
        from syndicator import config
        from syndicator.errors import ConfigError
        try:
            config.load({str(target)!r})
            print("loaded")
        except ConfigError as exc:
            print("ConfigError", exc)
    """
    done = run_python(code, timeout=1.5)
    assert done.stdout.startswith("ConfigError"), done.stdout + done.stderr[-300:]


def test_hashtags_from_typo_is_refused_at_start(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    path = pipeline_config(write_config, feed_server.url, target='hashtags_from = ["category"]')
    with pytest.raises(ConfigError, match="hashtags_from"):
        build(apps, path)


@pytest.mark.parametrize(
    "line",
    [
        'webhook_secret = ["whsec-0a1b2c3d4e5f"]',
        'database = ["postgresql+psycopg://app:pw-9f8e7d6c@db/app"]',
    ],
)
def test_wrongly_typed_secret_is_not_echoed(write_config: Callable[..., Path], line: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(write_config(config_text(core=line)))
    assert "0a1b2c3d4e5f" not in str(err.value) and "pw-9f8e7d6c" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[syndicator]\nmode = 'live'\nmode = 'dry-run'\n", "invalid TOML"),
        ("[targets.a]\ntype = 'fake'\n[targets.a]\ntype = 'fake'\n", "invalid TOML"),
        ("[syndicator]\nMode = 'live'\n", "unknown key"),
    ],
)
def test_duplicated_keys_and_tables_are_refused(
    write_config: Callable[..., Path], text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write_config(text))


def test_a_config_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path)


def test_target_names_with_dots_spaces_and_unicode_round_trip(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    names = ["a.b", "with space", "café ☕", "ﬁ"]  # the last is a compatibility ligature
    text = pipeline_config(write_config, feed_server.url).read_text()
    text = text.split("[targets.alpha]")[0]
    for index, name in enumerate(names):
        text += f'\n[targets."{name}"]\ntype = "fake"\nplatform = "p{index}"\n'
    app = build(apps, write_config(text))
    assert [t.name for t in app.settings.targets] == names
    feed_server.add("old")
    app.run_once()
    feed_server.add("new")
    app.run_once()
    assert sorted(d.target for d in list_deliveries(app.store)) == sorted(names)


# == the daemon's SIGHUP reload ==================================================================


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("feed", "interval = nan"),
        ("core", 'listen = "localhost"'),
        ("core", 'database = "postgres://syndicator@127.0.0.1:1/syndicator"'),
        ("core", 'state_dir = "STATE_FILE"'),
        ("target", 'token_file = "BINARY"'),
    ],
)
def test_reload_with_a_bad_config_keeps_the_daemon_running(
    tmp_path: Path,
    write_config: Callable[..., Path],
    feed_server,
    apps: list[App],
    where: str,
    line: str,
) -> None:
    path = pipeline_config(write_config, feed_server.url)
    good = path.read_text()
    app = build(apps, path)
    daemon = Daemon(app, path)
    (tmp_path / "binary").write_bytes(b"\xff\xfe not UTF-8")
    (tmp_path / "a-file").write_text("")
    line = line.replace("BINARY", str(tmp_path / "binary"))
    line = line.replace("STATE_FILE", str(tmp_path / "a-file"))
    key = line.split(" ")[0]
    if key in ("state_dir", "database"):  # replace the key's line, not repeat the key
        bad = "\n".join(ln if not ln.startswith(f"{key} =") else line for ln in good.splitlines())
        path.write_text(bad)
    else:
        pipeline_config(write_config, feed_server.url, **{where: line})
    assert path.read_text() != good
    try:
        daemon.reload()  # must log "reload refused" and keep running on the old config
        assert daemon.app is app
        assert daemon.app.settings.feeds[0].interval == 300.0
    finally:
        if daemon.listener:
            daemon.listener.stop()
        daemon.dispatcher.close()
        if daemon.app is not app:
            daemon.app.close()


# == the poller ==================================================================================


@pytest.mark.xfail(
    strict=True,
    reason="feedparse.py parse dedups by guid within a document and poller treats the next "
    "article under the same guid as an edit of the first: with a feed that gives every "
    "entry one guid, each new article overwrites the stored post and is never published",
)
def test_entries_sharing_one_guid_still_publish_each_article(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    feed_server.entries = [Entry("same", "First", "https://blog.example/first")]
    app = build(apps, pipeline_config(write_config, feed_server.url))
    app.run_once()
    feed_server.entries.insert(0, Entry("same", "Second", "https://blog.example/second"))
    app.run_once()
    published = {d.post_url for d in list_deliveries(app.store)}
    assert "https://blog.example/second" in published


def test_guid_differing_only_by_unicode_normalisation_is_not_posted_twice(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    feed_server.entries = []
    app = build(apps, pipeline_config(write_config, feed_server.url))
    app.run_once()
    nfc = "https://blog.example/?p=caf\u00e9"
    feed_server.add(nfc, "Café", link="https://blog.example/cafe")
    app.run_once()
    feed_server.entries[0].guid = unicodedata.normalize("NFD", nfc)
    app.run_once()
    assert len(list_deliveries(app.store)) == 1


def test_guids_differing_only_by_surrounding_whitespace_are_one_post(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    feed_server.entries = []
    app = build(apps, pipeline_config(write_config, feed_server.url))
    app.run_once()
    feed_server.add("guid-1", "Spaces")
    app.run_once()
    feed_server.entries[0].guid = "\n  guid-1\t\u00a0"
    app.run_once()
    assert len(list_deliveries(app.store)) == 1


def test_a_guid_cannot_forge_publish_log_lines(
    write_config: Callable[..., Path],
    feed_server,
    apps: list[App],
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.entries = []
    app = build(apps, pipeline_config(write_config, feed_server.url))
    app.run_once()
    forged = 'g1"\nWARNING syndicator.publishing: publish post=g0 outcome=published url="x'
    feed_server.add(forged, "Forger")
    caplog.set_level(logging.INFO)
    app.run_once()
    (delivery,) = list_deliveries(app.store)
    assert delivery.post_guid == forged  # stored as given
    lines = [
        r.getMessage()
        for r in caplog.records
        if "Forger" in r.getMessage() or "g1" in r.getMessage()
    ]
    assert lines and not any("\n" in line for line in lines), lines


def test_relative_guids_do_not_change_when_the_feed_url_moves(
    write_config: Callable[..., Path], httpserver: HTTPServer, apps: list[App]
) -> None:
    published = (utcnow() - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    item = (
        "<item><title>Hello</title><link>https://blog.example/hello</link>"
        f"<guid>?p=1</guid><pubDate>{published}</pubDate></item>"
    )
    body = f'<rss version="2.0"><channel><title>t</title>{item}</channel></rss>'
    moved = [False]

    def feed(_request: object) -> Response:
        if moved[0]:
            return Response("", status=301, headers={"Location": "/blog/feed/"})
        return Response(body, content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(feed)
    httpserver.expect_request("/blog/feed/").respond_with_data(
        body, content_type="application/rss+xml"
    )
    path = pipeline_config(write_config, httpserver.url_for("/feed"), feed="backfill = 1")
    app = build(apps, path)
    app.run_once()
    assert len(list_deliveries(app.store)) == 1
    moved[0] = True  # same document, now behind a redirect
    (result,) = app.poll_due_feeds(force=True)
    assert result.new_posts == 0 and len(list_deliveries(app.store)) == 1


@pytest.mark.xfail(
    strict=True,
    reason="poller.py too_old: an undated entry is never too old, so a feed that jumps from "
    "10 to hundreds of (undated) entries floods every target with its whole back catalogue; "
    "no per-poll cap or 'looks like a first poll' guard",
)
def test_a_sudden_jump_of_undated_entries_is_not_flooded_out(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    for i in range(10):
        feed_server.add(f"g{i}")
    app = build(apps, pipeline_config(write_config, feed_server.url))
    app.run_once()
    feed_server.entries += [Entry(f"old-{i}", f"Old {i}") for i in range(300)]
    (result,) = app.poll_due_feeds(force=True)
    assert result.deliveries <= 20, f"{result.deliveries} posts queued for publishing"


def test_a_sudden_jump_of_old_dated_entries_is_skipped(
    write_config: Callable[..., Path], feed_server, apps: list[App]
) -> None:
    for i in range(10):
        feed_server.add(f"g{i}")
    app = build(apps, pipeline_config(write_config, feed_server.url))
    app.run_once()
    for i in range(300):
        feed_server.entries.append(
            Entry(f"old-{i}", f"Old {i}", published=utcnow() - timedelta(days=30 + i))
        )
    (result,) = app.poll_due_feeds(force=True)
    assert result.deliveries == 0 and result.skipped == 300


@pytest.mark.parametrize(
    ("pub_date", "state"),
    [
        ("Fri, 31 Dec 9999 23:59:59 +0000", State.DRY_RUN),  # the future: published now
        ("Mon, 01 Jan 0001 00:00:00 +0000", State.SKIPPED),  # older than max_age
        ("Fri, 31 Dec 9999 23:59:59 -1200", State.DRY_RUN),  # out of range: undated
    ],
)
def test_extreme_dates_neither_crash_nor_lose_the_post(
    write_config: Callable[..., Path],
    httpserver: HTTPServer,
    apps: list[App],
    pub_date: str,
    state: State,
) -> None:
    items: list[str] = []

    def feed(_request: object) -> Response:
        body = "".join(items)
        return Response(
            f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>',
            content_type="application/rss+xml",
        )

    httpserver.expect_request("/feed").respond_with_handler(feed)
    app = build(apps, pipeline_config(write_config, httpserver.url_for("/feed")))
    app.run_once()
    items.append(
        "<item><title>Edge</title><link>https://blog.example/edge</link>"
        f"<guid>edge</guid><pubDate>{pub_date}</pubDate></item>"
    )
    app.run_once()
    (delivery,) = list_deliveries(app.store)
    assert delivery.state == state


# == feed.parse ==================================================================================


def rss_item(**fields: str) -> str:
    return (
        "<item><title>{title}</title><link>{link}</link>"
        '<guid isPermaLink="false">{guid}</guid>{extra}'
        "<description>d</description></item>"
    ).format(**{"title": "T", "link": "https://blog.example/p", "guid": "g", "extra": ""} | fields)


def rss_doc(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://blog.example/</link>" + "".join(items) + "</channel></rss>"
    ).encode()


@pytest.mark.xfail(
    strict=True,
    reason="feedparse.py parse hands every <category> to feedparser, whose _add_tag checks "
    "each new tag against the list so far (quadratic): a 1 MB entry with 40,000 categories "
    "takes ~20 s, a 10 MB feed (the default cap) half an hour of the poller",
)
def test_an_entry_with_40000_categories_parses_quickly() -> None:
    code = """
        from syndicator.feed import parse
        cats = "".join(f"<category>c{i}</category>" for i in range(40_000))
        body = ('<rss version="2.0"><channel><title>t</title><item><title>T</title>'
                '<link>https://blog.example/p</link><guid>g</guid>' + cats
                + '</item></channel></rss>').encode()
        assert len(body) < 1_100_000
        try:
            print("parsed", len(parse("blog", body).posts))
        except Exception as exc:
            print("refused", type(exc).__name__)
    """
    done = run_python(code, timeout=1.8)
    assert done.stdout.startswith(("parsed", "refused FeedError")), done.stderr[-300:]


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("javascript:alert(1)", ""),
        ("data:text/html,hi", ""),
        ("vbscript:msgbox", ""),
        ("/relative/path", "https://blog.example/relative/path"),
        ("  https://blog.example/ws  ", "https://blog.example/ws"),
    ],
)
def test_unsafe_and_relative_links(link: str, expected: str) -> None:
    (post,) = parse(
        "blog", rss_doc(rss_item(link=link)), base_url="https://blog.example/feed/"
    ).posts
    assert post.url == expected
    assert post.guid == "g"


@pytest.mark.parametrize(
    "src",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://127.0.0.1:25/",
    ],
)
def test_non_http_image_sources_never_become_images(src: str) -> None:
    extra = f'<enclosure url="{src}" type="image/png" length="1"/>'
    (post,) = parse("blog", rss_doc(rss_item(extra=extra))).posts
    assert post.images == ()


def test_a_loopback_image_url_in_a_feed_is_refused_when_fetched() -> None:
    extra = '<enclosure url="http://127.0.0.1:22/x.png" type="image/png" length="1"/>'
    (post,) = parse("blog", rss_doc(rss_item(extra=extra))).posts
    with pytest.raises(MediaError, match="non-public address"):
        ImageCache(MediaPolicy()).load(post.images[0], Limits(max_chars=500))


def test_guids_differing_by_normalisation_in_one_document_stay_two_entries() -> None:
    body = rss_doc(
        rss_item(guid="caf\u00e9", link="https://blog.example/a"),
        rss_item(guid="cafe\u0301", link="https://blog.example/b"),
    )
    assert [p.url for p in parse("blog", body).posts] == [
        "https://blog.example/a",
        "https://blog.example/b",
    ]


def test_a_5_mb_title_parses_in_bounded_time_and_memory() -> None:
    started = time.monotonic()
    (post,) = parse("blog", rss_doc(rss_item(title="word " * 1_000_000))).posts
    assert len(post.title) == 4_999_999
    assert time.monotonic() - started < 5


# == render ======================================================================================


@pytest.mark.parametrize(
    ("title", "categories", "counting"),
    [
        ("'Title'", "10_000", "twitter"),
        ("'Title'", "10_000", "chars"),
        ("'word ' * 200_000", "0", "twitter"),
    ],
)
def test_render_of_hostile_sizes_finishes_quickly(
    title: str, categories: str, counting: str
) -> None:
    code = f"""
        from syndicator.connector import Limits, TextOptions
        from syndicator.models import Post
        from syndicator.render import render
        cats = tuple(f"Category number {{i}}" for i in range({categories}))
        post = Post("f", "g", "https://blog.example/p", {title}, categories=cats)
        limits = Limits(280, {counting!r}, url_length=23)
        text = render(post, TextOptions(template="{{title}} {{url}} {{categories}}"), limits)
        print("rendered", len(text))
    """
    done = run_python(code, timeout=1.8)
    assert done.stdout.startswith("rendered"), done.stderr[-300:]


@pytest.mark.parametrize(
    "template",
    [
        "{title!r} {url}",
        "{0} {url}",
        "{title.__class__} {url}",
        "{title:>99999} {url}",
        "{title[0]} {url}",
        "{url:{title}}",
    ],
)
def test_templates_with_conversions_indexes_and_specs_are_refused_at_start(
    write_config: Callable[..., Path], feed_server, apps: list[App], template: str
) -> None:
    path = pipeline_config(write_config, feed_server.url, target=f"template = {template!r}")
    with pytest.raises(ConfigError, match="template"):
        build(apps, path)


@pytest.mark.parametrize(
    "title",
    [
        "{url} {title} {{ }} {0} %s %(x)s",
        "\u202eevil\u202c and \u2066isolate\u2069",
        "\u200b\u200c\u200d\ufeff" * 50,
        "e" + "\u0301" * 500,
    ],
)
@pytest.mark.parametrize("counting", ["chars", "graphemes", "twitter"])
def test_values_are_never_reparsed_and_the_link_survives(title: str, counting: str) -> None:
    from syndicator.connector import TextOptions
    from syndicator.models import Post
    from syndicator.render import count

    url = "https://blog.example/2026/05/a-post/"
    limits = Limits(280, counting, url_length=23)  # type: ignore[arg-type]
    text = render(Post("f", "g", url, title), TextOptions(template="{title} {url}"), limits)
    assert url in text and count(text, limits) <= 280
    assert "\ufeff" not in text


# == media =======================================================================================

LOOPBACK = frozenset({"127.0.0.1"})


def png(size: tuple[int, int], **options: object) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, "red").save(out, "PNG", **options)
    return out.getvalue()


@pytest.mark.xfail(
    strict=True,
    reason="media.py ImageCache._check resolves the host, then requests resolves it again "
    "to connect (TOCTOU): a DNS answer that flips from a public address to 127.0.0.1 "
    "(rebinding) fetches a loopback image that is then posted publicly",
)
def test_dns_rebinding_between_check_and_connect_is_refused(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/internal.png").respond_with_data(
        png((40, 30)), content_type="image/png"
    )
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        answers.append("93.184.216.34" if not answers else "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[-1], port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    cache = ImageCache(MediaPolicy(timeout=2))
    url = f"http://rebind.example:{httpserver.port}/internal.png"
    with pytest.raises(MediaError):
        cache.load(Image(url), Limits(max_chars=500))
    assert len(httpserver.log) == 0


def bad_redirect_server(location: bytes) -> tuple[socket.socket, str]:
    """A raw server on 127.0.0.1 answering every request with a 302 to `location`."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 302 Found\r\nLocation: "
                    + location
                    + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

    threading.Thread(target=serve, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}/wp-content/uploads/a.png"


def test_a_malformed_image_redirect_drops_the_image_not_the_post(
    write_config: Callable[..., Path], feed_server, httpserver: HTTPServer, apps: list[App]
) -> None:
    server, image_url = bad_redirect_server(b"http://[::1/x.png")
    httpserver.expect_request("/masto/api/v1/statuses", method="POST").respond_with_json(
        {"id": "1", "url": "https://social.example/1"}
    )
    text = f"""
[syndicator]
mode = "live"
state_dir = "{{state}}"
database = "{{db}}"
[media]
allow_private_hosts = ["127.0.0.1"]
[[feeds]]
name = "blog"
url = "{feed_server.url}"
[targets.masto]
type = "mastodon"
api_base = "{httpserver.url_for("/masto")}"
access_token = "masto-token-1234"
"""
    try:
        feed_server.add("old")
        app = build(apps, write_config(text))
        app.run_once()
        feed_server.add("new", content=f'<p>Hi</p><img src="{image_url}" alt="chart">')
        app.run_once()
        (delivery,) = list_deliveries(app.store)
        assert delivery.state == State.PUBLISHED, (delivery.state, delivery.last_error)
    finally:
        server.close()


def test_a_very_tall_image_is_scaled_to_fit_jpeg(httpserver: HTTPServer) -> None:
    from connectors.x import X

    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate: forces a re-encode, and the result is 70,000 px wide
    httpserver.expect_request("/tall.png").respond_with_data(
        png((2, 70_000), exif=exif.tobytes()), content_type="image/png"
    )
    cache = ImageCache(MediaPolicy(allowed_private_hosts=LOOPBACK))
    fitted = cache.load(
        Image(httpserver.url_for("/tall.png").replace("localhost", "127.0.0.1")), X.limits
    )
    assert max(fitted.width, fitted.height) <= 65_500


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
            "image/png",
            "not a supported image",
        ),
        (b"", "image/png", "not a supported image"),
        (b"\x89PNG\r\n\x1a\n", "image/png", "not a supported image|truncated or corrupt"),
        (
            b"RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00"
            + b"\x00" * 4
            + b"\xfe\x3f\x00\xfe\x3f\x00",
            "image/webp",
            "decompression bomb refused|too many pixels",
        ),
    ],
    ids=["svg-as-png", "zero-bytes", "png-signature-only", "webp-header-bomb"],
)
def test_fake_and_broken_images_are_refused(
    httpserver: HTTPServer, body: bytes, content_type: str, reason: str
) -> None:
    httpserver.expect_request("/img").respond_with_data(body, content_type=content_type)
    cache = ImageCache(MediaPolicy(allowed_private_hosts=LOOPBACK))
    url = httpserver.url_for("/img").replace("localhost", "127.0.0.1")
    with pytest.raises(MediaError, match=reason):
        cache.load(Image(url), Limits(max_chars=500))


def test_an_avif_bomb_is_refused_by_its_header(httpserver: HTTPServer) -> None:
    img = PILImage.new("RGB", (1000, 200), "white")  # over a lowered cap: the same check
    out = io.BytesIO()
    img.save(out, "AVIF", quality=10)
    httpserver.expect_request("/bomb.avif").respond_with_data(
        out.getvalue(), content_type="image/avif"
    )
    cache = ImageCache(MediaPolicy(allowed_private_hosts=LOOPBACK, max_pixels=100_000))
    url = httpserver.url_for("/bomb.avif").replace("localhost", "127.0.0.1")
    with pytest.raises(MediaError, match="too many pixels: 1000x200"):
        cache.load(Image(url), Limits(max_chars=500))


def test_a_one_pixel_wide_strip_is_fitted(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/strip.png").respond_with_data(
        png((1, 100_000)), content_type="image/png"
    )
    cache = ImageCache(MediaPolicy(allowed_private_hosts=LOOPBACK))
    url = httpserver.url_for("/strip.png").replace("localhost", "127.0.0.1")
    bluesky = Limits(300, max_image_bytes=1_000_000, max_image_side=2000)
    fitted = cache.load(Image(url), bluesky)
    assert (fitted.width, fitted.height) == (1, 2000)


def test_a_redirect_to_itself_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    cache = ImageCache(MediaPolicy(allowed_private_hosts=LOOPBACK))
    url = httpserver.url_for("/loop").replace("localhost", "127.0.0.1")
    with pytest.raises(MediaError, match="more than 3 redirects"):
        cache.load(Image(url), Limits(max_chars=500))


# == the dispatcher and platform errors ==========================================================


def test_a_huge_retry_after_pauses_the_target_instead_of_losing_the_delivery(
    write_config: Callable[..., Path],
    feed_server,
    httpserver: HTTPServer,
    apps: list[App],
    caplog: pytest.LogCaptureFixture,
) -> None:
    httpserver.expect_request("/masto/api/v1/statuses", method="POST").respond_with_response(
        Response("{}", status=429, headers={"Retry-After": "1000000000000"})
    )
    text = f"""
[syndicator]
mode = "live"
state_dir = "{{state}}"
database = "{{db}}"
[[feeds]]
name = "blog"
url = "{feed_server.url}"
[targets.masto]
type = "mastodon"
api_base = "{httpserver.url_for("/masto")}"
access_token = "masto-token-1234"
"""
    feed_server.add("old")
    app = build(apps, write_config(text))
    app.poll_due_feeds(force=True)
    feed_server.add("new")
    app.poll_due_feeds(force=True)
    caplog.set_level(logging.INFO)
    dispatcher = app.dispatcher()
    try:
        dispatcher.tick(wait=False)  # as the daemon does
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not any("masto" in r.path for r, _ in httpserver.log):
            time.sleep(0.02)
        time.sleep(0.2)  # the drain settles the delivery right after the answer
    finally:
        dispatcher.close()
    (delivery,) = list_deliveries(app.store)
    assert delivery.state == State.PENDING, (delivery.state, delivery.last_error)
    assert any(r.levelno >= logging.WARNING for r in caplog.records)


# == the listener ================================================================================

FEEDS = (FeedSettings(name="news", url="https://blog.example.com/feed/"),)


@pytest.fixture
def listener() -> Iterator[Callable[..., Listener]]:
    started: list[Listener] = []

    def start(**overrides: object) -> Listener:
        options: dict[str, object] = {
            "feeds": FEEDS,
            "secret": "listener-secret-value",
            "on_poll": lambda name: None,
            "health": lambda: (True, {}),
            "queue_counts": dict,
            "metrics": Metrics(),
        }
        options.update(overrides)
        server = Listener("127.0.0.1:0", **options)  # type: ignore[arg-type]
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_client_dripping_headers_is_dropped_at_a_deadline(
    listener: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "SOCKET_TIMEOUT", 0.3)
    monkeypatch.setattr(listener_module, "BODY_DEADLINE", 0.5)
    server = listener()
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        try:
            with pytest.raises(OSError):  # the server hangs up: the next sends fail
                while time.monotonic() - started < 1.5:
                    slow.sendall(b"X-Drip: 1\r\n")
                    time.sleep(0.1)
        finally:  # end the headers and read the answer, so no handler writes to a closed socket
            with contextlib.suppress(OSError):
                slow.sendall(b"\r\n")
                slow.recv(65536)


def test_a_content_length_of_unicode_digits_is_a_bad_request(
    listener: Callable[..., Listener], capsys: pytest.CaptureFixture[str]
) -> None:
    server = listener()
    answer = raw_request(
        server.port,
        b"POST / HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: \xb2\r\n\r\nab",
    )
    assert answer.startswith(b"HTTP/1.0 400")
    assert "Traceback" not in capsys.readouterr().err


def test_a_refused_ping_logs_a_bounded_line(
    listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    server = listener()
    body = xmlrpc.client.dumps(
        ("Spam", "https://spam.example/" + "a" * 60_000), "weblogUpdates.ping"
    ).encode()
    caplog.set_level(logging.INFO, logger="syndicator.listener")
    response = requests.post(
        f"http://127.0.0.1:{server.port}/",
        data=body,
        headers={"Content-Type": "text/xml"},
        timeout=5,
    )
    assert response.status_code == 403
    assert max(len(r.getMessage()) for r in caplog.records) < 2000


def test_xmlrpc_huge_integers_and_deep_nesting_are_refused_or_ignored(
    listener: Callable[..., Listener],
) -> None:
    polls: list[str] = []
    server = listener(on_poll=polls.append)
    url = f"http://127.0.0.1:{server.port}/"
    call = b"<?xml version='1.0'?><methodCall><methodName>weblogUpdates.ping</methodName>"
    bodies = {
        "bigint": call
        + b"<params><param><value><int>"
        + b"9" * 60_000
        + b"</int></value></param></params></methodCall>",
        "deep": call
        + b"<params><param>"
        + b"<value><array><data>" * 1_400
        + b"</data></array></value>" * 1_400
        + b"</param></params></methodCall>",
        "latin1": call.replace(b"?>", b" encoding='iso-8859-1'?>")
        + "<params><param><value><string>Café</string></value></param><param><value>"
        "<string>https://blog.example.com/</string></value></param></params>"
        "</methodCall>".encode("latin-1"),
    }
    statuses = {}
    for name, body in bodies.items():
        assert len(body) <= listener_module.MAX_BODY, name
        response = requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=5)
        statuses[name] = (response.status_code, b"<fault>" in response.content)
    assert statuses == {"bigint": (400, False), "deep": (200, True), "latin1": (200, False)}
    assert polls == ["news"]


def test_a_ping_flood_polls_each_feed_once_per_debounce_window(
    listener: Callable[..., Listener],
) -> None:
    polls: list[str] = []
    server = listener(on_poll=polls.append, debounce=60.0)
    body = xmlrpc.client.dumps(("Blog", "https://blog.example.com/"), "weblogUpdates.ping")
    with requests.Session() as session:
        for _ in range(200):
            response = session.post(
                f"http://127.0.0.1:{server.port}/",
                data=body,
                headers={"Content-Type": "text/xml"},
                timeout=5,
            )
            assert response.status_code == 200
    assert polls == ["news"]
    assert len(server._last_poll) == 1  # nothing grows per request
