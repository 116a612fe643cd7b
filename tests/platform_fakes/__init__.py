"""Stateful in-process fakes of the five platforms, with a fault script (see `base`).

Each keeps the posts it created, so a lookup finds them and a test can count them, and
answers every fault in that platform's own shape: its rate-limit headers, its expired-token
body, its refusal of an image.
"""

from __future__ import annotations

from tests.platform_fakes.base import FAULTS, Created, FakePlatform
from tests.platform_fakes.bluesky import FakeBluesky
from tests.platform_fakes.facebook import FakeFacebook
from tests.platform_fakes.linkedin import FakeLinkedIn
from tests.platform_fakes.mastodon import FakeMastodon
from tests.platform_fakes.x import FakeX

FAKES: dict[str, type[FakePlatform]] = {
    fake.name: fake for fake in (FakeMastodon, FakeX, FakeFacebook, FakeLinkedIn, FakeBluesky)
}

__all__ = ["FAKES", "FAULTS", "Created", "FakePlatform"]
