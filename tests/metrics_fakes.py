"""A fake connector that also reads counters back, registered like a real one in the tests
of the engagement job and the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest

from syndicator import registry
from syndicator.connector import ConnectorContext
from syndicator.models import Receipt
from tests.fakes import FakeConnector

METRICS: dict[str, MetricsPlatform] = {}


@dataclass
class MetricsPlatform:
    """The counters a platform shows (per remote id, else `default`), and errors to raise."""

    default: dict[str, int] = field(default_factory=dict)
    per_post: dict[str, dict[str, int]] = field(default_factory=dict)
    script: list[BaseException] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)


class MetricsFake(FakeConnector):
    """FakeConnector plus `metrics` and `fetch_metrics`."""

    name: ClassVar[str] = "fake-metrics"
    metrics: ClassVar[tuple[str, ...]] = ("likes", "shares", "comments", "impressions")

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(options, context)
        self.counters = METRICS.setdefault(options["platform"], MetricsPlatform())

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        self.counters.asked.append(receipt.remote_id)
        if self.counters.script:
            raise self.counters.script.pop(0)
        return dict(self.counters.per_post.get(receipt.remote_id, self.counters.default))


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add "fake-metrics" to the connectors the registry finds (after conftest's "fake")."""
    real = registry.available

    def available() -> dict[str, EntryPoint]:
        found = real()
        found["fake-metrics"] = EntryPoint(
            "fake-metrics", "tests.metrics_fakes:MetricsFake", registry.GROUP
        )
        return found

    monkeypatch.setattr(registry, "available", available)
    METRICS.clear()
