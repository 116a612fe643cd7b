"""The report: figures computed from stored readings; objectives met, missed, on track; the
terminal tables, JSON, and an HTML page that a real headless browser renders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from syndicator import config, report, report_html
from syndicator.app import App
from syndicator.cli import cli
from syndicator.engagement import Engagement
from syndicator.errors import ConfigError, PermanentError
from syndicator.objectives import windows
from syndicator.schema import posts, publish_log
from tests import metrics_fakes
from tests.metrics_fakes import METRICS

CONFIG = """
[syndicator]
mode = "live"
state_dir = "{state}"
database = "{db}"

[[feeds]]
name = "blog"
url = "{url}"

[targets.fb]
type = "fake-metrics"
platform = "fb"
utm = { source = "facebook", medium = "social", campaign = "launch" }

[targets.li]
type = "fake-metrics"
platform = "li"

[targets.masto]
type = "fake-metrics"
platform = "masto"

[targets.xx]
type = "fake-metrics"
platform = "xx"

[targets.plain]
type = "fake"
platform = "plain"

[[objectives]]
name = "Shares on Facebook and LinkedIn"
metric = "shares"
target = 25
period = "30d"
targets = ["fb", "li"]

[[objectives]]
name = "Posts reach 10,000 impressions"
metric = "impressions"
target = 10000
period = "30d"

[[objectives]]
name = "Three Mastodon posts a month"
metric = "posts"
target = 3
period = "month"
targets = ["masto"]

