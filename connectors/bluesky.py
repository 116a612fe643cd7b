"""Bluesky: one account, through plain AT Protocol XRPC calls with an app password.

Every post is created under a record key derived from the delivery key and the post's guid,
so a resend can never make a second post: it collides with the first. Logins are scarce
(createSession: 30 per 5 minutes, 300 per day), so the session is kept in the state
directory, shared by every process, and refreshed rather than re-created.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from connectors import _atproto, _http
from connectors._options import Options
from connectors._session_file import SessionFile
from syndicator import render
from syndicator.connector import ConnectorContext, Limits, TextOptions
from syndicator.errors import (
    AuthExpired,
    DuplicateContent,
    MediaError,
    OutcomeUnknown,
    RetryableError,
)
from syndicator.models import AccountInfo, Card, Draft, Image, ImageFile, Post, Receipt

log = logging.getLogger(__name__)

POST = "app.bsky.feed.post"
MAX_BYTES = 3000  # the post lexicon's maxLength, on top of maxGraphemes 300
ALT_MAX = 2000  # the Bluesky app's alt-text limit
EMBEDS = ("images", "card")
APPVIEW = "https://public.api.bsky.app"  # Bluesky's public, unauthenticated AppView
CARD_LIMITS = Limits(300, "graphemes")
_LANGUAGE = re.compile(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*")
_RENEW = frozenset({"ExpiredToken", "InvalidToken"})
_ACCOUNT = frozenset({"AccountTakedown", "AccountDeactivated"})
_MEDIA = frozenset({"BlobTooLarge", "InvalidMimeType", "InvalidImageDimensions"})


@dataclass(frozen=True)
class Session:
    """A login; the tokens stay out of repr so they cannot reach a log line or traceback."""

    did: str
    handle: str
    access: str = field(repr=False)
    refresh: str = field(repr=False)


class Bluesky:
    """A Bluesky account. Options: handle, app_password, api_base, language, embed, appview."""

    name: ClassVar[str] = "bluesky"
    limits: ClassVar[Limits] = Limits(
        300,
        "graphemes",
        max_images=4,
        max_image_bytes=1_000_000,
        max_image_side=2000,
        image_types=("image/jpeg", "image/png", "image/webp"),
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("app_password",)
    can_lookup: ClassVar[bool] = True
    option_keys: ClassVar[frozenset[str]] = frozenset(
        {"api_base", "app_password", "appview", "embed", "handle", "language"}
    )
    metrics: ClassVar[tuple[str, ...]] = ("likes", "shares", "comments", "quotes")

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (ConfigError naming the key); no I/O."""
        self.context = context
        self.options = opts = Options(options, target=context.target, platform=self.name)
        self.api_base = opts.api_base("https://bsky.social")
        self.handle = opts.string("handle", required=True).strip().removeprefix("@")
        self.password = opts.string("app_password", required=True)
        self.language = opts.string("language") or None
        if self.language and not _LANGUAGE.fullmatch(self.language):
            raise opts.invalid("language", "must be a language tag such as 'en' or 'pt-BR'")
        self.embed = opts.choice("embed", EMBEDS)
        # Counters come from an AppView: the public one needs no login; "pds" asks through
        # the account's PDS, which proxies to the AppView it is configured with.
        pds = options.get("appview") == "pds"
        self.appview = "pds" if pds else opts.api_base(APPVIEW, key="appview")
        path = context.state_dir / f"bluesky-{context.target}.json"
        self.sessions = SessionFile(path, owner=f"{self.api_base} {self.handle}")
        self.http = _http.make_session(context.user_agent)
        self._current: Session | None = None

    def prepare(self, post: Post) -> Draft:
        """The text (≤300 graphemes, ≤3000 bytes), the images or the link card; pure."""
        link = render.target_link(post, self.context.text)
        images = post.images[: self.limits.max_images] if self.embed == "images" else ()
        thumbnail = post.images[0] if self.embed == "card" and post.images else None
        card = Card(link, _plain(post, "{title}"), _plain(post, "{summary}"), thumbnail)
        fields: dict[str, Any] = {"guid": post.guid}
        language = self.language or _language(post.language)
        if language:
            fields["langs"] = [language]
        notes = []
        if self.embed == "images" and len(post.images) > len(images):
            notes.append(f"{len(post.images) - len(images)} image(s) over the limit of 4 left out")
        if images:
            notes.append("Bluesky shows one embed: the link card only if the images fail")
        text = self._text(post, link)
        return Draft(text, link, images, card=card, fields=fields, notes=tuple(notes))

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """Upload the images (or the card's thumbnail), then create the post under its rkey.

        Every call here may be resent: blobs are content-addressed and a second createRecord
        with the same rkey cannot make a second post, so a transport failure is retryable.
        A 5xx *answer* to createRecord is OutcomeUnknown, because today's PDS reports a
        collision with our own earlier record as HTTP 500 (bluesky-social/atproto#3718):
        only the lookup by rkey tells "landed before" from "failed". `createdAt` is the time
        of sending, so the post sorts as new even after a delay; it is not part of the key.
        """
        embed = self._embed(draft)
        record: dict[str, Any] = {"$type": POST, "text": draft.text, "createdAt": _now()}
        if facets := _atproto.facets(draft.text):
            record["facets"] = facets
        if draft.fields.get("langs"):
            record["langs"] = list(draft.fields["langs"])
        if embed:
            record["embed"] = embed
        rkey = self._rkey(draft, key)
        body = {"repo": self._session().did, "collection": POST, "rkey": rkey, "record": record}
        response = self._call("POST", "com.atproto.repo.createRecord", json=body)
        self._raise_for(response, write=True)
        uri = str(_http.json_object(response, "uri", OutcomeUnknown)["uri"])
        log.info("target %s: posted %s (key %s)", self.context.target, uri, key)
        return self._receipt(uri)

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """Fetch the record under this delivery's rkey: present means an attempt landed."""
        params = {"repo": self._session().did, "collection": POST, "rkey": self._rkey(draft, key)}
        response = self._call("GET", "com.atproto.repo.getRecord", params=params)
        if response.status_code in (400, 404) and _error(response)[0] == "RecordNotFound":
            return None
        self._raise_for(response)
        receipt = self._receipt(str(_http.json_object(response, "uri")["uri"]))
        log.info("target %s: key %s found as %s", self.context.target, key, receipt.remote_id)
        return receipt

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        """The post's counters from app.bsky.feed.getPosts; {} once the post is deleted."""
        params = {"uris": receipt.remote_id}
        if self.appview == "pds":
            response = self._call("GET", "app.bsky.feed.getPosts", params=params)
            self._raise_for(response)
        else:  # no login spent: createSession is scarce
            url = _http.join(self.appview, "/xrpc/app.bsky.feed.getPosts")
            timeout = self.context.timeout
            response = _http.send(
                self.http, "GET", url, timeout=timeout, idempotent=True, params=params
            )
            if response.status_code >= 400:
                name, text = _error(response)
                _http.raise_for(response, self._redact(f"{name}: {text}"), idempotent=True)
        posts = _http.json_object(response, "posts")["posts"]
        view = next(
            (p for p in posts if isinstance(p, dict) and p.get("uri") == receipt.remote_id), None
        )
        names = {
            "likeCount": "likes",
            "repostCount": "shares",
            "replyCount": "comments",
            "quoteCount": "quotes",
        }
        if view is None:
            return {}
        return {ours: view[theirs] for theirs, ours in names.items() if theirs in view}

    def check(self) -> AccountInfo:
        """Reuse, refresh or create the session, then ask the server whose session it is."""
        response = self._call("GET", "com.atproto.server.getSession")
        self._raise_for(response)
        body = _http.json_object(response, "did")
        handle = str(body.get("handle") or self.handle)
        return AccountInfo(account=handle, details=(str(body["did"]),))

    # -- text and embeds --------------------------------------------------------------------

    def _text(self, post: Post, link: str) -> str:
        """Render within 300 graphemes, then tighten until the UTF-8 form fits 3000 bytes."""
        limits = self.limits
        text = render.render(post, self.context.text, limits, link=link)
        while (size := len(text.encode())) > MAX_BYTES:
            shorter = min(limits.max_chars - 1, render.count(text, limits) * MAX_BYTES // size)
            limits = dataclasses.replace(limits, max_chars=shorter)
            text = render.render(post, self.context.text, limits, link=link)
        return text

    def _embed(self, draft: Draft) -> dict[str, Any] | None:
        """The images when the draft has any (Bluesky allows one embed), else the link card."""
        if draft.images:
            files = [self.context.load_image(image, self.limits) for image in draft.images]
            pairs = zip(files, draft.images, strict=True)
            return {"$type": "app.bsky.embed.images", "images": [self._image(*p) for p in pairs]}
        if draft.card is None:
            return None
        card = draft.card
        external: dict[str, Any] = {
            "uri": card.url,
            "title": card.title,
            "description": card.description,
        }
        if card.image and (thumb := self._thumbnail(card.image)):
            external["thumb"] = thumb
        return {"$type": "app.bsky.embed.external", "external": external}

    def _image(self, file: ImageFile, image: Image) -> dict[str, Any]:
        """One entry of an images embed; `alt` is required, so it may be empty."""
        alt = file.alt or image.alt
        alt = alt[: ALT_MAX - 1] + "…" if len(alt) > ALT_MAX else alt
        ratio = {"width": file.width, "height": file.height}
        return {"image": self._upload(file), "alt": alt, "aspectRatio": ratio}

    def _thumbnail(self, image: Image) -> dict[str, Any] | None:
        """The card's thumbnail blob; a card without one beats failing the post over it."""
        try:
            return self._upload(self.context.load_image(image, self.limits))
        except MediaError as exc:
            log.warning("target %s: link card sent without thumbnail: %s", self.context.target, exc)
            return None

    def _upload(self, file: ImageFile) -> dict[str, Any]:
        """uploadBlob: the raw bytes, typed by Content-Type; the answer's blob goes in the post."""
        kind = {"Content-Type": file.mime}
        response = self._call("POST", "com.atproto.repo.uploadBlob", data=file.data, headers=kind)
        self._raise_for(response)
        return dict(_http.json_object(response, "blob")["blob"])

    def _rkey(self, draft: Draft, key: str) -> str:
        """The post's record key: the guid keeps it unique even if delivery ids restart."""
        return _atproto.record_key(key, str(draft.fields.get("guid", "")))

    def _receipt(self, uri: str) -> Receipt:
        """The at:// URI and the post's address in the Bluesky app."""
        handle = self._current.handle if self._current else self.handle
        return Receipt(uri, f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}")

    # -- session and calls ------------------------------------------------------------------

    def _session(self) -> Session:
        """The current login: from memory, else the state file, else a new createSession."""
        if self._current is None:
            self._current = _parse_session(self.sessions.load())
        if self._current is None:
            with self.sessions.locked():  # another process may be logging in right now
                self._current = _parse_session(self.sessions.load()) or self._login()
        return self._current

    def _renew(self, stale: Session) -> Session:
        """Refresh an expired login under the lock; log in again only if the refresh fails."""
        with self.sessions.locked():
            stored = _parse_session(self.sessions.load())
            if stored is not None and stored.access != stale.access:
                self._current = stored  # another thread or process renewed it meanwhile
                return stored
            response = self._send("POST", "com.atproto.server.refreshSession", stale.refresh)
            if _auth_failed(response):
                self._current = self._login()
            else:
                self._raise_for(response)
                self._current = self._keep(response)
                log.info("target %s: session refreshed", self.context.target)
            return self._current

    def _login(self) -> Session:
        """createSession with the app password; any refusal but 429 needs a human."""
        body = {"identifier": self.handle, "password": self.password}
        response = self._send("POST", "com.atproto.server.createSession", None, json=body)
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise AuthExpired(self._message(response))
        self._raise_for(response)
        session = self._keep(response)
        log.info("target %s: logged in as %s", self.context.target, session.handle)
        return session

    def _keep(self, response: requests.Response) -> Session:
        """The session a createSession/refreshSession answered, saved for every process."""
        body = _http.json_object(response, "accessJwt")
        names = ("did", "handle", "accessJwt", "refreshJwt")
        session = _parse_session({name: body.get(name) for name in names})
        if session is None:
            raise RetryableError(
                f"{_http.where(response)}: session answer without {', '.join(names)}"
            )
        self.sessions.save({name: body[name] for name in names})
        return session

    def _call(self, method: str, nsid: str, **kwargs: Any) -> requests.Response:
        """One authenticated call; an expired token is renewed and the call resent once."""
        session = self._session()
        response = self._send(method, nsid, session.access, **kwargs)
        if _auth_failed(response):
            response = self._send(method, nsid, self._renew(session).access, **kwargs)
        return response

    def _send(self, method: str, nsid: str, token: str | None, **kwargs: Any) -> requests.Response:
        """Send one XRPC request; all of ours are safe to resend (see `publish`)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = _http.join(self.api_base, f"/xrpc/{nsid}")
        timeout = self.context.timeout
        return _http.send(
            self.http, method, url, timeout=timeout, idempotent=True, headers=headers, **kwargs
        )

    def _raise_for(self, response: requests.Response, *, write: bool = False) -> None:
        """Map an XRPC error (`{"error": name, "message": text}`) to an error kind."""
        if response.status_code < 400:
            return
        name, text = _error(response)
        message = self._message(response)
        if name in _MEDIA or response.status_code == 413:
            raise MediaError(message)
        if _auth_failed(response) or name in _ACCOUNT:
            raise AuthExpired(message)
        if write and ("AlreadyExists" in name or "already exists" in text.lower()):
            raise DuplicateContent(message)  # the explicit error proposed in atproto#4728
        _http.raise_for(response, self._redact(f"{name}: {text}"), idempotent=not write)

    def _message(self, response: requests.Response) -> str:
        """`POST /xrpc/nsid: HTTP 400: Name: text`, with any credential blanked out."""
        name, text = _error(response)
        return self._redact(f"{_http.where(response)}: HTTP {response.status_code}: {name}: {text}")

    def _redact(self, text: str) -> str:
        """The message with the password and tokens replaced, in case a server echoes them."""
        secrets = [self.password]
        if self._current:
            secrets += [self._current.access, self._current.refresh]
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text[:500]


def _plain(post: Post, template: str) -> str:
    """The post's title or summary as one plain-text line, for the link card."""
    return render.render(post, TextOptions(template=template, max_hashtags=0), CARD_LIMITS)


def _language(tag: str | None) -> str | None:
    """The feed's language tag when it is a well-formed one ('fr-FR' stays 'fr-FR')."""
    tag = (tag or "").strip().replace("_", "-")
    return tag if _LANGUAGE.fullmatch(tag) else None


def _now() -> str:
    """Now as an AT Protocol datetime: UTC, milliseconds, 'Z'."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_session(data: Mapping[str, Any] | None) -> Session | None:
    """A Session from stored or answered fields; None when any is missing."""
    if not data:
        return None
    values = [data.get(name) for name in ("did", "handle", "accessJwt", "refreshJwt")]
    strings = [value for value in values if isinstance(value, str) and value]
    return Session(*strings) if len(strings) == len(values) else None


def _auth_failed(response: requests.Response) -> bool:
    """401, or the 400 ExpiredToken/InvalidToken XRPC answers for a stale or revoked token."""
    return response.status_code == 401 or (
        response.status_code == 400 and _error(response)[0] in _RENEW
    )


def _error(response: requests.Response) -> tuple[str, str]:
    """The XRPC error name and message of an answer ("" when absent)."""
    body = _http.json_or_empty(response)
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("message") or "")
