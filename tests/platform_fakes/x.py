"""X API v2: POST /2/tweets, the v2 one-shot media upload and metadata, the user timeline."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.platform_fakes.base import Created, FakePlatform, Reply, Request, Route, links_in, route

KEYS = {
    "api_key": "ck-Zx81qLmN4oPq",
    "api_secret": "cs-SECRET-d9F3kLm2Qw8Er5Ty7Ui0Op",
    "access_token": "1072250532645998596-AcCeSsToKeN77",
    "access_token_secret": "ats-SECRET-p0Oi9Uy8Tr7Ew6Qa",
}
USER = {"id": "1072250532645998596", "name": "The Blog", "username": "blog"}


def problem(status: int, title: str, detail: str = "", kind: str = "about:blank") -> dict[str, Any]:
    """X's v2 problem body."""
    return {"title": title, "detail": detail or title, "type": kind, "status": status}


class FakeX(FakePlatform):
    """The routes the X connector (through tweepy) calls; OAuth 1.0a user context."""

    name = "x"
    reset_in = 120  # x-rate-limit-reset of a 429, from now

    def __init__(self) -> None:
        super().__init__()
        self.media: dict[str, dict[str, Any]] = {}

    def build_routes(self) -> list[Route]:
        return [
            route("GET", "/2/users/me", lambda r, m: Reply(200, {"data": USER})),
            route("GET", rf"/2/users/{USER['id']}/tweets", self._timeline),
            route("POST", "/2/media/upload", self._upload, "media"),
            route("POST", "/2/media/metadata", self._metadata),
            route("POST", "/2/tweets", self._tweet, "create"),
        ]

    def options(self) -> dict[str, str]:
        return dict(KEYS)

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization") or ""
        return header.startswith("OAuth ") and f'oauth_token="{KEYS["access_token"]}"' in header

    def rate_limited(self) -> Reply:
        headers = {
            "x-rate-limit-limit": "100",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time()) + self.reset_in),
        }
        return Reply(429, problem(429, "Too Many Requests"), headers)

    def server_error(self) -> Reply:
        return Reply(500, problem(500, "Internal Server Error"))

    def unavailable(self) -> Reply:
        return Reply(503, problem(503, "Service Unavailable"))

    def expired(self, request: Request) -> Reply:
        return Reply(401, problem(401, "Unauthorized"))

    def media_refused(self) -> Reply:
        body = problem(
            400,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
            "https://api.twitter.com/2/problems/invalid-request",
        )
        return Reply(400, {"errors": [{"message": "media type unrecognized."}], **body})

    def _upload(self, request: Request, match: re.Match[str]) -> Reply:
        files, form = request.files(), request.form()
        if form.get("media_category") != ["tweet_image"] or "media" not in files:
            return Reply(400, problem(400, "Invalid Request", "media_category is required"))
        media_id = str(1880028106020515840 + self.next_id())
        data = {
            "id": media_id,
            "media_key": f"3_{media_id}",
            "size": len(files["media"][1]),
            "expires_after_secs": 86400,
            "image": {"image_type": files["media"][2]},
        }
        with self.lock:
            self.media[media_id] = {}
        return Reply(200, {"data": data})

    def _metadata(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.json()
        with self.lock:
            if body["id"] not in self.media:
                return Reply(400, problem(400, "Invalid Request", "unknown media id"))
            self.media[body["id"]] = body["metadata"]
        return Reply(200, {"data": {"id": body["id"], "associated_metadata": True}})

    def _tweet(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.json()
        text = body["text"]
        media = tuple((body.get("media") or {}).get("media_ids") or ())
        with self.lock:
            if any(m not in self.media for m in media):
                return Reply(400, problem(400, "Invalid Request", "media id not found"))
        tweet_id = str(1456012973835788292 + self.next_id())
        urls = [
            {
                "start": text.index(link),
                "end": text.index(link) + len(link),
                "url": f"https://t.co/{tweet_id[-8:]}",
                "expanded_url": link,
                "display_url": link.split("://", 1)[1][:25],
            }
            for link in links_in(text)
        ]
        tweet = {
            "id": tweet_id,
            "text": text,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "edit_history_tweet_ids": [tweet_id],
            "entities": {"urls": urls},
        }
        self.keep(Created(tweet_id, text, links_in(text), media, tweet))
        created = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return Reply(201, {"data": created})

    def _timeline(self, request: Request, match: re.Match[str]) -> Reply:
        limit = int(request.arg("max_results", "10"))
        tweets = [post.data for post in self.latest()[:limit]]
        if not tweets:
            return Reply(200, {"meta": {"result_count": 0}})
        meta = {"result_count": len(tweets), "newest_id": tweets[0]["id"]}
        return Reply(200, {"data": tweets, "meta": {**meta, "oldest_id": tweets[-1]["id"]}})