[[objectives]]
name = "Liked on average"
metric = "likes"
target = 30
period = "30d"
aggregate = "average"
"""

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
PUBLISHED = {  # post guid → when it landed, and a factor for its counters
    "p1": (datetime(2026, 5, 3, 9, tzinfo=UTC), 1),
    "p2": (datetime(2026, 5, 20, 9, tzinfo=UTC), 2),
    "p3": (datetime(2026, 6, 2, 9, tzinfo=UTC), 3),
}
STEPS = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
BASE = {  # counters of a factor-1 post at each step
    "1h": {"likes": 2, "shares": 0, "impressions": 100},
    "1d": {"likes": 10, "shares": 2, "impressions": 400},
    "7d": {"likes": 20, "shares": 3, "impressions": 600},
    "30d": {"likes": 25, "shares": 4, "impressions": 700},
}


@pytest.fixture(autouse=True)
def metrics_connector(monkeypatch: pytest.MonkeyPatch, fake_connector_registered: None) -> None:
    metrics_fakes.register(monkeypatch)


def counters(step: str, factor: int, platform: str) -> dict[str, int]:
    values = {name: value * factor for name, value in BASE[step].items()}
    if platform == "masto":  # Mastodon shows no impressions
        values.pop("impressions")
    return values


@pytest.fixture
def measured(write_config, feed_server):
    """Three posts published on 3 May, 20 May and 2 June 2026 (timestamps set in the
    database), read back at every step that fell due by 10 June, 12:00."""
    text = CONFIG.replace("{url}", feed_server.url)
    app = App.build(config.load(write_config(text)))
    app.run_once()
    for guid in PUBLISHED:
        feed_server.add(guid, f"Post {guid}")
    app.run_once()
    with app.store.engine.begin() as conn:
        for guid, (when, _) in PUBLISHED.items():
            post_id = conn.execute(sa.select(posts.c.id).where(posts.c.guid == guid)).scalar()
            conn.execute(
                sa.update(publish_log).where(publish_log.c.post_id == post_id).values(at=when)
            )
    METRICS["xx"].script = [PermanentError("GET /metrics: HTTP 403: not enrolled")]
    items = app.store.published_since(NOW - timedelta(days=400))
    remote = {(i.post_guid, i.target): i.remote_id for i in items}
    job = Engagement(app.settings, app.store, app.connectors)
    due = sorted(
        (when + timedelta(seconds=STEPS[step] + 60), guid, step)
        for guid, (when, _) in PUBLISHED.items()
        for step in STEPS
        if when + timedelta(seconds=STEPS[step]) < NOW
    )
    for at, guid, step in due:
        for platform in ("fb", "li", "masto", "xx"):
            values = counters(step, PUBLISHED[guid][1], platform)
            METRICS[platform].per_post[remote[(guid, platform)]] = values
        job.run_once(at)
    yield app
    app.close()


def test_report_figures_come_from_the_stored_readings(measured):
    data = report.build(measured.settings, measured.store, period="30d", now=NOW)
    assert data["period"] == {
        "label": "30d",
        "since": "2026-05-11T12:00:00+00:00",
        "until": "2026-06-10T12:00:00+00:00",
    }
    assert data["steps"] == ["1h", "1d", "7d", "30d"]
    platforms = {p["target"]: p for p in data["platforms"]}
    # p2 (factor 2) and p3 (factor 3) were published in the period, both last read at 7d
    assert platforms["fb"]["posts"] == 2 and platforms["fb"]["read"] == 2
    assert platforms["fb"]["latest"] == {"likes": 100, "shares": 15, "impressions": 3000}
    assert platforms["masto"]["latest"] == {"likes": 100, "shares": 15}
    assert platforms["fb"]["steps"]["1d"] == {
        "posts": 2,
        "likes": 50,
        "shares": 10,
        "impressions": 2000,
    }
    assert platforms["fb"]["steps"]["30d"] == {"posts": 0}
    growth = {(g["from"], g["to"]): g for g in platforms["fb"]["growth"]}
    assert growth[("1h", "1d")]["change"] == {"likes": 40, "shares": 10, "impressions": 1500}
    assert growth[("1d", "7d")]["change"] == {"likes": 50, "shares": 5, "impressions": 1000}
    assert ("7d", "30d") not in growth  # no post of the period reached 30 days
    assert platforms["xx"]["refused"].endswith("not enrolled") and platforms["xx"]["read"] == 0
    assert platforms["plain"]["posts"] == 2 and platforms["plain"]["read"] == 0

    terms = {t["term"]: t for t in data["terms"]}
    assert (terms["short"]["step"], terms["medium"]["step"], terms["long"]["step"]) == (
        "1d",
        "7d",
        "30d",
    )
    assert terms["short"]["targets"]["li"] == data["platforms"][1]["steps"]["1d"]
    assert terms["medium"]["targets"]["fb"]["likes"] == 100
    assert terms["long"]["targets"]["fb"] == {"posts": 0}

    post = next(p for p in data["posts"] if p["target"] == "fb" and p["post_guid"] == "p3")
    assert [r["age"] for r in post["readings"]] == ["1h", "1d", "7d"]
    assert post["latest"] == {"likes": 60, "shares": 9, "impressions": 1800}
    assert post["growth"][0] == {
        "from": "1h",
        "to": "1d",
        "posts": 1,
        "change": {"likes": 24, "shares": 6, "impressions": 900},
    }
    assert [p["post_guid"] for p in data["posts"]][:1] == ["p3"]  # newest first


def test_objectives_met_missed_and_on_track(measured):
    data = report.build(measured.settings, measured.store, period="30d", now=NOW)
    found = {o["name"]: o for o in data["objectives"]}

    (shares,) = found["Shares on Facebook and LinkedIn"]["windows"]
    assert (shares["value"], shares["status"], shares["by_target"]) == (
        30.0,
        "met",
        {"fb": 15, "li": 15},
    )
    assert shares["progress"] == 1.2 and shares["complete"]

    (impressions,) = found["Posts reach 10,000 impressions"]["windows"]
    assert impressions["value"] == 6000 and impressions["status"] == "missed"
    assert impressions["posts"] == 10 and impressions["measured"] == 4  # fb, li: they have them
    assert found["Posts reach 10,000 impressions"]["targets"] == [
        "fb",
        "li",
        "masto",
        "xx",
        "plain",
    ]

    june, may = found["Three Mastodon posts a month"]["windows"]
    assert (june["label"], june["since"][:10], june["until"][:10]) == (
        "this month",
        "2026-06-01",
        "2026-07-01",
    )
    assert (june["value"], june["status"], june["complete"]) == (1.0, "on track", False)
    assert june["projected"] == round(1 / ((9 * 24 + 12) / (30 * 24)), 1)  # 3.2: on track
    assert (may["value"], may["status"], may["complete"]) == (2.0, "missed", True)

    (average,) = found["Liked on average"]["windows"]
    assert (average["value"], average["status"]) == (50.0, "met")  # (40 + 60) / 2 per platform


def test_objective_status_rules_at_the_edges(measured):
    settings = measured.settings
    store = measured.store
    early = report.build(settings, store, period="30d", now=datetime(2026, 6, 2, 12, tzinfo=UTC))
    june = next(o for o in early["objectives"] if o["metric"] == "posts")["windows"][0]
    # one Mastodon post by 2 June is heading for ~31 in the month: on track, not met yet
    assert june["status"] == "on track" and june["value"] == 1
    late = report.build(settings, store, period="30d", now=datetime(2026, 6, 29, tzinfo=UTC))
    june = next(o for o in late["objectives"] if o["metric"] == "posts")["windows"][0]
    assert june["status"] == "behind"  # 1 post, 93% of the month gone


def test_calendar_windows():
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    (rolling,) = windows("7d", now)
    assert (rolling.since, rolling.until, rolling.complete) == (now - timedelta(7), now, True)
    this, last = windows("quarter", now)
    assert (this.since.date().isoformat(), this.until.date().isoformat()) == (
        "2026-10-01",
        "2027-01-01",
    )
    assert last.since.date().isoformat() == "2026-07-01" and last.complete
    week, _ = windows("week", now)
    assert week.since.weekday() == 0 and week.until - week.since == timedelta(7)
    assert windows("month", datetime(2026, 12, 31, tzinfo=UTC))[0].until.year == 2027


@pytest.mark.parametrize(
    ("objective", "key", "message"),
    [
        ('metric = "share"', "metric", "must be one of posts, likes, shares"),
        ("target = 0", "target", "positive number"),
        ('period = "fortnight"', "period", 'expected "30d", "7d"'),
        ('targets = ["facebook"]', "targets", "no target named 'facebook'"),
        ('aggregate = "median"', "aggregate", "must be one of sum, average"),
        ('colour = "red"', "colour", "unknown key"),
    ],
)
def test_objectives_are_validated_naming_file_and_key(
    write_config, feed_server, objective: str, key: str, message: str
):
    good = {
        "metric": 'metric = "shares"',
        "target": "target = 10",
        "period": 'period = "month"',
        "targets": 'targets = ["fb"]',
        "aggregate": 'aggregate = "sum"',
    }
    lines = [v for k, v in good.items() if k != key] + [objective]
    text = CONFIG.split("[[objectives]]")[0].replace("{url}", feed_server.url)
    text += '[[objectives]]\nname = "Goal"\n' + "\n".join(lines) + "\n"
    path = write_config(text)
    with pytest.raises(ConfigError) as raised:
        config.load(path)
    assert str(raised.value).startswith(f"{path}: [objectives #1] {key}: ")
    assert message in str(raised.value)


def test_cli_report_tables_json_and_html(measured, tmp_path: Path):
    args = ["--config", str(measured.settings.path), "report", "--period", "400d"]
    html = tmp_path / "report.html"
    result = CliRunner().invoke(cli, [*args, "--html", str(html)])
    assert result.exit_code == 0, result.output
    for heading in ("Objectives", "Platforms", "Growth between steps", "Short, medium", "Posts"):
        assert heading in result.output
    assert "Shares on Facebook and LinkedIn" in result.output
    assert "refused: GET /metrics: HTTP 403: not enrolled" in result.output
    assert html.read_text().startswith("<!DOCTYPE html>")
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert {p["target"] for p in data["platforms"]} == {"fb", "li", "masto", "xx", "plain"}
    bad = CliRunner().invoke(cli, [*args[:-1], "soon"])
    assert bad.exit_code == 2 and "expected a duration" in bad.output


def test_report_stays_on_the_fast_path(measured, tmp_path: Path):
    """No platform SDK, Pillow or APScheduler is imported by `report`, even with --html."""
    code = (
        "import sys\n"
        "from syndicator.cli import cli\n"
        f"cli(['--config', {str(measured.settings.path)!r}, 'report', '--json',"
        f" '--html', {str(tmp_path / 'r.html')!r}], standalone_mode=False)\n"
        "heavy = {'apscheduler', 'PIL', 'tweepy', 'facebook', 'feedparser', 'connectors'}\n"
        "print('HEAVY', sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


PREVIEW = """
[syndicator]
state_dir = "{state}"
database = "{db}"

