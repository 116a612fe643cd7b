"""One poll of one feed: fetch, store new posts, create one delivery per (post, target).

A feed's first successful poll records its back catalogue as seen and publishes only the
newest `backfill` entries; edits are recorded and update not-yet-sent drafts, never re-post.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from syndicator import feed as feedmod
from syndicator.config import FeedSettings, Settings, TargetSettings
from syndicator.connector import Connector
from syndicator.drafting import Drafter, ShortLinkWait
from syndicator.errors import FeedError
from syndicator.models import Post, State
from syndicator.notify import PendingItem, notify_pending
from syndicator.store import Store

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    """What one poll did, for logs, the CLI and tests."""

    feed: str
    fetched: bool = False
    not_modified: bool = False
    new_posts: int = 0
    edited_posts: int = 0
    deliveries: int = 0
    skipped: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    awaiting: list[PendingItem] = field(default_factory=list)
    deferred: int = 0


def accepts(target: TargetSettings, post: Post) -> bool:
    """The target's feed, category and tag filters (case-insensitive)."""
    if target.feeds and post.feed not in target.feeds:
        return False
    categories = {c.casefold() for c in post.categories}
    tags = {t.casefold() for t in post.tags}
    if target.include_categories and not categories & target.include_categories:
        return False
    if target.include_tags and not tags & target.include_tags:
        return False
    return not (categories & target.exclude_categories or tags & target.exclude_tags)


def is_dry_run(settings: Settings, target: TargetSettings, now: datetime) -> bool:
    """Dry-run globally, per target, or during the trial period."""
    return settings.mode == "dry-run" or target.dry_run or settings.trial_active(now)


def too_old(post: Post, max_age: float | None, now: datetime) -> bool:
    """Entries older than max_age are never published (no floods after downtime)."""
    when = post.published or post.updated
    return max_age is not None and when is not None and now - when > timedelta(seconds=max_age)


def recency(post: Post) -> datetime:
    """Sort key for "newest": its date; an undated entry counts as the oldest."""
    return post.published or post.updated or datetime.min.replace(tzinfo=UTC)


def newest(entries: list[Post]) -> Post:
    """The most recently published entry (feeds do not always list newest first)."""
    return max(entries, key=recency)


