"""A login session kept in the state directory, shared by every process of one installation.

Platforms that rate-limit logins (Bluesky: 30 per 5 minutes) need the session to survive
restarts and to be renewed by one process at a time: the file is written atomically with
mode 0600 and renewals happen under an exclusive `flock` on a sibling lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SessionFile:
    """One JSON object in `path`, valid only for the `owner` (account and server) it names."""

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner

    def load(self) -> dict[str, Any] | None:
        """The stored session, or None when absent, unreadable or another account's."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("session file %s unreadable, logging in again: %s", self.path, exc)
            return None
        if not isinstance(data, dict) or data.get("owner") != self.owner:
            return None
        return data

    def save(self, session: dict[str, Any]) -> None:
        """Replace the file atomically: readers see the old or the new session, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp creates it 0600
                json.dump({**session, "owner": self.owner}, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock (threads and processes alike) for a login or refresh."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
