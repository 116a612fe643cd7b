"""The dispatch loop: per target, claim due deliveries and hand them to the publisher.

Each target drains in its own worker thread and a tick never waits for a slow one, so a
slow or paused platform never holds up the others. A lease keeper renews the leases this
process holds while it works; `stop()` lets the delivery in flight finish and releases the
rest of the batch untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from syndicator.config import Settings, TargetSettings
from syndicator.connector import Connector
from syndicator.drafting import Drafter
from syndicator.models import utcnow
from syndicator.publishing import Publisher
from syndicator.store import Delivery, Pacing, Store

if TYPE_CHECKING:
    from syndicator.metrics import Metrics

log = logging.getLogger(__name__)

STOP_BATCH = ("rate_limited", "auth_expired", "unknown")  # the rest of the batch must wait


class Dispatcher:
    """Publishes due deliveries; `tick()` starts a drain for every idle target."""

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
        self.store = store
        self.connectors = connectors
        self.owner = owner
        self.batch = batch
        self.metrics = metrics
        self.publisher = Publisher(settings, store, Drafter(settings, store, connectors), owner)
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, len(connectors)),
            thread_name_prefix="dispatch",  # one per target
        )
        self._draining: dict[str, Future[Counter[str]]] = {}
        self._lock = threading.Lock()
        self._keeper = threading.Thread(target=self._keep_leases, name="leases", daemon=True)
        self._keeper.start()

    def stop(self) -> None:
        """Finish the deliveries in flight, release the rest, stop the workers."""
        self.stopping.set()
        self.pool.shutdown(wait=True)

    close = stop

    def tick(self, now: datetime | None = None, *, wait: bool = True) -> Counter[str]:
        """Recover dead leases, then drain every target not already draining.

        The daemon does not wait (a slow target drains on while the others go on); `run
        --once` and tests wait and get the counts.
        """
        self.store.recover_expired(now or utcnow())
        started: list[Future[Counter[str]]] = []
        with self._lock:
            for name in self.connectors:
                running = self._draining.get(name)
                if self.stopping.is_set() or (running and not running.done()):
                    continue
                future = self.pool.submit(self.drain_target, self.settings.target(name))
                self._draining[name] = future
                started.append(future)
        totals: Counter[str] = Counter()
        if wait:
            for future in started:
                totals.update(future.result())
        return totals

    def drain_target(self, target: TargetSettings) -> Counter[str]:
        """Publish this target's due deliveries until none is due, pacing says stop, or the
        process stops."""
        counts: Counter[str] = Counter()
        connector = self.connectors[target.name]
        resolvable = connector.can_lookup or target.on_unknown == "resend"
        pacing = Pacing(target.cap_per_hour, target.cap_per_day, target.min_spacing)
        while not self.stopping.is_set():
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
                break
            try:
                self._work(target, connector, claimed, counts)
            except Exception:  # a bug must not leave the batch held by a live lease keeper
                log.exception(
                    "target %s: dispatch crashed; its claimed deliveries released", target.name
                )
                self._release([d for d in claimed if d.state])
                break
        if counts:
            log.info("target %s: %s", target.name, dict(counts))
        return counts

    def _work(
        self,
        target: TargetSettings,
        connector: Connector,
        claimed: list[Delivery],
        counts: Counter[str],
    ) -> None:
        for index, delivery in enumerate(claimed):
            if self.stopping.is_set():
                self._release(claimed[index:])
                return
            if not self.store.renew_lease(
                delivery, self.owner, utcnow(), self.settings.lease_seconds
            ):
                log.warning("delivery %s: another process took it over; not sent here", delivery.id)
                continue
            started = time.monotonic()
            outcome = self.publisher.process(target, connector, delivery)
            counts[outcome] += 1
            if self.metrics:
                sent = outcome not in ("skipped", "dry_run")
                seconds = time.monotonic() - started if sent else None
                self.metrics.delivery(target.name, outcome, seconds)
            if outcome in STOP_BATCH:
                self._release(claimed[index + 1 :])
                return

    def _release(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.store.release(delivery, self.owner, utcnow())

    def _keep_leases(self) -> None:
        """Renew every lease this process holds, a few times per lease period, so a slow
        publish (or a batch waiting its turn) is never taken for a dead process's."""
        period = max(self.settings.lease_seconds / 4, 1.0)
        while not self.stopping.wait(period):
            try:
                self.store.renew_leases(self.owner, utcnow(), self.settings.lease_seconds)
            except Exception:  # the database is away: the next round tries again
                log.exception("renewing leases failed")
