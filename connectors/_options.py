"""Reading a target's connector options: the checks every connector makes the same way.

Each failure is a ConfigError naming the target, the platform and the key, so a user can
find the line in the config file. Platform-specific checks stay in the connector and build
their errors with `Options.invalid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from syndicator.errors import ConfigError

LOOPBACK = ("localhost", "127.0.0.1", "::1")
"""Hosts an `api_base` may reach over plain http: the local fake servers of the tests."""


class Options:
    """One target's options table, read and validated on behalf of one connector."""

    def __init__(self, options: Mapping[str, Any], *, target: str, platform: str) -> None:
        self._options = options
        self.target = target
        self.platform = platform

    def __repr__(self) -> str:  # the options hold secrets: never show them
        return f"Options(target={self.target!r}, platform={self.platform!r})"

    def invalid(self, key: str, problem: str) -> ConfigError:
        """ConfigError naming the target and the key: "target 'x' (mastodon): key problem"."""
        return ConfigError(f"target {self.target!r} ({self.platform}): {key} {problem}")

    def string(self, key: str, *, required: bool = False) -> str:
        """A string option, unstripped; "" when absent and not required."""
        value = self._options.get(key)
        if value is None and not required:
            return ""
        if value is None:
            raise self.invalid(key, "is required")
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.invalid(key, "must be a non-empty string")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        """One of `choices`; the first when the option is absent or empty."""
        value = self.string(key) or choices[0]
        if value not in choices:
            raise self.invalid(key, f"must be one of {', '.join(choices)}")
        return value

    def api_base(self, default: str, *, required: bool = False, key: str = "api_base") -> str:
        """`api_base` (or another URL option, `key`): an https:// URL without query or
        fragment, trailing slash stripped.

        Plain http is accepted only for loopback hosts (test servers). `default` is the
        value when the option is absent and the example in errors; if `required`, only that.
        """
        value = self._options.get(key, None if required else default)
        if required and (not isinstance(value, str) or not value.strip()):
            raise self.invalid(key, f"is required (e.g. {default})")
        parts = urlsplit(value.strip() if isinstance(value, str) else "")
        secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
        if not secure or not parts.hostname or parts.query or parts.fragment:
            raise self.invalid(key, f"must be an https:// URL such as {default}")
        return urlunsplit(parts).rstrip("/")
