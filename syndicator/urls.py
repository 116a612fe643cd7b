"""URL helpers shared by config, logs and the store: what of a URL is safe to show."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit


def redact(url: str) -> str:
    """`url` without userinfo, query or fragment: safe for logs, errors and the database
    (a feed URL may carry a token in its query string)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def secret_parts(url: str) -> list[str]:
    """Query values and the userinfo password of a URL: libraries log them (urllib3 at DEBUG
    prints the request line), so they are redacted like any other secret."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    values = [value for _, value in parse_qsl(parts.query) if len(value) >= 4]
    raw = [pair.partition("=")[2] for pair in parts.query.split("&")]  # as urllib3 logs them
    values += [value for value in raw if len(value) >= 4]
    if parts.password:
        values.append(parts.password)
    return values
