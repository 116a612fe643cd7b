"""Prometheus metrics behind named methods, so callers never touch prometheus objects.

Each `Metrics` owns its own `CollectorRegistry`: tests, reloads and several daemons in one
process never collide on the global registry.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PUBLISH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
POLL_RESULTS = ("ok", "not_modified", "error")
PING_SOURCES = ("xmlrpc", "webhook")
PING_RESULTS = ("accepted", "refused")


class Metrics:
    """The daemon's counters, histogram and queue gauge; `render()` gives the exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()  # a scrape never sees the queue gauge half-refreshed
        r = self.registry
        self.deliveries_total = Counter(
            "syndicator_deliveries",
            "Delivery attempts by outcome.",
            ["target", "outcome"],
            registry=r,
        )
        self.publish_seconds = Histogram(
            "syndicator_publish_seconds",
            "Time spent in one publish attempt.",
            ["target"],
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.feed_polls_total = Counter(
            "syndicator_feed_polls", "Feed polls by result.", ["feed", "result"], registry=r
        )
        self.feed_poll_errors_total = Counter(
            "syndicator_feed_poll_errors", "Feed polls that failed.", ["feed"], registry=r
        )
        self.queue_deliveries = Gauge(
            "syndicator_queue_deliveries",
            "Deliveries in the queue by target and state, read at scrape time.",
            ["target", "state"],
            registry=r,
        )
        self.pings_total = Counter(
            "syndicator_pings", "Update pings received.", ["source", "result"], registry=r
        )
        for source in PING_SOURCES:  # fixed label sets start at 0 so rate() sees the first one
            for result in PING_RESULTS:
                self.pings_total.labels(source, result)

    def delivery(self, target: str, outcome: str, seconds: float | None = None) -> None:
        """Count one processed delivery; `seconds` only when a publish call was made."""
        self.deliveries_total.labels(target, outcome).inc()
        if seconds is not None:
            self.publish_seconds.labels(target).observe(seconds)

    def feed_poll(self, feed: str, result: str) -> None:
        """Count one poll of `feed`: ok, not_modified or error."""
        if result not in POLL_RESULTS:
            raise ValueError(f"poll result must be one of {POLL_RESULTS}, got {result!r}")
        self.feed_polls_total.labels(feed, result).inc()
        if result == "error":
            self.feed_poll_errors_total.labels(feed).inc()

    def ping(self, source: str, result: str) -> None:
        """Count one ping from WordPress (xmlrpc) or the webhook: accepted or refused."""
        if source not in PING_SOURCES or result not in PING_RESULTS:
            raise ValueError(f"unknown ping source/result {source!r}/{result!r}")
        self.pings_total.labels(source, result).inc()

    def set_queue_counts(self, counts: dict[str, dict[str, int]]) -> None:
        """Replace the queue gauge with {target: {state: count}}; vanished series disappear."""
        with self._lock:
            self.queue_deliveries.clear()
            for target, states in counts.items():
                for state, count in states.items():
                    self.queue_deliveries.labels(target, state).set(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything above."""
        with self._lock:
            return generate_latest(self.registry)
