"""_http.retry_after: every way platforms say when to come back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from requests.structures import CaseInsensitiveDict

from connectors._http import retry_after

NOW = datetime(2026, 8, 1, 14, 58, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"Retry-After": "Sat, 01 Aug 2026 14:59:00 GMT"}, 60.0),
        ({"X-RateLimit-Reset": str(NOW + 90)}, 90.0),  # epoch (X)
        ({"RateLimit-Reset": "12"}, 12.0),  # delta (IETF draft)
        ({"X-RateLimit-Reset": "2026-08-01T15:00:00.000000Z"}, 120.0),  # ISO-8601 (Mastodon)
        ({"X-RateLimit-Reset": "2026-08-01T16:00:00+01:00"}, 120.0),
        ({"X-RateLimit-Reset": "2026-08-01T15:00:00"}, 120.0),  # no zone: taken as UTC
        ({"X-RateLimit-Reset": "2026-08-01T14:00:00Z"}, 0.0),  # already past
        ({"X-RateLimit-Reset": "soon"}, None),
        ({"X-RateLimit-Reset": "²"}, None),  # a Unicode digit float() rejects
        ({"Retry-After": "³"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(CaseInsensitiveDict(headers), now=NOW) == seconds