class Poller:
    """Polls feeds into the store; shared by the daemon, `run --once` and the ping listener."""

    def __init__(self, settings: Settings, store: Store, connectors: dict[str, Connector]) -> None:
        self.settings = settings
        self.store = store
        self.connectors = connectors
        self.drafter = Drafter(settings, store, connectors)

    def poll(self, feed: FeedSettings, now: datetime) -> PollResult:
        """Fetch and process one feed; a failure is recorded and never raised."""
        result = PollResult(feed=feed.name)
        self.store.ensure_feed(feed.name, feed.url)
        state = self.store.feed_state(feed.name)
        next_poll = now + timedelta(seconds=feed.interval)
        try:
            fetched = feedmod.fetch(
                feed.url,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
                timeout=feed.timeout,
                max_bytes=feed.max_bytes,
                user_agent=self.settings.user_agent,
            )
            result.fetched = True
            if fetched.body is None:
                result.not_modified = True
                self._resume_fan_out(feed, now, result)
                self.store.record_poll(
                    feed.name,
                    now,
                    etag=fetched.etag,
                    last_modified=fetched.last_modified,
                    next_poll_at=next_poll,
                )
                return result
            # the configured URL, not the final one: a redirect (http → https, www) must not
            # change relative guids, or every recent entry would look new
            parsed = feedmod.parse(
                feed.name,
                fetched.body,
                headers={**fetched.headers, "content-location": feed.url},
                base_url=feed.url,
            )
        except FeedError as exc:
            result.error = str(exc)
            log.warning("feed %s: poll failed, will retry at next interval: %s", feed.name, exc)
            self.store.record_poll(feed.name, now, error=str(exc), next_poll_at=next_poll)
            return result
        for warning in parsed.warnings:
            log.warning("feed %s: %s", feed.name, warning)
        result.warnings = list(parsed.warnings)
        first_poll = not (state and state.initialized)
        # a first look that did not finish (an entry refused) still dates the back catalogue
        looked = state.last_poll_at if state and first_poll else None
        failed = self._process(feed, parsed.posts, first_poll, now, result, looked)
        seen = {post.guid for post in parsed.posts}
        self._resume_fan_out(feed, now, result, skip=seen)  # posts that already left the feed
        if result.awaiting and self.settings.approval_webhook:
            notify_pending(
                self.settings.approval_webhook, result.awaiting, user_agent=self.settings.user_agent
            )
        if failed:  # validators stay put: the next poll reads the whole feed again
            result.error = f"{failed} entries could not be stored; read again at the next poll"
        self.store.record_poll(
            feed.name,
            now,
            error=result.error,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            initialized=not failed or None,
            next_poll_at=next_poll,
        )
        log.info(
            "feed %s: %d entries, %d new, %d edited, %d deliveries created",
            feed.name,
            len(parsed.posts),
            result.new_posts,
            result.edited_posts,
            result.deliveries,
        )
        return result

    def _process(
        self,
        feed: FeedSettings,
        entries: list[Post],
        first_poll: bool,
        now: datetime,
        result: PollResult,
        looked: datetime | None = None,
    ) -> int:
        """Store every entry and fan out the new ones; returns how many could not be stored.

        On a first poll only the `backfill` newest are published, and entries dated after an
        earlier, unfinished first look (`looked`).
        """
        ordered = sorted(entries, key=recency, reverse=True)
        backfill = {p.guid for p in ordered[: feed.backfill]} if first_poll else set()
        failed = 0
        for post in entries:
            newer = looked is not None and recency(post) > looked
            publish = not first_poll or post.guid in backfill or newer
            try:
                self._entry(post, feed, publish, now, result)
            except Exception:  # one entry the database refuses must not cost the others
                failed += 1
                log.exception("feed %s: entry %r could not be stored", feed.name, post.guid)
        return failed

    def _entry(
        self, post: Post, feed: FeedSettings, publish: bool, now: datetime, result: PollResult
    ) -> None:
        post_id, status, needs_fan_out = self.store.add_post(post, now, publish=publish)
        if status == "new":
            result.new_posts += 1
        elif status == "edited":
            result.edited_posts += 1
            self._update_drafts(post_id, post, now, result)
        if needs_fan_out:
            self._fan_out_once(post_id, post, feed, now, result)

    def _fan_out_once(
        self, post_id: int, post: Post, feed: FeedSettings, now: datetime, result: PollResult
    ) -> None:
        """Create the post's deliveries; it stays marked for fan-out while one is deferred."""
        deferred = result.deferred
        self._fan_out(post_id, post, feed, now, result)
        if result.deferred == deferred:
            self.store.mark_fanned_out(post_id)

    def _resume_fan_out(
        self, feed: FeedSettings, now: datetime, result: PollResult, skip: Set[str] = frozenset()
    ) -> None:
        """Finish fan-outs left by a crash or a deferral, even when the feed is unchanged
        (304) or the post has left it; `skip`: the posts this poll has just handled."""
        for post_id, post in self.store.posts_to_fan_out(feed.name):
            if post.guid not in skip:
                self._fan_out_once(post_id, post, feed, now, result)

    def _fan_out(
        self,
        post_id: int,
        post: Post,
        feed: FeedSettings,
        now: datetime,
        result: PollResult,
    ) -> None:
        old = too_old(post, feed.max_age, now)
        for target in self.settings.targets:
            connector = self.connectors.get(target.name)
            if connector is None or not accepts(target, post):
                continue
            dry_run = is_dry_run(self.settings, target, now)
            if old:
                reason = f"older than max_age ({feed.max_age:g}s): published {post.published}"
                created = self.store.create_delivery(
                    post_id, target.name, State.SKIPPED, dry_run=dry_run, now=now, error=reason
                )
                result.skipped += created is not None
                continue
            try:
                draft = self.drafter.draft(post_id, post, target, live=not dry_run, now=now)
            except ShortLinkWait as exc:  # fan-out of this post is retried at the next poll
                log.warning(
                    "post %r target %s: waiting for a short link: %s", post.guid, target.name, exc
                )
                result.deferred += 1
                continue
            except Exception as exc:  # a connector bug must not stop the other targets
                log.exception("post %r target %s: prepare failed", post.guid, target.name)
                self.store.create_delivery(
                    post_id,
                    target.name,
                    State.FAILED,
                    dry_run=dry_run,
                    now=now,
                    error=f"prepare failed: {exc}",
                )
                continue
            needs_approval = target.require_approval and not dry_run
            state = State.AWAITING_APPROVAL if needs_approval else State.PENDING
            due = now + timedelta(seconds=target.delay)
            created = self.store.create_delivery(
                post_id, target.name, state, dry_run=dry_run, now=now, draft=draft, due=due
            )
            if created is not None:
                result.deliveries += 1
                if needs_approval:
                    item = PendingItem(created, target.name, post.title, post.url, draft.text)
                    result.awaiting.append(item)
                log.info(
                    "post %r target %s delivery %s: %s", post.guid, target.name, created, state
                )

    def _update_drafts(self, post_id: int, post: Post, now: datetime, result: PollResult) -> None:
        from syndicator.queries import list_deliveries

        targets = {t.name: t for t in self.settings.targets}
        for delivery in list_deliveries(self.store, post_ids=[post_id], limit=1000):
            target = targets.get(delivery.target)
            if target is None or delivery.target not in self.connectors:
                continue
            try:
                draft = self.drafter.draft(
                    post_id, post, target, live=not delivery.dry_run, now=now
                )
            except Exception:
                log.exception(
                    "post %r target %s: prepare after edit failed", post.guid, delivery.target
                )
                continue
            if draft.payload_hash == delivery.payload_hash:
                continue
            state = self.store.update_draft(delivery.id, draft, now)
            if state == State.AWAITING_APPROVAL:  # edited after approval: ask (and say) again
                item = PendingItem(delivery.id, delivery.target, post.title, post.url, draft.text)
                result.awaiting.append(item)
            if state is not None:
                log.info(
                    "post %r target %s delivery %s: edited before publishing, now %s",
                    post.guid,
                    delivery.target,
                    delivery.id,
                    state,
                )
