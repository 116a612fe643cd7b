"""One dispatch tick: recover dead leases, then per target claim due deliveries and publish.

Each target runs in its own worker thread, so a slow or paused platform never holds up
the others. Every outcome is recorded through one store transition before the next step.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from syndicator.config import RetryPolicy, Settings, TargetSettings
from syndicator.connector import Connector
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
from syndicator.store import Delivery, Pacing, Store

if TYPE_CHECKING:
    from syndicator.metrics import Metrics

log = logging.getLogger(__name__)

RATE_LIMIT_PAUSE = 900.0  # when a 429 carries no reset header
AUTH_PAUSE = 1800.0  # re-check rejected credentials every half hour (or on `resume`)
STOP_BATCH = ("rate_limited", "auth_expired", "unknown")  # the rest of the batch must wait


def backoff(policy: RetryPolicy, attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt: exponential with jitter, never before Retry-After."""
    delay = min(policy.base * policy.factor ** max(attempts - 1, 0), policy.max_delay)
    delay *= 1 + random.uniform(-policy.jitter, policy.jitter)
    return max(delay, retry_after or 0.0)


class Dispatcher:
    """Publishes due deliveries; `tick()` drains what is due now and returns counts."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        connectors: dict[str, Connector],
        owner: str,
        *,
        batch: int = 20,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.connectors = connectors
        self.owner = owner
        self.batch = batch
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, min(len(connectors), 8)), thread_name_prefix="dispatch"
        )

    def close(self) -> None:
        """Wait for the deliveries in flight, then stop the workers."""
        self.pool.shutdown(wait=True)

    def tick(self, now: datetime | None = None) -> Counter[str]:
        """Recover expired leases, then publish everything due, target by target in parallel."""
        self.store.recover_expired(now or utcnow())
        futures = [
            self.pool.submit(self.drain_target, self.settings.target(name))
            for name in self.connectors
        ]
        totals: Counter[str] = Counter()
        for future in futures:
            totals.update(future.result())
        return totals

    def drain_target(self, target: TargetSettings) -> Counter[str]:
        """Publish this target's due deliveries until none is due or its pacing says stop."""
        counts: Counter[str] = Counter()
        connector = self.connectors[target.name]
        resolvable = connector.can_lookup or target.on_unknown == "resend"
        pacing = Pacing(target.cap_per_hour, target.cap_per_day, target.min_spacing)
        while True:
            claimed = self.store.claim_due(
                self.owner,
                utcnow(),
                self.settings.lease_seconds,
                target=target.name,
                limit=self.batch,
                resolvable_unknown=resolvable,
                pacing=pacing,
            )
            if not claimed:
                return counts
            for index, delivery in enumerate(claimed):
                if not self.store.renew_lease(
                    delivery, self.owner, utcnow(), self.settings.lease_seconds
                ):
                    log.warning("delivery %s: lease lost while waiting in the batch", delivery.id)
                    continue
                started = time.monotonic()
                outcome = self.process(target, connector, delivery)
                counts[outcome] += 1
                if self.metrics:
                    sent = outcome not in ("skipped", "dry_run")
                    self.metrics.delivery(
                        target.name, outcome, time.monotonic() - started if sent else None
                    )
                if outcome in STOP_BATCH:
                    for untouched in claimed[index + 1 :]:
                        self.store.release(untouched, self.owner, utcnow())
                    break

    def process(self, target: TargetSettings, connector: Connector, delivery: Delivery) -> str:
        """Take one claimed delivery to its next state; returns the outcome name."""
        now = utcnow()
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
        draft = delivery.draft
        if draft is None:
            self.store.mark_failed(delivery, self.owner, now, error="no prepared payload")
            return "failed"
        started = time.monotonic()
        if delivery.claimed_from == State.UNKNOWN and connector.can_lookup:
            try:
                found = connector.lookup(draft, key=delivery.key)
            except Exception as exc:  # cannot tell yet: stay unknown, never resend blindly
                return self._lookup_failed(target, delivery, exc, _ms(started))
            if found is not None:
                note = "an earlier attempt had landed (found by lookup)"
                return self._published(delivery, found, started, note=note)
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
            until = now + timedelta(seconds=exc.retry_after or RATE_LIMIT_PAUSE)
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
        if isinstance(exc, RateLimited | AuthExpired):
            due = self._pause(target, exc, now)
        else:
            due = now + timedelta(seconds=backoff(target.retry, delivery.attempts))
        self.store.mark_unknown(
            delivery, self.owner, now, error=error, due=due, duration_ms=duration_ms
        )
        _attempt_line(logging.WARNING, delivery, "unknown", error=error, next=due.isoformat())
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
    text = str(value)
    return f'"{text}"' if not text or any(c in text for c in ' "=') else text


def _where(delivery: Delivery) -> str:
    return f"post {delivery.post_guid} target {delivery.target} delivery {delivery.id}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
