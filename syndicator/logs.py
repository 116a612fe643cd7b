"""Logging set-up: journald-friendly lines, and every configured secret redacted.

Redaction is a filter on the root handlers, so it also covers the DEBUG output of
requests, urllib3, tweepy and oauthlib, which print headers and URLs.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable

NOISY = ("oauthlib", "requests_oauthlib", "apscheduler")  # body dumps; 2 lines per job run


class RedactSecrets(logging.Filter):
    """Replaces every known secret in a record's final message with `***`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Longest first, so a secret containing another is redacted whole."""
        known = set(self.secrets) | {s for s in secrets if len(s) >= 4}
        self.secrets = sorted(known, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, self.secrets))) if known else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is None:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        text = record.exc_text or ""
        record.msg, record.args = self.pattern.sub("***", message), None
        record.exc_text = self.pattern.sub("***", text) or None
        record.exc_info = None if text else record.exc_info
        return True


def setup(verbosity: int, secrets: Iterable[str]) -> None:
    """Log to stderr; under systemd (JOURNAL_STREAM set) leave timestamps to journald."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    if verbosity == 0 and os.environ.get("SYNDICATOR_LOG_LEVEL"):
        level = getattr(logging, os.environ["SYNDICATOR_LOG_LEVEL"].upper(), logging.INFO)
    under_journal = "JOURNAL_STREAM" in os.environ
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_journal:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY:  # whole request bodies (5 MB images); a line per scheduled job
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def add_secrets(secrets: Iterable[str]) -> None:
    """Secrets that arrived later (a reload with a rotated token) are redacted too."""
    for handler in logging.getLogger().handlers:
        for log_filter in handler.filters:
            if isinstance(log_filter, RedactSecrets):
                log_filter.add(secrets)
