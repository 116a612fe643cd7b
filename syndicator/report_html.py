"""The report as one self-contained HTML page: inline CSS, inline SVG charts drawn here.

No script, no font, no image, no stylesheet from anywhere: the page works offline and its
Content-Security-Policy forbids fetching anything, so opening it tells nobody anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from syndicator.report_text import counter_names, fmt

PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#475569")
STATUS = {
    "met": "#15803d",
    "on track": "#2563eb",
    "behind": "#d97706",
    "missed": "#dc2626",
    "no data": "#64748b",
}
INTERACTIONS = ("likes", "shares", "comments", "quotes")
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f8fafc;color:#0f172a}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 12px;
border-bottom:2px solid #e2e8f0;padding-bottom:6px}
.sub{color:#475569;margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 16px}
.card h3{font-size:16px;margin:0 0 2px}.meta{color:#64748b;font-size:13px;margin:0 0 8px}
.badge{display:inline-block;color:#fff;border-radius:999px;padding:1px 10px;font-size:12px;
font-weight:600;text-transform:uppercase;letter-spacing:.03em}
.window{margin:8px 0 2px;font-size:14px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e2e8f0;
font-size:13.5px}
th,td{text-align:left;padding:6px 9px;border-bottom:1px solid #eef2f7;vertical-align:top}
th{background:#f1f5f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{background:#fff;border:1px solid #e2e8f0;
border-radius:10px;padding:8px}
.note{color:#b91c1c;font-size:13px}a{color:#1d4ed8}
svg text{font:12px system-ui,sans-serif;fill:#334155}
"""


