"""A Bluesky PDS: sessions (create, refresh), uploadBlob, createRecord and getRecord.

Like today's PDS, a createRecord under a record key already taken answers a plain 500
(bluesky-social/atproto#3718), so only getRecord tells "landed before" from "failed".
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from tests.platform_fakes.base import Created, FakePlatform, Reply, Request, Route, route

HANDLE = "blog.bsky.social"
PASSWORD = "app-pass-7q2x-SECRET"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
XRPC = "/xrpc/"


def xrpc_error(status: int, name: str, message: str) -> Reply:
    return Reply(status, {"error": name, "message": message})


class FakeBluesky(FakePlatform):
    """One account; tokens it issued are valid until revoked or rotated by a refresh."""

    name = "bluesky"
    reset_in = 120  # ratelimit-reset of a 429, from now

    def __init__(self) -> None:
        super().__init__()
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.records: dict[str, Created] = {}
        self.blobs: dict[str, int] = {}
        self.logins = 0

    def build_routes(self) -> list[Route]:
        x = XRPC
        return [
            route("POST", f"{x}com.atproto.server.createSession", self._login, authenticated=False),
            route(
                "POST", f"{x}com.atproto.server.refreshSession", self._refresh, authenticated=False
            ),
            route("POST", f"{x}com.atproto.repo.uploadBlob", self._blob, "media"),
            route("POST", f"{x}com.atproto.repo.createRecord", self._create, "create"),
            route("GET", f"{x}com.atproto.repo.getRecord", self._get),
            route("GET", f"{x}com.atproto.server.getSession", self._whoami),
        ]

    def options(self) -> dict[str, str]:
        return {"handle": HANDLE, "app_password": PASSWORD}

    def authorized(self, request: Request) -> bool:
        return self._bearer(request) in self.access

    def revoke(self) -> None:
        """The app password is revoked: every token dies and logins are refused."""
        super().revoke()
        self.access.clear()
        self.refresh.clear()

    def rate_limited(self) -> Reply:
        headers = {
            "ratelimit-limit": "5000",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(time.time()) + self.reset_in),
            "ratelimit-policy": "5000;w=3600",
        }
        return Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, headers)

    def server_error(self) -> Reply:
        return xrpc_error(500, "InternalServerError", "Internal Server Error")

    def expired(self, request: Request) -> Reply:
        return xrpc_error(400, "ExpiredToken", "Token has expired")

    def media_refused(self) -> Reply:
        return xrpc_error(400, "BlobTooLarge", "This file is too large.")

    def _bearer(self, request: Request) -> str:
        return (request.headers.get("Authorization") or "").removeprefix("Bearer ")

    def _session(self) -> Reply:
        number = self.next_id()
        access, refresh = f"jwt-access-{number}-SECRET", f"jwt-refresh-{number}-SECRET"
        with self.lock:
            self.access.add(access)
            self.refresh.add(refresh)
        body = {"did": DID, "handle": HANDLE, "accessJwt": access, "refreshJwt": refresh}
        return Reply(200, {**body, "active": True})

    def _login(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.json()
        with self.lock:
            self.logins += 1
            if self.revoked or (body["identifier"], body["password"]) != (HANDLE, PASSWORD):
                return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        return self._session()

    def _refresh(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            token = self._bearer(request)
            if token not in self.refresh:
                return xrpc_error(400, "ExpiredToken", "Token has been revoked")
            self.refresh.discard(token)  # refresh tokens rotate
        return self._session()

    def _whoami(self, request: Request, match: re.Match[str]) -> Reply:
        return Reply(200, {"did": DID, "handle": HANDLE, "active": True})

    def _blob(self, request: Request, match: re.Match[str]) -> Reply:
        cid = "bafkrei" + hashlib.sha256(request.body).hexdigest()[:40]
        with self.lock:
            self.blobs[cid] = len(request.body)
        mime = request.headers.get("Content-Type")
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(request.body)}
        return Reply(200, {"blob": blob})

    def _create(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.json()
        rkey, record = body["rkey"], body["record"]
        if body["repo"] != DID:
            return xrpc_error(400, "InvalidRequest", "Could not find repo")
        with self.lock:
            if rkey in self.records:
                return self.server_error()
            embed = record.get("embed") or {}
            media = tuple(i["image"]["ref"]["$link"] for i in embed.get("images", []))
            if any(cid not in self.blobs for cid in media):
                return xrpc_error(400, "InvalidRequest", "Could not find blob")
            uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
            cid = "bafyrei" + hashlib.sha256(uri.encode()).hexdigest()[:40]
            data = {"uri": uri, "cid": cid, "value": record}
            post = Created(uri, record["text"], _links(record), media, data)
            self.records[rkey] = self.keep(post)
        return Reply(200, {"uri": uri, "cid": cid, "validationStatus": "valid"})

    def _get(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            found = self.records.get(request.arg("rkey"))
        if found is None or request.arg("repo") != DID:
            message = (
                f"Could not locate record: at://{DID}/app.bsky.feed.post/{request.arg('rkey')}"
            )
            return xrpc_error(400, "RecordNotFound", message)
        return Reply(200, found.data)


def _links(record: dict[str, Any]) -> tuple[str, ...]:
    """Link facets and the external embed: what makes a link clickable on Bluesky."""
    links = [
        feature["uri"]
        for facet in record.get("facets", [])
        for feature in facet["features"]
        if feature["$type"] == "app.bsky.richtext.facet#link"
    ]
    external = (record.get("embed") or {}).get("external") or {}
    return tuple(links + ([external["uri"]] if external.get("uri") else []))
