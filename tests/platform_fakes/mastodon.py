"""Mastodon: statuses (honouring Idempotency-Key), media uploads, the account's timeline."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.platform_fakes.base import (
    URL,
    Created,
    FakePlatform,
    Reply,
    Request,
    Route,
    links_in,
    route,
)

TOKEN = "masto-token-SECRET-5d1f"
ACCOUNT = {"id": "7", "username": "blog", "acct": "blog", "display_name": "The Blog"}
INSTANCE = {"domain": "masto.test", "configuration": {"statuses": {"max_characters": 500}}}


class FakeMastodon(FakePlatform):
    """POST /api/v1/statuses and /api/v2/media; GET verify_credentials and the timeline."""

    name = "mastodon"
    reset_in = 60.0  # X-RateLimit-Reset of a 429, from now

    def __init__(self) -> None:
        super().__init__()
        self.media: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, Created] = {}

    def build_routes(self) -> list[Route]:
        return [
            route("GET", "/api/v1/accounts/verify_credentials", lambda r, m: Reply(200, ACCOUNT)),
            route("GET", r"/api/v1/accounts/7/statuses", self._timeline),
            route("GET", "/api/v2/instance", lambda r, m: Reply(200, INSTANCE)),
            route("POST", "/api/v2/media", self._upload, "media"),
            route("POST", "/api/v1/statuses", self._status, "create"),
        ]

    def options(self) -> dict[str, str]:
        return {"access_token": TOKEN}

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def rate_limited(self) -> Reply:
        reset = datetime.now(UTC) + timedelta(seconds=self.reset_in)
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        return Reply(429, {"error": "Too many requests"}, headers)

    def server_error(self) -> Reply:
        return Reply(500, {"error": "Internal server error"})

    def expired(self, request: Request) -> Reply:
        return Reply(401, {"error": "The access token is invalid"})

    def media_refused(self) -> Reply:
        return Reply(422, {"error": "Validation failed: File content type is invalid"})

    def _upload(self, request: Request, match: re.Match[str]) -> Reply:
        filename, data, mime = request.files()["file"]
        media_id = str(1000 + self.next_id())
        attachment = {
            "id": media_id,
            "type": "image",
            "url": f"https://files.masto.test/{media_id}.png",
            "preview_url": f"https://files.masto.test/{media_id}-small.png",
            "description": request.form().get("description", [None])[0],
            "meta": {"size": len(data), "mime": mime},
            "blurhash": None,
        }
        with self.lock:
            self.media[media_id] = attachment
        return Reply(200, attachment)

    def _status(self, request: Request, match: re.Match[str]) -> Reply:
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self.keys:  # Mastodon answers a repeat with the first status
                return Reply(200, self.keys[key].data)
            form = request.form()
            text = form["status"][0]
            media = tuple(form.get("media_ids[]", []))
            unknown = [m for m in media if m not in self.media]
            if unknown:
                return Reply(422, {"error": f"Validation failed: unknown media {unknown}"})
            number = self.next_id()
            status = {
                "id": str(number),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "url": f"https://masto.test/@blog/{number}",
                "uri": f"https://masto.test/users/blog/statuses/{number}",
                "visibility": form.get("visibility", ["public"])[0],
                "content": _content(text),
                "media_attachments": [self.media[m] for m in media],
                "account": ACCOUNT,
            }
            post = self.keep(Created(str(number), text, links_in(text), media, status))
            if key:
                self.keys[key] = post
        return Reply(200, status)

    def _timeline(self, request: Request, match: re.Match[str]) -> Reply:
        limit = int(request.arg("limit", "20"))
        return Reply(200, [post.data for post in self.latest()[:limit]])


def _content(text: str) -> str:
    """Status HTML as Mastodon renders it: paragraphs, links as <a href>."""
    linked = URL.sub(
        lambda m: f'<a href="{html.escape(m.group(0))}" rel="nofollow">{m.group(0)}</a>',
        html.escape(text, quote=False),
    )
    return "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in linked.split("\n\n"))
