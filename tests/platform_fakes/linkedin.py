"""LinkedIn versioned REST API: POST /rest/posts, the Images API, the author finder."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.platform_fakes.base import Created, FakePlatform, Reply, Request, Route, links_in, route

TOKEN = "AQX-li-token-SECRET-9f8e7d6c"
AUTHOR = "urn:li:organization:2414183"


def li_error(status: int, message: str, **extra: Any) -> Reply:
    """LinkedIn's error envelope."""
    return Reply(status, {"message": message, "status": status, **extra})


class FakeLinkedIn(FakePlatform):
    """Posts as an organization; image thumbnails through initializeUpload and a PUT."""

    name = "linkedin"

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, bool] = {}  # URN → bytes received

    def build_routes(self) -> list[Route]:
        return [
            route("POST", "/rest/posts", self._post, "create"),
            route("GET", "/rest/posts", self._finder),
            route("POST", "/rest/images", self._initialize),
            route("PUT", r"/dms-uploads/(\w+)", self._put, "media"),
            route("GET", f"/rest/organizations/{AUTHOR.rsplit(':', 1)[1]}", self._organization),
        ]

    def options(self) -> dict[str, str]:
        return {"access_token": TOKEN, "author": AUTHOR}

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def rate_limited(self) -> Reply:
        message = "Resource level throttle APPLICATION DAY limit for calls to this resource is"
        return li_error(429, f"{message} reached.", serviceErrorCode=101)

    def server_error(self) -> Reply:
        return li_error(500, "Internal Server Error")

    def expired(self, request: Request) -> Reply:
        message = "The token used in the request has expired"
        return li_error(401, message, serviceErrorCode=65601, code="EXPIRED_ACCESS_TOKEN")

    def media_refused(self) -> Reply:
        # LinkedIn documents no body for a refused upload; its usual envelope stands in.
        return li_error(400, "Unable to process the uploaded image")

    def _versioned(self, request: Request) -> Reply | None:
        if not re.fullmatch(r"20\d{4}", request.headers.get("LinkedIn-Version") or ""):
            return li_error(400, "A version must be present. Please specify a version")
        return None

    def _post(self, request: Request, match: re.Match[str]) -> Reply:
        if refused := self._versioned(request):
            return refused
        body = request.json()
        if body.get("author") != AUTHOR:
            return li_error(403, "Not enough permissions to post as this author")
        article = (body.get("content") or {}).get("article") or {}
        thumbnail = article.get("thumbnail")
        with self.lock:
            if thumbnail and not self.images.get(thumbnail):
                return li_error(400, f"Image {thumbnail} was not uploaded")
        urn = f"urn:li:share:{7141138937766391808 + self.next_id()}"
        now = int(time.time() * 1000)
        data = {**body, "id": urn, "createdAt": now, "lastModifiedAt": now}
        links = links_in(body.get("commentary") or "", article.get("source") or "")
        media = (thumbnail,) if thumbnail else ()
        self.keep(Created(urn, body.get("commentary") or "", links, media, data))
        return Reply(201, None, {"x-restli-id": urn})

    def _organization(self, request: Request, match: re.Match[str]) -> Reply:
        organization = {"id": int(AUTHOR.rsplit(":", 1)[1]), "localizedName": "The Blog"}
        return self._versioned(request) or Reply(200, organization)

    def _finder(self, request: Request, match: re.Match[str]) -> Reply:
        if request.arg("q") != "author" or request.arg("author") != AUTHOR:
            return li_error(400, "Invalid finder parameters")
        count = int(request.arg("count", "10"))
        elements = [post.data for post in self.latest()[:count]]
        paging = {"start": 0, "count": count, "links": []}
        return Reply(200, {"paging": paging, "elements": elements})

    def _initialize(self, request: Request, match: re.Match[str]) -> Reply:
        if request.arg("action") != "initializeUpload":
            return li_error(400, "Unknown action")
        number = self.next_id()
        urn = f"urn:li:image:C4E10AQ{number}"
        with self.lock:
            self.images[urn] = False
        upload = f"{self.base_url}/dms-uploads/u{number}"
        value = {"uploadUrlExpiresAt": int(time.time() * 1000) + 3600_000, "uploadUrl": upload}
        return Reply(200, {"value": {**value, "image": urn}})

    def _put(self, request: Request, match: re.Match[str]) -> Reply:
        urn = f"urn:li:image:C4E10AQ{match.group(1).removeprefix('u')}"
        with self.lock:
            if urn not in self.images or not request.body:
                return li_error(400, "Unknown upload")
            self.images[urn] = True
        return Reply(201, None)
