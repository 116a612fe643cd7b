"""One delivery's attempt: from `publishing` to its next state, by the error kinds.

Lookup before any resend of an unknown outcome; retries with backoff; rate limits and
rejected credentials pause the target; an unusable image falls back to text; approval
and dry-run are checked once more right before sending.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta

from syndicator.config import RetryPolicy, Settings, TargetSettings
from syndicator.connector import Connector
from syndicator.drafting import Drafter
from syndicator.errors import (
    AuthExpired,
    ConnectorError,
    DuplicateContent,
    MediaError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.models import Draft, Receipt, State, utcnow
from syndicator.poller import is_dry_run
from syndicator.store import Delivery, Store

log = logging.getLogger(__name__)

RATE_LIMIT_PAUSE = 900.0  # when a 429 carries no reset header
MAX_WAIT = 7 * 86400.0  # whatever a platform or a plugin asks for, a target is re-tried then
AUTH_PAUSE = 1800.0  # re-check rejected credentials every half hour (or on `resume`)


def backoff(policy: RetryPolicy, attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt: exponential with jitter, never before Retry-After."""
    delay = min(policy.base * policy.factor ** max(attempts - 1, 0), policy.max_delay)
    delay *= 1 + random.uniform(-policy.jitter, policy.jitter)
    return min(max(delay, retry_after or 0.0), MAX_WAIT)


