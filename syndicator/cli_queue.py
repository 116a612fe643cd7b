"""CLI: inspect and steer the queue (list, show, retry, cancel, landed), the publish log,
and approval (pending, approve, reject)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from syndicator.cli import _get, _human_action, cli, opened_store

if TYPE_CHECKING:
    from syndicator.store import Store


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
