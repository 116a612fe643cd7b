"""The only code that talks to the database: posts, deliveries, the publish log, feed state.

Every state change of a delivery is one method, guarded by the state it expects (and the
lease it holds), committed before the caller takes its next step.
"""

from syndicator.store.actions import ActionsMixin
from syndicator.store.base import SCHEMA_REVISION
from syndicator.store.claims import ClaimsMixin
from syndicator.store.engagement import EngagementMixin, Published, Reading
from syndicator.store.feeds import FeedsMixin
from syndicator.store.outcomes import OutcomesMixin
from syndicator.store.posts import PostsMixin
from syndicator.store.records import (
    _DELIVERY_COLUMNS,
    Delivery,
    FeedState,
    Pacing,
    TargetState,
    _delivery,
)


class Store(FeedsMixin, PostsMixin, ClaimsMixin, OutcomesMixin, ActionsMixin, EngagementMixin):
    """Database access for one process; safe to share between its threads."""


__all__ = [
    "SCHEMA_REVISION",
    "_DELIVERY_COLUMNS",
    "Delivery",
    "FeedState",
    "Pacing",
    "Published",
    "Reading",
    "Store",
    "TargetState",
    "_delivery",
]
