"""Command line: the group, its shared helpers, and running (run, check, preview, demo).

The queue and approval commands live in cli_queue.py, status and measuring in cli_status.py.

Inspection commands import only the config and the store (SQLAlchemy); platform SDKs,
Pillow and APScheduler load only on the paths that need them.
"""

from __future__ import annotations

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


# The other commands register themselves on `cli` (imported last: they import this module).
from syndicator import cli_queue, cli_status  # noqa: E402, F401
