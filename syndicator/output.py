"""How the CLI shows things: tables for people, JSON for scripts. No database access here."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from syndicator.models import Draft
from syndicator.store import Delivery

STATE_MARK = {"unknown": "!", "failed": "x", "published": "+", "dry_run": "~"}


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO strings."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def delivery_json(d: Delivery) -> dict[str, Any]:
    """The documented `queue list --json` object."""
    return jsonable(
        {
            "id": d.id,
            "post_guid": d.post_guid,
            "post_url": d.post_url,
            "post_title": d.post_title,
            "feed": d.post_feed,
            "target": d.target,
            "state": d.state.value,
            "dry_run": d.dry_run,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at,
            "remote_id": d.remote_id,
            "remote_url": d.remote_url,
            "last_error": d.last_error,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table, the last column cut to the terminal width."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    room = shutil.get_terminal_size((120, 20)).columns - sum(widths[:-1]) - 2 * len(widths)
    widths[-1] = max(10, min(widths[-1], room))
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(w)[:w] for c, w in zip(row, widths, strict=True))
        click.echo(line.rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return " ".join(str(value).split())


def print_deliveries(rows: Sequence[Delivery]) -> None:
    if not rows:
        click.echo("no deliveries")
        return
    table(
        ["ID", "STATE", "TARGET", "TRIES", "UPDATED", "POST", "RESULT"],
        [
            [
                d.id,
                STATE_MARK.get(d.state, " ") + d.state,
                d.target,
                d.attempts,
                d.updated_at,
                d.post_title or d.post_url,
                d.remote_url or d.last_error,
            ]
            for d in rows
        ],
    )


def print_delivery(d: Delivery, log: Sequence[dict[str, Any]]) -> None:
    click.echo(f"delivery {d.id}: {d.state}{' (dry-run)' if d.dry_run else ''}")
    for label, value in [
        ("post", f"{d.post_title} <{d.post_url}>"),
        ("guid", d.post_guid),
        ("target", d.target),
        ("attempts", d.attempts),
        ("next attempt", d.next_attempt_at),
        ("remote", d.remote_url or d.remote_id),
        ("last error", d.last_error),
    ]:
        click.echo(f"  {label:13} {_cell(value)}")
    if d.draft:
        print_draft(d.target, d.draft)
    if log:
        click.echo("  log:")
        for e in reversed(log):
            detail = e["remote_url"] or e["error"] or ""
            click.echo(f"    {_cell(e['at'])}  {e['outcome']:13} {detail}")


def print_draft(target: str, draft: Draft) -> None:
    """The exact payload a target gets, indented."""
    click.echo(f"  -- {target}")
    click.echo(textwrap.indent(draft.text, "     | ", lambda line: True))
    if draft.link and draft.link not in draft.text:  # sent beside the text (UTM included)
        click.echo(f"     link: {draft.link}")
    for image in draft.images:
        click.echo(f"     image: {image.url}" + (f"  (alt: {image.alt})" if image.alt else ""))
    if draft.album:
        click.echo(f"     album: {draft.album}")
    if draft.card:
        click.echo(f"     card: {draft.card.title} <{draft.card.url}>")
    for note in draft.notes:
        click.echo(f"     note: {note}")


def print_log(entries: Sequence[dict[str, Any]]) -> None:
    if not entries:
        click.echo("log is empty")
        return
    table(
        ["AT", "DELIVERY", "TARGET", "OUTCOME", "MS", "POST", "DETAIL"],
        [
            [
                e["at"],
                e["delivery_id"],
                e["target"],
                e["outcome"] + (" (dry)" if e["dry_run"] else ""),
                e["duration_ms"],
                e["post_title"],
                e["remote_url"] or e["error"],
            ]
            for e in entries
        ],
    )


def print_round(app: Any, polls: Sequence[Any], counts: Counter[str]) -> None:
    """Summary of `run --once`: per feed, then per target what was (or would be) published."""
    from syndicator import queries

    for p in polls:
        status = p.error or (
            "not modified"
            if p.not_modified
            else f"{p.new_posts} new, {p.edited_posts} edited, {p.deliveries} deliveries"
        )
        click.echo(f"feed {p.feed}: {status}")
    shown = queries.list_deliveries(app.store, limit=200)
    recent = [d for d in shown if d.state in ("dry_run", "published") and d.draft]
    for d in sorted(recent, key=lambda d: (d.target, d.id))[:50]:
        click.echo(
            f"\n[{d.target}] {'would publish' if d.state == 'dry_run' else 'published'}"
            f" (delivery {d.id}):"
        )
        print_draft(d.target, d.draft)  # type: ignore[arg-type]
    click.echo(f"\ndispatch: {json.dumps(dict(counts)) if counts else 'nothing due'}")


def print_status(report: dict[str, Any]) -> None:
    """The human view of `status`."""
    trial = report["trial"]
    mode = report["mode"]
    if trial["active"]:
        mode += f" — TRIAL until {trial['until']:%Y-%m-%d %H:%M} UTC: nothing is really posted"
    elif trial["until"]:
        mode += f" (trial ended {trial['until']:%Y-%m-%d})"
    click.echo(f"mode: {mode}")
    click.echo("\nfeeds:")
    table(
        ["NAME", "LAST POLL", "NEXT POLL", "LAST ERROR"],
        [
            [f["name"], f["last_poll_at"], f["next_poll_at"], f["last_error"] or "ok"]
            for f in report["feeds"]
        ],
    )
    click.echo("\ntargets:")
    rows = []
    for t in report["targets"]:
        status = t["status"] + (" (dry-run)" if t["dry_run"] else "")
        if t["paused_until"]:
            status += f" until {t['paused_until']:%Y-%m-%d %H:%M}: {t['pause_reason']}"
        elif t["status"] == "not configured":
            status += f": {t['pause_reason']}"
        queue = ", ".join(f"{n} {s}" for s, n in sorted(t["queue"].items())) or "-"
        rows.append([t["name"], t["type"], queue, status])
    table(["NAME", "TYPE", "QUEUE", "STATUS"], rows)
    queue = ", ".join(f"{n} {s}" for s, n in sorted(report["queue"].items())) or "empty"
    click.echo(f"\nqueue: {queue}")
    if report["queue"].get("unknown"):
        click.echo("! deliveries with an unknown outcome: `syndicator queue list --state unknown`")
    daemons = report["daemons"]
    click.echo(f"\ndaemons alive: {len(daemons)}")
    for d in daemons:
        click.echo(
            f"  {d['id']}  heartbeat {_cell(d['heartbeat_at'])}  holds {d['held']} "
            f"deliveries, feeds {', '.join(d['feeds']) or '-'}"
        )
