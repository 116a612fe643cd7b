"""Tell people that drafts await approval: one JSON POST per poll to a webhook URL.

The body carries a `text` line (Slack, Mattermost and Rocket.Chat incoming webhooks show it)
and the pending items for anything smarter. A failure is logged and never blocks a poll.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import requests

from syndicator.urls import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingItem:
    """One delivery waiting for `syndicator approve`."""

    delivery_id: int
    target: str
    title: str
    url: str
    text: str


def notify_pending(url: str, items: Sequence[PendingItem], *, user_agent: str) -> bool:
    """POST the new pending items; True when the webhook accepted them."""
    if not items:
        return False
    titles = sorted({item.title or item.url for item in items})
    text = (
        f"{len(items)} draft(s) await approval: {'; '.join(titles)} — "
        "`syndicator pending` shows them, `syndicator approve` releases them."
    )
    body: dict[str, Any] = {"text": text, "pending": [asdict(item) for item in items]}
    try:
        response = requests.post(url, json=body, timeout=10, headers={"User-Agent": user_agent})
        response.raise_for_status()
    except requests.RequestException as exc:
        status = getattr(exc.response, "status_code", None)
        log.warning("approval webhook %s failed: %s", redact(url), status or type(exc).__name__)
        return False
    return True
