"""Reading one TOML table: typed values, durations, counts, URLs and secrets, with errors
that name the file and the key. Bounded file reads for the config and credential files."""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from syndicator.errors import ConfigError
from syndicator.urls import secret_parts

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class Reader:
    """Typed access to one TOML table, with errors that name the file and the key."""

    def __init__(self, path: Path, where: str, table: dict[str, Any], secrets: set[str]) -> None:
        self.path, self.where, self.table, self.secrets = path, where, table, secrets

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{self.where}] {key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.table.get(key, default)
        if value is None or isinstance(value, kind) and not _is_bool_for_number(value, kind):
            return value
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise self.fail(key, f"expected {names}, got {type(value).__name__} {value!r}")

    def reject_unknown(self, known: set[str]) -> None:
        unknown = sorted(set(self.table) - known)
        if unknown:
            raise self.fail(unknown[0], "unknown key")

    def duration(self, key: str, default: float | None, *, minimum: float = 0.0) -> float | None:
        """Seconds, from a number or "15m" / "2h" / "7d"; finite and at least `minimum`."""
        value = self.get(key, (int, float, str), default)
        if value is None:
            return None
        if isinstance(value, str):
            match = DURATION.match(value)
            if not match:
                raise self.fail(
                    key, f"expected seconds or a duration like '15m', '2h', '7d', got {value!r}"
                )
            value = float(match.group(1)) * UNITS[match.group(2)]
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < minimum:
            raise self.fail(key, f"must be at least {minimum:g} seconds, got {value!r}")
        return seconds

    def count(self, key: str, default: int, *, minimum: int = 0) -> int:
        """A whole number of at least `minimum`."""
        value = self.optional_count(key, minimum=minimum)
        return default if value is None else value

    def optional_count(self, key: str, *, minimum: int = 0) -> int | None:
        """A whole number of at least `minimum`, or None when absent (no limit)."""
        value = self.get(key, int)
        if value is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def url(self, key: str) -> str | None:
        """An http(s) URL, `${ENV}` expanded; its query values become secrets."""
        value = self.get(key, str)
        if value is None:
            return None
        value = expand(value, lambda var: self.fail(key, f"environment variable {var} is not set"))
        if not value.startswith(("http://", "https://")):
            raise self.fail(key, "an http:// or https:// URL is required")
        self.secrets.update(secret_parts(value))
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def names(self, key: str) -> frozenset[str]:
        values = self.get(key, list, [])
        if not all(isinstance(v, str) for v in values):
            raise self.fail(key, "expected a list of strings")
        return frozenset(v.casefold() for v in values)

    def secret(self, key: str) -> str | None:
        """A string value with `${ENV}` expanded, or the content of `<key>_file`."""
        file_key = f"{key}_file"
        if file_key in self.table:
            name = self.get(file_key, str)
            base = Path(os.environ.get("CREDENTIALS_DIRECTORY", self.path.parent))
            try:
                value = read_small_file(base / name).strip()
            except OSError as exc:
                raise self.fail(file_key, f"cannot read {base / name}: {exc.strerror}") from None
            except (UnicodeDecodeError, ValueError):  # not text; a NUL in the file name
                raise self.fail(file_key, f"{base / name} is not a readable text file") from None
        else:
            raw = self.table.get(key)
            if raw is None:
                return None
            if not isinstance(raw, str):  # never echo the value: it is a secret
                raise self.fail(key, f"expected str, got {type(raw).__name__}")
            value = expand(
                raw, lambda var: self.fail(key, f"environment variable {var} is not set")
            )
        if value:
            self.secrets.add(value)
        return value


MAX_FILE_BYTES = 10_000_000


def read_small_file(path: Path) -> str:
    """A regular file's text, at most MAX_FILE_BYTES: a FIFO or /dev/zero must not hang or
    exhaust a `check` or a reload. Raises OSError or UnicodeDecodeError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not block
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8")


def _is_bool_for_number(value: Any, kind: type | tuple[type, ...]) -> bool:
    """TOML `true` is an int to Python; never accept it where a number is expected."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, bool) and bool not in kinds


def expand(raw: str, missing: Any) -> str:
    def sub(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in os.environ:
            raise missing(var)
        return os.environ[var]

    return ENV_PATTERN.sub(sub, raw)