def render(report: Mapping[str, Any]) -> str:
    """The whole page."""
    period = report["period"]
    title = f"syndicator report, {period['since'][:10]} to {period['until'][:10]}"
    body = [
        "<header><h1>What the posts achieved</h1>",
        f'<p class="sub">Posts published {escape(period["since"][:16].replace("T", " "))} to '
        f"{escape(period['until'][:16].replace('T', ' '))} UTC ({escape(period['label'])}); "
        f"counters read {escape(', '.join(report['steps']))} after publishing. Generated "
        f"{escape(report['generated_at'][:16].replace('T', ' '))} UTC.</p></header>",
        _objectives(report["objectives"]),
        _platforms(report["platforms"]),
        _growth(report["platforms"], report["steps"]),
        _terms(report["terms"]),
        _posts(report["posts"], report["steps"]),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


# -- sections --------------------------------------------------------------------------------


def _objectives(objectives: Sequence[Mapping[str, Any]]) -> str:
    parts = ['<section id="objectives"><h2>Objectives</h2>']
    if not objectives:
        parts.append("<p>No objectives configured: add <code>[[objectives]]</code> tables.</p>")
        return "".join(parts) + "</section>"
    parts.append('<div class="cards">')
    for o in objectives:
        how = "average per post" if o["aggregate"] == "average" else "total"
        on = ", ".join(o["targets"]) or "all targets"
        parts.append(
            f'<div class="card objective"><h3>{escape(o["name"])}</h3>'
            f'<p class="meta">{fmt(o["target"])} {escape(o["metric"])} ({how}) per '
            f"{escape(o['period'])} on {escape(on)}</p>"
        )
        for w in o["windows"]:
            colour = STATUS.get(w["status"], "#64748b")
            ahead = "" if w["complete"] else f", heading for {fmt(w['projected'])}"
            parts.append(
                f'<p class="window"><span class="badge" style="background:{colour}">'
                f"{escape(w['status'])}</span> {escape(w['label'])}: <b>{fmt(w['value'])}</b>"
                f" of {fmt(o['target'])} ({w['progress']:.0%}){ahead}; {w['posts']} post(s)</p>"
                + progress_bar(w["value"], o["target"], colour)
            )
        parts.append("</div>")
    return "".join(parts) + "</div></section>"


def _colours(platforms: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """One colour per target, the same in every chart."""
    return {p["target"]: PALETTE[i % len(PALETTE)] for i, p in enumerate(platforms)}


def _platforms(platforms: Sequence[Mapping[str, Any]]) -> str:
    names = counter_names([p["latest"] for p in platforms])
    colours = _colours(platforms)
    charts = [
        bar_chart(
            name,
            [
                (p["target"], p["latest"][name], colours[p["target"]])
                for p in platforms
                if name in p["latest"]
            ],
        )
        for name in names
    ]
    header = "".join(f'<th class="n">{escape(n)}</th>' for n in names)
    rows = []
    for p in platforms:
        cells = "".join(f'<td class="n">{fmt(p["latest"].get(n))}</td>' for n in names)
        note = f'<span class="note">refused: {escape(p["refused"])}</span>' if p["refused"] else ""
        rows.append(
            f"<tr><td>{escape(p['target'])}</td><td>{escape(p['type'] or '-')}</td>"
            f'<td class="n">{p["posts"]}</td><td class="n">{p["read"]}</td>{cells}'
            f"<td>{note}</td></tr>"
        )
    return (
        '<section id="platforms"><h2>Per platform: latest counters</h2>'
        f'<div class="charts">{"".join(charts) or "<p>No readings yet.</p>"}</div><br>'
        f"<table><tr><th>target</th><th>type</th><th class=n>posts</th><th class=n>read</th>"
        f"{header}<th></th></tr>{''.join(rows)}</table></section>"
    )


def _growth(platforms: Sequence[Mapping[str, Any]], steps: Sequence[str]) -> str:
    lines: dict[str, tuple[list[int | None], str]] = {}
    for p in platforms:
        values = [
            sum(v for k, v in p["steps"][s].items() if k in INTERACTIONS)
            if p["steps"][s]["posts"]
            else None
            for s in steps
        ]
        if any(v is not None for v in values):
            lines[p["target"]] = (values, _colours(platforms)[p["target"]])
    rows = [
        f"<tr><td>{escape(p['target'])}</td><td>{escape(g['from'])} → {escape(g['to'])}</td>"
        f'<td class="n">{g["posts"]}</td><td>{escape(_changes(g["change"]))}</td></tr>'
        for p in platforms
        for g in p["growth"]
    ]
    table = (
        "<table><tr><th>target</th><th>steps</th><th class=n>posts</th><th>change</th></tr>"
        f"{''.join(rows)}</table>"
        if rows
        else "<p>Growth shows once posts have been read at two steps.</p>"
    )
    chart = line_chart(list(steps), lines) if lines else ""
    return (
        '<section id="growth"><h2>Growth between steps</h2>'
        '<p class="sub">Interactions (likes, shares, comments, quotes) summed over the posts '
        f"read at each step.</p>{chart}{table}</section>"
    )


def _terms(terms: Sequence[Mapping[str, Any]]) -> str:
    parts = ['<section id="terms"><h2>Short, medium and long term</h2><div class="cards">']
    for t in terms:
        counts = [c for c in t["targets"].values() if c["posts"]]
        names = counter_names(counts)
        header = "".join(f'<th class="n">{escape(n)}</th>' for n in names)
        rows = "".join(
            f"<tr><td>{escape(target)}</td><td class=n>{c['posts']}</td>"
            + "".join(f'<td class="n">{fmt(c.get(n))}</td>' for n in names)
            + "</tr>"
            for target, c in t["targets"].items()
            if c["posts"]
        )
        body = (
            f"<table><tr><th>target</th><th class=n>posts</th>{header}</tr>{rows}</table>"
            if rows
            else "<p>No post has reached this step yet.</p>"
        )
        parts.append(
            f'<div class="card"><h3>{escape(t["term"].capitalize())} term</h3>'
            f'<p class="meta">counters {escape(t["step"])} after publishing</p>{body}</div>'
        )
    return "".join(parts) + "</div></section>"


def _posts(posts: Sequence[Mapping[str, Any]], steps: Sequence[str]) -> str:
    header = "".join(f"<th>{escape(s)}</th>" for s in steps)
    rows = []
    for p in posts:
        readings = {r["age"]: r["counters"] for r in p["readings"]}
        cells = "".join(f"<td>{escape(_compact(readings.get(s)))}</td>" for s in steps)
        link = p["remote_url"] or p["url"]
        rows.append(
            f"<tr><td>{escape(p['published_at'][:16].replace('T', ' '))}</td>"
            f"<td>{escape(p['target'])}</td>"
            f'<td><a href="{escape(link)}">{escape(p["title"] or p["url"])}</a></td>{cells}</tr>'
        )
    body = (
        f"<table><tr><th>published</th><th>target</th><th>post</th>{header}</tr>"
        f"{''.join(rows)}</table>"
        if rows
        else "<p>No post published in the period.</p>"
    )
    return f'<section id="posts"><h2>Per post</h2>{body}</section>'


# -- charts ----------------------------------------------------------------------------------


def progress_bar(value: float, target: float, colour: str, width: int = 300) -> str:
    """A horizontal bar up to 150% of the target, with the target marked."""
    scale = width / (target * 1.5) if target else 0.0
    filled = min(width, value * scale)
    mark = target * scale
    return (
        f'<svg width="{width}" height="18" viewBox="0 0 {width} 18" role="img" '
        f'aria-label="{fmt(value)} of {fmt(target)}">'
        f'<rect x="0" y="3" width="{width}" height="12" rx="6" fill="#e2e8f0"/>'
        f'<rect x="0" y="3" width="{filled:.1f}" height="12" rx="6" fill="{colour}"/>'
        f'<line x1="{mark:.1f}" y1="0" x2="{mark:.1f}" y2="18" stroke="#0f172a" '
        'stroke-width="2"/></svg>'
    )


def bar_chart(title: str, bars: Sequence[tuple[str, int, str]], width: int = 270) -> str:
    """One counter across targets (label, value, colour): a small vertical bar chart."""
    height, top, bottom = 200, 44, 40
    top_value = max([v for _, v, _ in bars] + [1])
    slot = (width - 20) / max(len(bars), 1)
    parts = [
        f'<div class="chart"><svg width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="10" y="18" font-weight="600">'
        f"{escape(title)}</text>"
        f'<line x1="10" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#94a3b8"/>'
    ]
    for i, (label, value, colour) in enumerate(bars):
        h = (height - top - bottom) * value / top_value
        x = 10 + i * slot + slot * 0.15
        y = height - bottom - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{colour}"/><text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" '
            f'text-anchor="middle">{fmt(value)}</text>'
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(label[:14])}</text>'
        )
    return "".join(parts) + "</svg></div>"