class Publisher:
    """Takes claimed deliveries, one at a time, to their next state."""

    def __init__(self, settings: Settings, store: Store, drafter: Drafter, owner: str) -> None:
        self.settings = settings
        self.store = store
        self.drafter = drafter
        self.owner = owner

    def process(self, target: TargetSettings, connector: Connector, delivery: Delivery) -> str:
        """Take one claimed delivery to its next state; returns the outcome name."""
        now = utcnow()
        started = time.monotonic()
        if delivery.claimed_from == State.UNKNOWN and connector.can_lookup and delivery.draft:
            # first: did it land? (before max_age or dry-run could misfile a live post)
            try:
                found = connector.lookup(delivery.draft, key=delivery.key)
            except Exception as exc:  # cannot tell yet: stay unknown, never resend blindly
                return self._lookup_failed(target, delivery, exc, _ms(started))
            if found is not None:
                note = "an earlier attempt had landed (found by lookup)"
                return self._published(delivery, found, started, note=note)
        feed = next((f for f in self.settings.feeds if f.name == delivery.post_feed), None)
        max_age = feed.max_age if feed else None
        if too_old_at(delivery, max_age, now):
            reason = f"older than max_age ({max_age:g}s) when due"
            self.store.mark_skipped(delivery, self.owner, now, reason=reason)
            return "skipped"
        if delivery.dry_run or is_dry_run(self.settings, target, now):
            self.store.mark_dry_run(delivery, self.owner, now)
            _attempt_line(logging.INFO, delivery, "dry_run", note="nothing sent")
            return "dry_run"
        draft = delivery.draft or self._prepare_again(target, delivery, now)
        if draft is None:
            return "failed"
        if target.require_approval and delivery.approved_hash != draft.payload_hash:
            # approval turned on after this was queued, or a rejected draft sent back: ask
            self.store.ask_approval(delivery, self.owner, now)
            _attempt_line(logging.INFO, delivery, "awaiting_approval", note="not approved yet")
            return "awaiting_approval"
        try:
            receipt, sent = self._publish(target, connector, delivery, draft)
        except ConnectorError as exc:
            return self._failure(target, connector, delivery, exc, started)
        except Exception as exc:  # a connector bug after sending looks just like a timeout
            log.exception("%s: connector crashed", _where(delivery))
            error = OutcomeUnknown(f"connector error: {type(exc).__name__}")
            return self._failure(target, connector, delivery, error, started)
        dropped = sent.notes[-1] if sent is not draft else None
        return self._published(delivery, receipt, started, note=dropped, sent=sent)

    def _prepare_again(
        self, target: TargetSettings, delivery: Delivery, now: datetime
    ) -> Draft | None:
        """A delivery without a payload (its prepare failed, then `queue retry`): prepare it
        now and keep the result; None (and `failed`, with the reason) if it fails again."""
        try:
            post = self.store.post(delivery.post_id)
            draft = self.drafter.draft(delivery.post_id, post, target, live=True, now=now)
        except Exception as exc:
            log.exception("%s: prepare failed again", _where(delivery))
            self.store.mark_failed(delivery, self.owner, now, error=f"prepare failed: {exc}")
            return None
        self.store.attach_draft(delivery, self.owner, draft, now)
        return draft

    def _publish(
        self, target: TargetSettings, connector: Connector, delivery: Delivery, draft: Draft
    ) -> tuple[Receipt, Draft]:
        """One publish; an unusable image falls back to text with link (per on_image_error).

        Returns the receipt and the draft really sent, which the delivery then records.
        """
        try:
            return connector.publish(draft, key=delivery.key), draft
        except MediaError as exc:
            if target.on_image_error == "hold":
                raise RetryableError(f"image unusable: {exc}") from None
            if target.on_image_error == "fail" or not draft.images:
                raise PermanentError(f"image unusable: {exc}") from None
            self.store.log_attempt(delivery, utcnow(), "image_dropped", error=str(exc))
            log.warning("%s: image unusable, posting text with link: %s", _where(delivery), exc)
            text_only = replace(draft, images=(), notes=(*draft.notes, f"image dropped: {exc}"))
            return connector.publish(text_only, key=delivery.key), text_only

    def _published(
        self,
        delivery: Delivery,
        receipt: Receipt,
        started: float,
        *,
        note: str | None = None,
        sent: Draft | None = None,
    ) -> str:
        self.store.mark_published(
            delivery, self.owner, receipt, utcnow(), duration_ms=_ms(started), note=note, sent=sent
        )
        _attempt_line(
            logging.INFO, delivery, "published", url=receipt.url or receipt.remote_id, note=note
        )
        return "published"

    def _pause(self, target: TargetSettings, exc: ConnectorError, now: datetime) -> datetime:
        """Rate limits and rejected credentials pause the whole target, nothing else."""
        if isinstance(exc, RateLimited):
            wait = min(exc.retry_after or RATE_LIMIT_PAUSE, MAX_WAIT)
            until = now + timedelta(seconds=wait)
            reason = f"rate limited: {exc}"
        else:
            until = now + timedelta(seconds=AUTH_PAUSE)
            reason = f"authentication failed: {exc}"
        self.store.pause_target(target.name, until, reason)
        log.warning("target %s paused until %s: %s", target.name, until.isoformat(), reason)
        return until

    def _lookup_failed(
        self, target: TargetSettings, delivery: Delivery, exc: Exception, duration_ms: int
    ) -> str:
        now = utcnow()
        error = (
            f"lookup failed: {exc}"
            if isinstance(exc, ConnectorError)
            else (f"lookup failed: {type(exc).__name__}")
        )
        due: datetime | None
        if isinstance(exc, RateLimited | AuthExpired):
            due = self._pause(target, exc, now)
        elif isinstance(exc, PermanentError):  # e.g. a tier that may not read the timeline
            due, error = None, f"{error} — check the platform, then `queue landed` or `retry`"
        else:
            due = now + timedelta(seconds=backoff(target.retry, delivery.attempts))
        self.store.mark_unknown(
            delivery, self.owner, now, error=error, due=due, duration_ms=duration_ms
        )
        _attempt_line(
            logging.WARNING,
            delivery,
            "unknown",
            error=error,
            next=due.isoformat() if due else "held for a human",
        )
        return "unknown"

    def _failure(
        self,
        target: TargetSettings,
        connector: Connector,
        delivery: Delivery,
        exc: ConnectorError,
        started: float,
    ) -> str:
        """Turn an error kind into the delivery's next state."""
        now, ms, error = utcnow(), _ms(started), str(exc)
        if isinstance(exc, RateLimited | AuthExpired):
            until = self._pause(target, exc, now)
            outcome = "rate_limited" if isinstance(exc, RateLimited) else "auth_expired"
            self.store.mark_retry(
                delivery,
                self.owner,
                now,
                error=error,
                due=until,
                outcome=outcome,
                refund=True,
                duration_ms=ms,
            )
            _attempt_line(logging.WARNING, delivery, outcome, error=error, until=until.isoformat())
            return outcome
        if isinstance(exc, DuplicateContent):
            return self._duplicate(connector, delivery, exc, started)
        if isinstance(exc, OutcomeUnknown):
            resolvable = connector.can_lookup or target.on_unknown == "resend"
            if delivery.attempts >= target.retry.max_attempts:
                error, resolvable = f"gave up after {delivery.attempts} attempts: {error}", False
            due = now + timedelta(seconds=backoff(target.retry, 1, exc.retry_after))
            self.store.mark_unknown(
                delivery,
                self.owner,
                now,
                error=error,
                due=due if resolvable else None,
                duration_ms=ms,
            )
            policy = "look up before resending" if resolvable else "held for a human"
            _attempt_line(logging.WARNING, delivery, "unknown", error=error, next=policy)
            return "unknown"
        if isinstance(exc, RetryableError) and delivery.attempts < target.retry.max_attempts:
            due = now + timedelta(seconds=backoff(target.retry, delivery.attempts, exc.retry_after))
            self.store.mark_retry(delivery, self.owner, now, error=error, due=due, duration_ms=ms)
            _attempt_line(
                logging.WARNING,
                delivery,
                "retry",
                attempt=delivery.attempts,
                error=error,
                next=due.isoformat(),
            )
            return "retry"
        if isinstance(exc, RetryableError):
            error = f"gave up after {delivery.attempts} attempts: {error}"
        self.store.mark_failed(delivery, self.owner, now, error=error, duration_ms=ms)
        _attempt_line(logging.ERROR, delivery, "failed", attempt=delivery.attempts, error=error)
        return "failed"

    def _duplicate(
        self, connector: Connector, delivery: Delivery, exc: ConnectorError, started: float
    ) -> str:
        """The platform has this content already: ours if an earlier attempt may have landed."""
        draft = delivery.draft
        found = None
        if connector.can_lookup and draft is not None:
            try:
                found = connector.lookup(draft, key=delivery.key)
            except Exception:
                log.warning("%s: lookup after a duplicate answer failed", _where(delivery))
        earlier = delivery.attempts > 1 or delivery.claimed_from == State.UNKNOWN
        if found is not None or earlier:
            note = f"platform reports an earlier attempt landed: {exc}"
            return self._published(delivery, found or Receipt(remote_id=""), started, note=note)
        self.store.mark_failed(
            delivery,
            self.owner,
            utcnow(),
            error=f"duplicate content: {exc}",
            duration_ms=_ms(started),
        )
        return "failed"


def too_old_at(delivery: Delivery, max_age: float | None, now: datetime) -> bool:
    """A delivery that waited past max_age (downtime, backlog) is skipped, not flooded out."""
    published = delivery.post_published
    return (
        max_age is not None
        and published is not None
        and (now - published > timedelta(seconds=max_age))
    )


def _attempt_line(level: int, delivery: Delivery, outcome: str, **fields: object) -> None:
    """One structured line per publish attempt: grep-able, one key=value per fact."""
    facts = {
        "post": delivery.post_guid,
        "target": delivery.target,
        "delivery": delivery.id,
        "outcome": outcome,
        **fields,
    }
    text = " ".join(f"{k}={_quoted(v)}" for k, v in facts.items() if v is not None)
    log.log(level, "publish %s", text)


def _quoted(value: object) -> str:
    """A bare value when it is plain; else a JSON string, so feed content (a guid with a
    newline or quotes) can never forge a line or a field."""
    text = str(value)
    plain = text and text.isprintable() and not any(c in text for c in ' "=\\')
    return text if plain else json.dumps(text, ensure_ascii=False)


def _where(delivery: Delivery) -> str:
    return f"post {delivery.post_guid} target {delivery.target} delivery {delivery.id}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