[[feeds]]
name = "blog"
url = "{feed}"

[targets.facebook]
type = "facebook"
page_id = "1122334455"
access_token = "page-token"
template = "{title}"
utm = { source = "facebook", medium = "social", campaign = "launch" }

[targets.mastodon]
type = "mastodon"
api_base = "https://masto.example"
access_token = "masto-token"
template = "{title} {url}"
utm = { utm_source = "mastodon", utm_medium = "social", utm_campaign = "launch" }
"""


def test_preview_shows_each_targets_utm_link(write_config, feed_server):
    feed_server.add("p1", "Hello")
    path = write_config(PREVIEW.replace("{feed}", feed_server.url))
    result = CliRunner().invoke(cli, ["--config", str(path), "preview"])
    assert result.exit_code == 0, result.output
    # Facebook sends the link beside the text: preview shows it, UTM included
    facebook = "https://blog.example/p1?utm_source=facebook&utm_medium=social&utm_campaign=launch"
    assert f"link: {facebook}" in result.output
    mastodon = "https://blog.example/p1?utm_source=mastodon&utm_medium=social&utm_campaign=launch"
    assert f"| Hello {mastodon}" in result.output


# -- the HTML page in a real browser ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def test_html_is_self_contained(measured):
    page = report_html.render(report.build(measured.settings, measured.store, now=NOW))
    assert "<script" not in page and " src=" not in page and "url(" not in page
    assert "default-src 'none'" in page and page.count("<svg") >= 5
    assert "Posts reach 10,000 impressions" in page and "missed" in page and "on track" in page


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)
def test_html_report_renders_in_headless_chromium(measured, tmp_path: Path):
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(
        report_html.render(report.build(measured.settings, measured.store, now=NOW)),
        encoding="utf-8",
    )
    shot = tmp_path / "report.png"
    dom = chromium(tmp_path, "--dump-dom", page)
    for name in ("Shares on Facebook and LinkedIn", "Three Mastodon posts a month"):
        assert name in dom.stdout
    assert 'class="badge"' in dom.stdout and "<svg" in dom.stdout
    shown = chromium(tmp_path, f"--screenshot={shot}", page)
    console = [
        line
        for line in (dom.stderr + shown.stderr).splitlines()
        if "Uncaught" in line or "ERROR:CONSOLE" in line or ":CONSOLE(" in line
    ]
    assert console == []
    assert shot.stat().st_size > 10_000
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 50  # text, bars and badges, not a blank page
        status_green = (21, 128, 61)
        assert any(colour == status_green for _, colour in colours)


def chromium(tmp_path: Path, action: str, page: Path) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run that fetches nothing but the file."""
    profile = tmp_path / f"profile-{action.split('=')[0].strip('-')}"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        "--enable-logging=stderr",
        "--v=0",
        action,
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    shutil.rmtree(profile, ignore_errors=True)
    return result
