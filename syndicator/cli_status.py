"""CLI: status, resume, and measuring (engagement, report)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from syndicator.cli import build_app, cli, opened_store
from syndicator.errors import ConfigError

if TYPE_CHECKING:
    pass


# -- status ------------------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Feeds, targets (paused and why), queue counts, trial period, live daemons."""
    from syndicator import output
    from syndicator.health import collect

    with opened_store(ctx) as (loaded, store):
        report = collect(loaded, store)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        output.print_status(report)


@cli.command()
@click.argument("target")
@click.pass_context
def resume(ctx: click.Context, target: str) -> None:
    """Lift a target's pause (after renewing its token, say); its deliveries go out again."""
    with opened_store(ctx) as (loaded, store):
        try:
            loaded.target(target)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        from syndicator.models import utcnow

        store.resume_target(target, utcnow())
        store.clear_metrics_error(target)  # and ask its platform for counters again
    click.echo(f"target {target}: resumed")


# -- measuring ---------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="Read the counters that are due now, then exit.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def engagement(ctx: click.Context, once: bool, as_json: bool) -> None:
    """Read back likes, shares, comments... of published posts (the daemon's job, by hand)."""
    if not once:
        raise click.UsageError("the daemon reads counters on its own; use --once to do it now")
    from syndicator.engagement import Engagement

    app = build_app(ctx)
    try:
        result = Engagement(app.settings, app.store, app.connectors).run_once()
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
        return
    read: dict[str, list[str]] = {}
    for (target, age), count in sorted(result.stored.items()):
        read.setdefault(target, []).append(f"{count} at {age}")
    for target, counts in read.items():
        click.echo(f"{target}: read {', '.join(counts)}")
    for target, why in {**result.skipped, **result.refused}.items():
        click.echo(f"{target}: not read: {why}")
    if not read:
        click.echo("no counters were due")


@cli.command()
@click.option("--period", default="30d", show_default=True, help="Posts published this recently.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write a self-contained HTML page (charts included) to this file.",
)
@click.pass_context
def report(ctx: click.Context, period: str, as_json: bool, html_path: str | None) -> None:
    """What the posts achieved: objectives, platforms, short/medium/long term, posts."""
    from syndicator import report as reporting
    from syndicator.objectives import parse_duration

    try:
        parse_duration(period)
    except ValueError:
        raise click.BadParameter(f"{period!r}: expected a duration like 7d or 30d") from None
    with opened_store(ctx) as (loaded, store):
        data = reporting.build(loaded, store, period=period)
    if html_path:
        from pathlib import Path

        from syndicator import report_html

        Path(html_path).write_text(report_html.render(data), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from syndicator import report_text

    report_text.print_report(data)
    if html_path:
        click.echo(f"\nHTML report written to {html_path}")
