"""Facebook Graph API v24.0: link posts on a Page's feed, photos, and their list edges."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tests.platform_fakes.base import Created, FakePlatform, Reply, Request, Route, links_in, route

PAGE = "1000001"
TOKEN = "fb-page-token-SECRET-EAAB7"
VERSION = "v24.0"


def graph_error(code: int, message: str, subcode: int | None = None, **extra: Any) -> Reply:
    """The Graph API's error envelope (HTTP status set by the caller)."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode:
        error["error_subcode"] = subcode
    return Reply(400, {"error": {**error, **extra, "fbtrace_id": "AbCdEfGh123"}})


class FakeFacebook(FakePlatform):
    """A Page: POST {page}/feed, POST {id}/photos; GET {id}/photos, GET {page}/posts."""

    name = "facebook"

    def build_routes(self) -> list[Route]:
        base = f"/{VERSION}"
        return [
            route("POST", rf"{base}/{PAGE}/feed", self._feed, "create"),
            route("POST", rf"{base}/(\d+)/photos", self._photo, "create", "media"),
            route("GET", rf"{base}/(\d+)/photos", self._photos),
            route("GET", rf"{base}/{PAGE}/posts", self._posts),
            route("GET", rf"{base}/me", lambda r, m: Reply(200, {"id": PAGE, "name": "The Blog"})),
        ]

    def options(self) -> dict[str, str]:
        return {"page_id": PAGE, "access_token": TOKEN}

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def rate_limited(self) -> Reply:
        reply = graph_error(4, "(#4) Application request limit reached", is_transient=True)
        usage = {"call_count": 100, "total_cputime": 12, "total_time": 15}
        reply.status, reply.headers = 403, {"X-App-Usage": json.dumps(usage)}
        return reply

    def server_error(self) -> Reply:
        message = "An unexpected error has occurred. Please retry your request later."
        reply = graph_error(2, message, is_transient=True)
        reply.status = 500
        return reply

    def expired(self, request: Request) -> Reply:
        message = (
            "Error validating access token: Session has expired on Tuesday, 12-May-26"
            " 10:00:00 PDT. The current time is Wednesday, 13-May-26 02:00:00 PDT."
        )
        return graph_error(190, message, 463)

    def media_refused(self) -> Reply:
        return graph_error(324, "(#324) Missing or invalid image file", 2069019)

    def _feed(self, request: Request, match: re.Match[str]) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        post_id = f"{PAGE}_{4000 + self.next_id()}"
        link = form.get("link")
        attachments = [{"type": "share", "unshimmed_url": link}] if link else []
        data = self._story(post_id, form.get("message", ""), attachments)
        links = links_in(data["message"], link or "")
        self.keep(Created(post_id, data["message"], links, (), data))
        return Reply(200, {"id": post_id})

    def _photo(self, request: Request, match: re.Match[str]) -> Reply:
        files = request.files()
        if "source" not in files:
            return graph_error(324, "(#324) Requires upload file", 2069019)
        caption = request.form().get("caption", [""])[0]
        number = self.next_id()
        photo_id, post_id = str(3000 + number), f"{PAGE}_{4000 + number}"
        data = {
            "id": photo_id,
            "name": caption,
            "link": f"https://www.facebook.com/photo.php?fbid={photo_id}",
            "page_story_id": post_id,
            "album": match.group(1),
            "story": self._story(post_id, caption, [{"type": "photo"}]),
        }
        self.keep(Created(post_id, caption, links_in(caption), (photo_id,), data))
        return Reply(200, {"id": photo_id, "post_id": post_id})

    def _photos(self, request: Request, match: re.Match[str]) -> Reply:
        album = match.group(1)
        photos = [
            {k: p.data[k] for k in ("id", "name", "link", "page_story_id")}
            for p in self.latest()
            if p.media and p.data["album"] == album
        ]
        return Reply(200, {"data": photos[: int(request.arg("limit", "25"))], "paging": {}})

    def _posts(self, request: Request, match: re.Match[str]) -> Reply:
        stories = [p.data.get("story", p.data) for p in self.latest()]
        return Reply(200, {"data": stories[: int(request.arg("limit", "25"))], "paging": {}})

    def _story(self, post_id: str, message: str, attachments: list[Any]) -> dict[str, Any]:
        return {
            "id": post_id,
            "message": message,
            "permalink_url": f"https://www.facebook.com/{post_id.replace('_', '/posts/')}",
            "created_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
            "attachments": {"data": attachments},
        }
