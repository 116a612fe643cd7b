"""Mastodon: one account on one instance, through the REST API with a bearer token.

Statuses are posted with an `Idempotency-Key` (Mastodon keeps it for an hour), so a resend
after an unknown outcome returns the first status instead of posting twice.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import requests

from connectors import _http
from connectors._options import Options
from syndicator import render
from syndicator.connector import ConnectorContext, Limits
from syndicator.errors import (
    AuthExpired,
    ConnectorError,
    MediaError,
    PermanentError,
    RetryableError,
)
from syndicator.models import AccountInfo, Draft, Image, Post, Receipt

log = logging.getLogger(__name__)

VISIBILITIES = ("public", "unlisted", "private")
ALT_MAX = 1500  # Mastodon's MediaAttachment::MAX_DESCRIPTION_LENGTH
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
}


class Mastodon:
    """A Mastodon account. Options: api_base, access_token, visibility, language,
    max_characters, sensitive, spoiler_text."""

    name: ClassVar[str] = "mastodon"
    limits: ClassVar[Limits] = Limits(
        500,
        "chars",
        url_length=23,
        max_images=4,
        max_image_bytes=16_000_000,
        image_types=("image/jpeg", "image/png", "image/webp", "image/gif"),
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("access_token",)
    can_lookup: ClassVar[bool] = True
    option_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "access_token",
            "api_base",
            "language",
            "max_characters",
            "sensitive",
            "spoiler_text",
            "visibility",
        }
    )
    metrics: ClassVar[tuple[str, ...]] = ("likes", "shares", "comments", "quotes")
    # Waits between polls of an upload still processing; their sum is also capped by the timeout.
    poll_delays: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (ConfigError naming the key); no I/O."""
        self.context = context
        self.options = opts = Options(options, target=context.target, platform=self.name)
        self.api_base = opts.api_base("https://mastodon.social", required=True)
        self.token = opts.string("access_token", required=True)
        self.visibility = opts.choice("visibility", VISIBILITIES)
        self.language = opts.string("language") or None
        if self.language and not _LANGUAGE.fullmatch(self.language):
            raise opts.invalid("language", "must be an ISO 639 code such as 'en' or 'pt-BR'")
        self.max_characters = options.get("max_characters", self.limits.max_chars)
        if type(self.max_characters) is not int or self.max_characters < 1:
            raise opts.invalid("max_characters", "must be a positive integer")
        self.sensitive = options.get("sensitive", False)
        if not isinstance(self.sensitive, bool):
            raise opts.invalid("sensitive", "must be true or false")
        self.spoiler_text = opts.string("spoiler_text")
        # Mastodon counts the content warning in the same budget as the text.
        budget = self.max_characters - len(self.spoiler_text)
        if budget < 1:
            raise opts.invalid("spoiler_text", "leaves no room for the text")
        self.text_limits = dataclasses.replace(self.limits, max_chars=budget)
        self.session = _http.make_session(context.user_agent)
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def prepare(self, post: Post) -> Draft:
        """The status text, up to four images and the status fields; pure."""
        images = post.images[: self.limits.max_images]
        fields: dict[str, Any] = {
            "visibility": self.visibility,
            "language": self.language or _primary_language(post.language),
        }
        if self.sensitive:
            fields["sensitive"] = True
        if self.spoiler_text:
            fields["spoiler_text"] = self.spoiler_text
        dropped = len(post.images) - len(images)
        notes = (f"{dropped} image(s) over the limit of {len(images)} left out",) if dropped else ()
        return Draft(
            text=render.render(post, self.context.text, self.text_limits),
            link=post.url,
            images=images,
            fields=fields,
            notes=notes,
        )

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """Upload the images, then post the status once, de-duplicated by `key`."""
        media_ids = [self._upload(image) for image in draft.images]
        data = [("status", draft.text), ("visibility", draft.fields.get("visibility", "public"))]
        data += [("media_ids[]", media_id) for media_id in media_ids]
        for name in ("language", "spoiler_text"):
            if draft.fields.get(name):
                data.append((name, draft.fields[name]))
        if draft.fields.get("sensitive"):
            data.append(("sensitive", "true"))
        # Not treated as idempotent: Mastodon keeps keys for one hour only, so a failure after
        # sending becomes OutcomeUnknown and the core looks the post up before resending.
        response = self._call(
            "POST",
            "/api/v1/statuses",
            data=data,
            headers={"Idempotency-Key": key},
            idempotent=False,
        )
        status = _http.json_object(response, "id")
        log.info("target %s: posted status %s (key %s)", self.context.target, status["id"], key)
        return Receipt(remote_id=str(status["id"]), url=status.get("url"))

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """Find the draft's link among the account's 40 latest statuses."""
        if not draft.link:
            return None
        account = _http.json_object(self._call("GET", "/api/v1/accounts/verify_credentials"), "id")
        path = f"/api/v1/accounts/{quote(str(account['id']), safe='')}/statuses"
        params = {"limit": 40, "exclude_reblogs": "true"}
        statuses = _http.json_or_empty(self._call("GET", path, params=params))
        wanted = _without_utm(draft.link)
        for status in statuses if isinstance(statuses, list) else []:
            hrefs = _hrefs(status.get("content") or "")
            if wanted in {_without_utm(href) for href in hrefs}:
                log.info("target %s: key %s found as %s", self.context.target, key, status["id"])
                return Receipt(remote_id=str(status["id"]), url=status.get("url"))
        return None

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        """The status's public counters (GET /api/v1/statuses/:id); {} once it is deleted.

        A token without a read scope gets 403; a public status is then read anonymously,
        unless the instance closes its API to anonymous readers (a refusal, then).
        """
        path = f"/api/v1/statuses/{quote(receipt.remote_id, safe='')}"
        response = self._call("GET", path, passed=(403, 404))
        if response.status_code == 403:
            response = self._call("GET", path, passed=(404,), headers={"Authorization": None})
        if response.status_code == 404:
            return {}
        status = _http.json_object(response, "id")
        names = {
            "favourites_count": "likes",
            "reblogs_count": "shares",
            "replies_count": "comments",
            "quotes_count": "quotes",  # Mastodon 4.5 and later
        }
        return {ours: status[theirs] for theirs, ours in names.items() if theirs in status}

    def check(self) -> AccountInfo:
        """The account behind the token, and the instance's character limit."""
        account = _http.json_object(
            self._call("GET", "/api/v1/accounts/verify_credentials"), "acct"
        )
        domain = urlsplit(self.api_base).netloc
        details = []
        try:
            instance = _http.json_object(self._call("GET", "/api/v2/instance"), "domain")
        except ConnectorError as exc:
            details.append(f"instance configuration unavailable: {exc}")
        else:
            domain = instance["domain"]
            statuses = (instance.get("configuration") or {}).get("statuses") or {}
            limit = statuses.get("max_characters")
            details.append(f"instance max_characters: {limit}; using {self.max_characters}")
            if isinstance(limit, int) and limit < self.max_characters:
                details.append("max_characters is above the instance's limit: posts may fail")
        acct = account["acct"] if "@" in account["acct"] else f"{account['acct']}@{domain}"
        return AccountInfo(account=f"@{acct}", details=tuple(details))

    def _upload(self, image: Image) -> str:
        """Upload one image (alt text as description); wait briefly if still processing."""
        file = self.context.load_image(image, self.limits)
        alt = file.alt or image.alt
        data = {"description": alt[: ALT_MAX - 1] + "…" if len(alt) > ALT_MAX else alt}
        files = {"file": ("image" + _EXTENSIONS.get(file.mime, ""), file.data, file.mime)}
        # An upload that may have landed is only an orphan attachment, never a duplicate post.
        try:
            response = self._call("POST", "/api/v2/media", data=data if alt else None, files=files)
        except PermanentError as exc:  # the instance refused this file (422, 413): post text
            raise MediaError(str(exc)) from None
        media_id = str(_http.json_object(response, "id")["id"])
        if response.status_code == 202:
            self._wait_processed(media_id)
        return media_id

    def _wait_processed(self, media_id: str) -> None:
        """Poll until the server has processed an upload; RetryableError past the timeout."""
        deadline = time.monotonic() + self.context.timeout
        for delay in self.poll_delays:
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            path = f"/api/v1/media/{quote(media_id, safe='')}"
            if self._call("GET", path).status_code == 200:
                return
        raise RetryableError(f"media {media_id}: still processing, try again later")

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        passed: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """One request, errors mapped to the core's kinds and the token kept out of them;
        a status in `passed` is returned for the caller to handle."""
        url = _http.join(self.api_base, path)
        timeout = self.context.timeout
        response = _http.send(
            self.session, method, url, timeout=timeout, idempotent=idempotent, **kwargs
        )
        if response.status_code < 400 or response.status_code in passed:
            return response
        body = _http.json_or_empty(response)
        message = str(body.get("error", "")) if isinstance(body, dict) else ""
        message = message.replace(self.token, "[redacted]")[:300]
        if response.status_code == 403:  # missing scope, suspended or unapproved account
            raise AuthExpired(f"{_http.describe(method, url)}: HTTP 403: {message}")
        _http.raise_for(response, message, idempotent=idempotent)
        return response


def _primary_language(tag: str | None) -> str | None:
    """'fr-FR' (a feed's language) -> 'fr', which every Mastodon version accepts."""
    primary = re.split(r"[-_]", tag.strip())[0].lower() if tag else ""
    return primary if _LANGUAGE.fullmatch(primary) else None


def _without_utm(url: str) -> str:
    """The URL without utm_* parameters, to match a posted link against the post's URL."""
    parts = urlsplit(url)
    query = [p for p in parts.query.split("&") if p and not unquote_plus(p).startswith("utm_")]
    return urlunsplit(parts._replace(query="&".join(query)))


def _hrefs(content: str) -> list[str]:
    """Link targets in a status's HTML content (entities already decoded)."""
    collector = _HrefCollector()
    collector.feed(content)
    return collector.hrefs


class _HrefCollector(HTMLParser):
    """Collects `<a href>` values."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]
