"""One engagement round: read back the counters of published posts at widening ages.

The daemon runs a round every `[engagement] interval`; `syndicator engagement --once` runs
the same round by hand. Publishing always comes first: a paused target is not asked at all,
and a target that answers "rate limited" is left alone for the rest of the round (nothing is
paused for it). A platform that refuses these reads to the account (permissions, API tier)
is recorded once per target and not asked again until the config reloads or `resume`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from syndicator.config import Settings
from syndicator.connector import Connector, ReadsMetrics, metric_names
from syndicator.errors import (
    AuthExpired,
    ConnectorError,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
)
from syndicator.models import Receipt, utcnow
from syndicator.objectives import Step
from syndicator.store import Published, Store

if TYPE_CHECKING:
    from syndicator.shorten import Bitly

log = logging.getLogger(__name__)

GRACE = timedelta(days=1)
"""A step that fell due while no daemon ran is still read this long after `stop_after`."""


@dataclass
class RoundResult:
    """What one round did: readings stored per target and step, and targets left alone."""

    stored: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    failed: int = 0

    def summary(self) -> dict[str, object]:
        """Plain data for logs, the CLI and `--json`."""
        per_target: dict[str, dict[str, int]] = {}
        for (target, age), count in sorted(self.stored.items()):
            per_target.setdefault(target, {})[age] = count
        return {
            "stored": per_target,
            "skipped": dict(self.skipped),
            "refused": dict(self.refused),
            "failed": self.failed,
        }


def due_step(item: Published, steps: tuple[Step, ...], now: datetime) -> Step | None:
    """The step to read now: the latest one the post's age has reached, if no reading at or
    after it exists. Steps missed while nothing ran are skipped, never read late as
    themselves: a "1h" reading taken at three days would mislead."""
    age = (now - item.published_at).total_seconds()
    done = [s.seconds for s in steps if s.label in item.ages]
    reached = [s for s in steps if s.seconds <= age and s.seconds > max(done, default=0.0)]
    return reached[-1] if reached else None


def clean(counters: Mapping[str, object]) -> dict[str, int]:
    """Whole, non-negative counters only, whatever a connector returned."""
    return {
        str(name): int(value)
        for name, value in counters.items()
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0
    }


class Engagement:
    """Reads counters back through the same connectors that published the posts."""

    def __init__(self, settings: Settings, store: Store, connectors: Mapping[str, Connector]):
        self.settings = settings
        self.store = store
        self.connectors = connectors
        self._bitly: Bitly | None = None

    def run_once(self, now: datetime | None = None) -> RoundResult:
        """One round over every published live delivery with a step due."""
        now = now or utcnow()
        result = RoundResult()
        config = self.settings.engagement
        if not config.enabled:
            return result
        shortened = {t.name for t in self.settings.targets if t.shorten}
        readers = {
            name: c
            for name, c in self.connectors.items()
            if metric_names(c) or name in shortened  # bit.ly counts clicks for any platform
        }
        for name in sorted(set(self.connectors) - set(readers)):
            result.skipped[name] = "reads no counters"
        since = now - timedelta(seconds=config.stop_after) - GRACE
        by_target: dict[str, list[Published]] = {}
        for item in self.store.published_since(since, targets=sorted(readers)):
            by_target.setdefault(item.target, []).append(item)
        for target, items in sorted(by_target.items()):
            due = [(item, step) for item in items if (step := due_step(item, config.steps, now))]
            if due and self._may_ask(target, now, result):
                self._read_target(target, readers[target], due, now, result)
        return result

    def _may_ask(self, target: str, now: datetime, result: RoundResult) -> bool:
        """Not while publishing is paused; not after the platform refused."""
        state = self.store.target_state(target)
        if state.paused_until is not None and state.paused_until > now:
            result.skipped[target] = f"paused until {state.paused_until:%Y-%m-%d %H:%M} UTC"
            return False
        if state.metrics_error:
            result.skipped[target] = f"refused: {state.metrics_error}"
            return False
        return True

    def _read_target(
        self,
        target: str,
        connector: Connector,
        due: list[tuple[Published, Step]],
        now: datetime,
        result: RoundResult,
    ) -> None:
        """Read each due post of one target until the platform says stop."""
        reader = cast(ReadsMetrics, connector)
        for item, step in due:
            ids = f"delivery {item.delivery_id} (post {item.post_id}, target {target})"
            try:
                counters = (
                    reader.fetch_metrics(Receipt(item.remote_id, item.remote_url))
                    if metric_names(connector)
                    else {}
                )
            except (RetryableError, OutcomeUnknown) as exc:  # RateLimited is retryable too
                log.info("target %s: counters not read, next round: %s", target, exc)
                result.skipped[target] = f"stopped for this round: {exc}"
                return  # what is left of the platform's budget stays for publishing
            except (AuthExpired, PermanentError) as exc:
                self._refused(target, str(exc), result)
                return
            except ConnectorError as exc:
                log.warning("%s: counters not read: %s", ids, exc)
                result.failed += 1
                continue
            except Exception:  # a connector's bug must not end the round for the others
                log.exception("%s: reading counters crashed", ids)
                result.failed += 1
                continue
            counters = {**counters, **self._link_clicks(item, target)}
            if self.store.record_engagement(item.delivery_id, step.label, now, clean(counters)):
                result.stored[(target, step.label)] += 1
                log.info("%s: counters at %s: %s", ids, step.label, clean(counters) or "post gone")

    def _link_clicks(self, item: Published, target: str) -> dict[str, int]:
        """bit.ly's click count of this post's short link on this target, when it has one."""
        short = self.store.short_link(item.post_id, target)
        if not short:
            return {}
        if self._bitly is None:
            from syndicator.shorten import bitly_for

            self._bitly = bitly_for(self.settings)
        if self._bitly is None:
            return {}
        try:
            return {"link_clicks": self._bitly.clicks(short)}
        except ConnectorError as exc:  # the platform's own counters are still worth keeping
            log.warning("target %s: bit.ly clicks of %s not read: %s", target, short, exc)
            return {}

    def _refused(self, target: str, reason: str, result: RoundResult) -> None:
        """Record a refusal once; say it once."""
        result.refused[target] = reason
        if self.store.refuse_metrics(target, reason):
            log.warning(
                "target %s: the platform refuses to give counters; not asked again until the"
                " config reloads or `syndicator resume %s`: %s",
                target,
                target,
                reason,
            )