def line_chart(
    xs: Sequence[str],
    lines: Mapping[str, tuple[Sequence[int | None], str]],
    width: int = 760,
) -> str:
    """One line per target (values, colour) over the steps; none where no post got there."""
    height, left, right, top, bottom = 260, 56, 150, 16, 36
    top_value = max([v for vs, _ in lines.values() for v in vs if v is not None] + [1])
    span_x = (width - left - right) / max(len(xs) - 1, 1)

    def point(i: int, v: int) -> tuple[float, float]:
        return left + i * span_x, top + (height - top - bottom) * (1 - v / top_value)

    parts = [
        f'<div class="chart"><svg width="{width}" height="{height}" role="img" '
        'aria-label="interactions at each step">'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        f'stroke="#94a3b8"/><line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" '
        f'stroke="#94a3b8"/><text x="{left - 8}" y="{top + 10}" text-anchor="end">'
        f"{fmt(top_value)}</text>"
        f'<text x="{left - 8}" y="{height - bottom}" text-anchor="end">0</text>'
    ]
    for i, x in enumerate(xs):
        px, _ = point(i, 0)
        parts.append(
            f'<text x="{px:.1f}" y="{height - bottom + 20}" text-anchor="middle">{escape(x)}</text>'
        )
    for n, (name, (values, colour)) in enumerate(lines.items()):
        points = [point(i, v) for i, v in enumerate(values) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
        )
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>' for x, y in points]
        ly = top + 14 + n * 18
        parts.append(
            f'<rect x="{width - right + 14}" y="{ly - 10}" width="12" height="12" '
            f'fill="{colour}"/><text x="{width - right + 32}" y="{ly}">{escape(name[:16])}</text>'
        )
    return "".join(parts) + "</svg></div>"


def _compact(counters: Mapping[str, int] | None) -> str:
    if counters is None:
        return ""
    if not counters:
        return "post gone"
    return " · ".join(f"{fmt(v)} {k}" for k, v in counters.items())


def _changes(change: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {value:+,}" for name, value in change.items()) or "no change"
