"""The report as tables for a terminal (the data comes from `syndicator.report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from syndicator.connector import COUNTERS
from syndicator.output import table

ORDER = COUNTERS  # the usual ones first, bit.ly's link_clicks beside the platforms' clicks


def print_report(report: Mapping[str, Any]) -> None:
    """Objectives, platforms, growth, terms and posts, one table each."""
    period = report["period"]
    click.echo(
        f"Posts published {_day(period['since'])} → {_day(period['until'])} ({period['label']});"
        f" counters read at {', '.join(report['steps']) or 'no steps'} after publishing"
    )
    _objectives(report["objectives"])
    _platforms(report["platforms"])
    _terms(report["terms"])
    _posts(report["posts"])


def counter_names(counters: Sequence[Mapping[str, Any]]) -> list[str]:
    """The counters that occur, in a fixed order (the usual ones first)."""
    found = {name for one in counters for name in one if name != "posts"}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def fmt(value: Any) -> str:
    """1234 → "1,234"; 12.5 stays; None → "-"."""
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def _objectives(objectives: Sequence[Mapping[str, Any]]) -> None:
    click.echo("\nObjectives")
    if not objectives:
        click.echo("  none configured: add [[objectives]] to the config")
        return
    rows = []
    for o in objectives:
        what = f"{o['metric']} ({'average per post' if o['aggregate'] == 'average' else 'total'})"
        for w in o["windows"]:
            progress = f"{fmt(w['value'])} / {fmt(o['target'])} ({w['progress']:.0%})"
            projected = "" if w["complete"] else f", heading for {fmt(w['projected'])}"
            rows.append([o["name"], what, w["label"], progress + projected, w["status"].upper()])
    table(["OBJECTIVE", "METRIC", "WINDOW", "VALUE / TARGET", "STATUS"], rows)


def _platforms(platforms: Sequence[Mapping[str, Any]]) -> None:
    click.echo("\nPlatforms (latest counters of the period's posts)")
    names = counter_names([p["latest"] for p in platforms])
    rows = []
    for p in platforms:
        note = f"refused: {p['refused']}" if p["refused"] else ""
        counts = [fmt(p["latest"].get(n)) for n in names]
        rows.append([p["target"], p["type"] or "-", p["posts"], p["read"], *counts, note])
    table(["TARGET", "TYPE", "POSTS", "READ", *[n.upper() for n in names], "NOTE"], rows)
    growth = [
        [p["target"], f"{g['from']} → {g['to']}", g["posts"], _changes(g["change"])]
        for p in platforms
        for g in p["growth"]
    ]
    if growth:
        click.echo("\nGrowth between steps (posts read at both)")
        table(["TARGET", "STEPS", "POSTS", "CHANGE"], growth)


def _terms(terms: Sequence[Mapping[str, Any]]) -> None:
    click.echo("\nShort, medium and long term (totals at each step)")
    names = counter_names([c for t in terms for c in t["targets"].values()])
    rows = [
        [t["term"], t["step"], target, c["posts"], *[fmt(c.get(n)) for n in names]]
        for t in terms
        for target, c in t["targets"].items()
        if c["posts"]
    ]
    if rows:
        table(["TERM", "STEP", "TARGET", "POSTS", *[n.upper() for n in names]], rows)
    else:
        click.echo("  no readings yet")


def _posts(posts: Sequence[Mapping[str, Any]]) -> None:
    click.echo("\nPosts (newest first)")
    if not posts:
        click.echo("  none published in the period")
        return
    names = counter_names([p["latest"] for p in posts])
    rows = [
        [
            p["published_at"][:16].replace("T", " "),
            p["target"],
            " ".join(r["age"] for r in p["readings"]) or "-",
            *[fmt(p["latest"].get(n)) for n in names],
            p["title"] or p["url"],
        ]
        for p in posts
    ]
    table(["PUBLISHED", "TARGET", "READ AT", *[n.upper() for n in names], "POST"], rows)


def _changes(change: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {value:+,}" for name, value in change.items()) or "no change"


def _day(iso: str) -> str:
    return iso[:10]
