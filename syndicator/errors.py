"""Error kinds. Connectors raise these; the dispatcher turns each kind into a state change.

Messages must never contain secrets: connectors build them from status codes and the
platform's error text, never from request headers or URLs with tokens.
"""

from __future__ import annotations


class SyndicatorError(Exception):
    """Base of every error syndicator raises on purpose."""


class ConfigError(SyndicatorError):
    """The configuration is invalid; the message names the file and the key."""


class FeedError(SyndicatorError):
    """A feed could not be fetched or parsed at all; the poll is retried later."""


class MediaError(SyndicatorError):
    """An image could not be fetched or made to fit a platform's limits."""


class ConnectorError(SyndicatorError):
    """A publish attempt failed. Subclasses say what the dispatcher should do."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryableError(ConnectorError):
    """Transient failure known NOT to have created a post (e.g. 503 before processing)."""


class RateLimited(RetryableError):
    """The platform asks us to slow down: the whole target pauses until `retry_after`."""


class OutcomeUnknown(ConnectorError):
    """The request may have reached the platform (timeout, reset, 5xx after sending)."""


class PermanentError(ConnectorError):
    """The platform rejected this post; retrying the same payload cannot help."""


class AuthExpired(ConnectorError):
    """Credentials are invalid or expired: the target pauses until someone fixes them."""


class DuplicateContent(ConnectorError):
    """The platform says this exact content was already posted."""
