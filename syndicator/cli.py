"""Command line: run the daemon, inspect and steer the queue, preview, check.

Inspection commands import only the config and the store (SQLAlchemy); platform SDKs,
Pillow and APScheduler load only on the paths that need them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from syndicator.errors import ConfigError

if TYPE_CHECKING:
    from syndicator.config import Settings
    from syndicator.store import Delivery, Store

DEFAULT_CONFIG = "/etc/syndicator/config.toml"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="SYNDICATOR_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Config file (TOML).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for DEBUG).")
@click.pass_context
def cli(ctx: click.Context, config_path: str, verbose: int) -> None:
    """syndicator publishes a blog's new posts to its social profiles."""
    ctx.obj = {"config": config_path, "verbose": verbose}


def settings(ctx: click.Context) -> Settings:
    """Load and validate the config, or exit 2 with the message."""
    from syndicator import config, logs

    try:
        loaded = config.load(ctx.obj["config"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    logs.setup(ctx.obj["verbose"], loaded.secrets)
    return loaded


@contextmanager
def opened_store(ctx: click.Context) -> Iterator[tuple[Settings, Store]]:
    """The store for inspection commands, migrated if the daemon never ran."""
    from syndicator.store import Store

    loaded = settings(ctx)
    loaded.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(loaded.database)
    try:
        store.migrate()
        yield loaded, store
    finally:
        store.close()


def build_app(ctx: click.Context) -> Any:
    from syndicator.app import App

    try:
        return App.build(settings(ctx))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


# -- running -----------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once, dispatch what is due, exit.")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Run the daemon (or one round with --once)."""
    ctx.obj["verbose"] = max(ctx.obj["verbose"], 0 if once else 1)
    app = build_app(ctx)
    if once:
        from syndicator import output

        try:
            polls, counts = app.run_once()
            output.print_round(app, polls, counts)
        finally:
            app.close()
        return
    from pathlib import Path

    from syndicator.scheduler import Daemon

    Daemon(app, Path(ctx.obj["config"])).run()


@cli.command()
@click.option(
    "--online", is_flag=True, help="Also ask every platform whether the credentials work."
)
@click.pass_context
def check(ctx: click.Context, online: bool) -> None:
    """Validate the config (and with --online, every target's credentials)."""
    app = build_app(ctx)
    try:
        click.echo(
            f"{app.settings.path}: OK — {len(app.settings.feeds)} feed(s), "
            f"{len(app.connectors)} enabled target(s), mode {app.settings.mode}"
        )
        if not online:
            return
        failures = 0
        for name, connector in app.connectors.items():
            try:
                info = connector.check()
            except Exception as exc:
                failures += 1
                click.echo(f"  {name}: FAILED — {exc}")
                continue
            expiry = f", token expires {info.expires_at:%Y-%m-%d}" if info.expires_at else ""
            details = "".join(f"\n      {d}" for d in info.details)
            click.echo(f"  {name}: OK — {info.account}{expiry}{details}")
        if app.settings.bitly:
            from syndicator.shorten import bitly_for

            try:
                click.echo(f"  bit.ly: OK — {bitly_for(app.settings).check()}")  # type: ignore[union-attr]
            except Exception as exc:
                failures += 1
                click.echo(f"  bit.ly: FAILED — {exc}")
        if failures:
            raise click.ClickException(f"{failures} target(s) failed the online check")
    finally:
        app.close()


@cli.command()
@click.pass_context
def preview(ctx: click.Context) -> None:
    """What the newest entry of each feed would produce on each target (nothing is stored)."""
    from syndicator import feed as feedmod
    from syndicator import output
    from syndicator.errors import FeedError
    from syndicator.poller import accepts, newest

    app = build_app(ctx)
    try:
        for feed in app.settings.feeds:
            try:
                fetched = feedmod.fetch(
                    feed.url,
                    timeout=feed.timeout,
                    max_bytes=feed.max_bytes,
                    user_agent=app.settings.user_agent,
                )
                parsed = feedmod.parse(
                    feed.name, fetched.body or b"", headers=fetched.headers, base_url=fetched.url
                )
            except FeedError as exc:
                click.echo(f"feed {feed.name}: {exc}", err=True)
                continue
            if not parsed.posts:
                click.echo(f"feed {feed.name}: no entries")
                continue
            post = newest(parsed.posts)
            click.echo(f"== feed {feed.name}: {post.title or post.url}")
            for target in app.settings.targets:
                connector = app.connectors.get(target.name)
                if connector is None or not accepts(target, post):
                    continue
                output.print_draft(target.name, connector.prepare(post))
    finally:
        app.close()


# -- queue -------------------------------------------------------------------------------------


@cli.group()
def queue() -> None:
    """Inspect and steer deliveries (one per post × target)."""


@queue.command("list")
@click.option("--state", help="Only this state (pending, unknown, failed, published, ...).")
@click.option("--target", help="Only this target.")
@click.option("--limit", default=50, show_default=True)
@click.option("--before", type=int, help="Page: deliveries with an id below this.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def queue_list(
    ctx: click.Context,
    state: str | None,
    target: str | None,
    limit: int,
    before: int | None,
    as_json: bool,
) -> None:
    """List deliveries, newest first. Unknown outcomes are flagged: they need a look."""
    from syndicator import output, queries

    with opened_store(ctx) as (_, store):
        rows = queries.list_deliveries(
            store, state=state, target=target, limit=limit, before_id=before
        )
        if as_json:
            click.echo(json.dumps([output.delivery_json(d) for d in rows], indent=2))
            return
        output.print_deliveries(rows)
        unknown = queries.list_deliveries(store, state="unknown", limit=1)
        if unknown and state != "unknown":
            click.echo(
                "\n! Some deliveries have an unknown outcome: "
                "`syndicator queue list --state unknown`"
            )


@queue.command("show")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def queue_show(ctx: click.Context, delivery_id: int, as_json: bool) -> None:
    """Everything about one delivery: payload, attempts, log."""
    from syndicator import output, queries

    with opened_store(ctx) as (_, store):
        delivery = _get(store, delivery_id)
        entries = queries.log_entries(store, delivery_id=delivery_id, limit=100)
        if as_json:
            data = output.delivery_json(delivery) | {
                "payload": delivery.payload,
                "log": [output.jsonable(e) for e in entries],
            }
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        output.print_delivery(delivery, entries)


def _get(store: Store, delivery_id: int) -> Delivery:
    from syndicator import queries

    delivery = queries.get_delivery(store, delivery_id)
    if delivery is None:
        raise click.ClickException(f"no delivery {delivery_id}")
    return delivery


def _human_action(ctx: click.Context, ids: tuple[int, ...], action: str, verb: str) -> None:
    from syndicator.models import utcnow

    with opened_store(ctx) as (_, store):
        failed = 0
        for delivery_id in ids:
            delivery = _get(store, delivery_id)
            if getattr(store, action)(delivery_id, utcnow()):
                click.echo(f"delivery {delivery_id} ({delivery.target}): {verb}")
            else:
                failed += 1
                click.echo(
                    f"delivery {delivery_id} ({delivery.target}): cannot be {verb} "
                    f"from state {delivery.state}",
                    err=True,
                )
        if failed:
            sys.exit(1)


@queue.command("retry")
@click.argument("ids", type=int, nargs=-1, required=True)
@click.pass_context
def queue_retry(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Re-queue failed, unknown or cancelled deliveries (attempts reset). An unknown outcome
    on a platform that can be searched is looked up first, never blindly resent."""
    from syndicator import registry
    from syndicator.models import State, utcnow

    with opened_store(ctx) as (loaded, store):
        lookups = []
        types = {t.name: t.type for t in loaded.targets}
        for delivery_id in ids:
            delivery = _get(store, delivery_id)
            kind = types.get(delivery.target)
            if delivery.state == State.UNKNOWN and kind and registry.load_class(kind).can_lookup:
                store.look_again(delivery_id, utcnow())
                click.echo(
                    f"delivery {delivery_id} ({delivery.target}): re-queued, "
                    "looked up before any resend"
                )
                lookups.append(delivery_id)
    rest = tuple(i for i in ids if i not in lookups)
    if rest:
        _human_action(ctx, rest, "retry", "re-queued")


@queue.command("cancel")
@click.argument("ids", type=int, nargs=-1, required=True)
@click.pass_context
def queue_cancel(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Cancel deliveries that have not gone out."""
    _human_action(ctx, ids, "cancel", "cancelled")


@queue.command("landed")
@click.argument("delivery_id", type=int)
@click.option("--url", required=True, help="Where the post is on the platform.")
@click.pass_context
def queue_landed(ctx: click.Context, delivery_id: int, url: str) -> None:
    """Settle an unknown outcome by hand: the post is there (use `queue retry` if it is not)."""
    from syndicator.models import Receipt, utcnow

    with opened_store(ctx) as (_, store):
        delivery = _get(store, delivery_id)
        if not store.mark_resolved_published(delivery_id, Receipt(remote_id="", url=url), utcnow()):
            raise click.ClickException(
                f"delivery {delivery_id} is {delivery.state}: only unknown outcomes can be settled"
            )
    click.echo(f"delivery {delivery_id} ({delivery.target}): published at {url}")


@cli.command("log")
@click.option("--target")
@click.option("--post", "post_guid", help="A post's guid or URL.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def log_cmd(
    ctx: click.Context, target: str | None, post_guid: str | None, limit: int, as_json: bool
) -> None:
    """The publish log: one row per attempt, newest first."""
    from syndicator import output, queries

    with opened_store(ctx) as (_, store):
        post_ids = store.find_posts(post_guid) if post_guid else None
        entries = queries.log_entries(store, target=target, post_ids=post_ids, limit=limit)
        if as_json:
            click.echo(
                json.dumps([output.jsonable(e) for e in entries], indent=2, ensure_ascii=False)
            )
        else:
            output.print_log(entries)


# -- approval ----------------------------------------------------------------------------------


def _select(
    store: Store, ids: tuple[int, ...], post: str | None, everything: bool
) -> tuple[int, ...]:
    """Delivery ids from explicit ids, a post's guid/URL, or every delivery awaiting approval."""
    from syndicator import queries

    if ids:
        return ids
    if not post and not everything:
        raise click.UsageError("give delivery IDs, --post GUID or --all")
    post_ids = store.find_posts(post) if post else None
    if post and not post_ids:
        raise click.ClickException(f"no post with guid or URL {post!r}")
    rows = queries.list_deliveries(
        store, state="awaiting_approval", post_ids=post_ids, limit=10_000
    )
    return tuple(d.id for d in rows)


def _approval_command(action: str, verb: str, doc: str) -> None:
    @cli.command(action, help=doc)
    @click.argument("ids", type=int, nargs=-1)
    @click.option("--post", help="Every delivery of this post (guid or URL).")
    @click.option("--all", "everything", is_flag=True, help="Everything awaiting approval.")
    @click.pass_context
    def command(
        ctx: click.Context, ids: tuple[int, ...], post: str | None, everything: bool
    ) -> None:
        with opened_store(ctx) as (_, store):
            selected = _select(store, ids, post, everything)
        if not selected:
            click.echo("nothing awaits approval")
            return
        _human_action(ctx, selected, action, verb)


_approval_command(
    "approve", "approved", "Approve deliveries: their exact payload may now be published."
)
_approval_command("reject", "rejected", "Reject deliveries awaiting approval (they are cancelled).")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def pending(ctx: click.Context, as_json: bool) -> None:
    """What awaits approval, with the exact text each platform will get."""
    from syndicator import output, queries

    with opened_store(ctx) as (_, store):
        rows = queries.list_deliveries(store, state="awaiting_approval", limit=1000)
    if as_json:
        click.echo(
            json.dumps(
                [output.delivery_json(d) | {"payload": d.payload} for d in rows],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not rows:
        click.echo("nothing awaits approval")
    for d in rows:
        click.echo(f"\ndelivery {d.id}: {d.post_title or d.post_url} → {d.target}")
        if d.draft:
            output.print_draft(d.target, d.draft)
    if rows:
        click.echo("\napprove with `syndicator approve ID...`, `--post GUID` or `--all`")


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


@cli.command()
@click.option(
    "--state-dir", default="demo-state", show_default=True, type=click.Path(file_okay=False)
)
@click.pass_context
def demo(ctx: click.Context, state_dir: str) -> None:
    """Dry-run the bundled sample feed against every platform; shows what would be published."""
    from pathlib import Path

    from syndicator.demo import serve_sample, write_config

    with serve_sample() as feed_url:
        ctx.obj["config"] = str(write_config(Path(state_dir), feed_url))
        click.echo(f"demo config: {ctx.obj['config']} (feed served at {feed_url})\n")
        ctx.invoke(run, once=True)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="syndicator")
