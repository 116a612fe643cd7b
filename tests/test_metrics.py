"""Metrics: named methods in, Prometheus exposition out, one registry per instance."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syndicator.metrics import PUBLISH_BUCKETS, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} parsed back from the exposition text."""
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def test_instances_have_their_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the global registry would refuse duplicate names
    first.delivery("mastodon", "published", 1.0)
    assert value(first, "syndicator_deliveries_total", target="mastodon", outcome="published") == 1
    assert (
        value(second, "syndicator_deliveries_total", target="mastodon", outcome="published") is None
    )


def test_delivery_counts_and_times_publish_calls_only() -> None:
    metrics = Metrics()
    metrics.delivery("x", "published", 0.3)
    metrics.delivery("x", "retry", 12.0)
    metrics.delivery("x", "dry_run")
    assert value(metrics, "syndicator_deliveries_total", target="x", outcome="published") == 1
    assert value(metrics, "syndicator_deliveries_total", target="x", outcome="dry_run") == 1
    assert value(metrics, "syndicator_publish_seconds_count", target="x") == 2
    assert value(metrics, "syndicator_publish_seconds_sum", target="x") == pytest.approx(12.3)
    assert value(metrics, "syndicator_publish_seconds_bucket", target="x", le="0.5") == 1


def test_publish_buckets_span_fifty_milliseconds_to_a_minute() -> None:
    assert PUBLISH_BUCKETS[0] == 0.05 and PUBLISH_BUCKETS[-1] == 60.0
    assert list(PUBLISH_BUCKETS) == sorted(PUBLISH_BUCKETS)


def test_feed_poll_results_and_errors() -> None:
    metrics = Metrics()
    for result in ("ok", "ok", "not_modified", "error"):
        metrics.feed_poll("news", result)
    assert value(metrics, "syndicator_feed_polls_total", feed="news", result="ok") == 2
    assert value(metrics, "syndicator_feed_polls_total", feed="news", result="not_modified") == 1
    assert value(metrics, "syndicator_feed_polls_total", feed="news", result="error") == 1
    assert value(metrics, "syndicator_feed_poll_errors_total", feed="news") == 1


def test_unknown_labels_are_a_programming_error() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError):
        metrics.feed_poll("news", "timeout")
    with pytest.raises(ValueError):
        metrics.ping("email", "accepted")
    with pytest.raises(ValueError):
        metrics.ping("webhook", "maybe")


def test_ping_series_exist_at_zero_before_the_first_ping() -> None:
    metrics = Metrics()
    metrics.ping("webhook", "refused")
    assert value(metrics, "syndicator_pings_total", source="xmlrpc", result="accepted") == 0
    assert value(metrics, "syndicator_pings_total", source="webhook", result="refused") == 1


def test_queue_counts_replace_the_previous_scrape() -> None:
    metrics = Metrics()
    metrics.set_queue_counts({"x": {"pending": 3, "failed": 1}, "mastodon": {"published": 7}})
    assert value(metrics, "syndicator_queue_deliveries", target="x", state="pending") == 3
    metrics.set_queue_counts({"x": {"pending": 1}})
    assert value(metrics, "syndicator_queue_deliveries", target="x", state="pending") == 1
    assert value(metrics, "syndicator_queue_deliveries", target="x", state="failed") is None
    assert (
        value(metrics, "syndicator_queue_deliveries", target="mastodon", state="published") is None
    )


def test_render_is_the_text_exposition_format() -> None:
    metrics = Metrics()
    metrics.delivery("x", "published", 1.0)
    text = metrics.render().decode()
    assert "# TYPE syndicator_deliveries_total counter" in text
    assert "# TYPE syndicator_publish_seconds histogram" in text
    assert 'syndicator_deliveries_total{outcome="published",target="x"} 1.0' in text
