"""What every stateful platform fake shares: a threaded HTTP server on 127.0.0.1, the posts
it created, and a fault script applied to the next matching requests.

A platform subclass declares its routes (which of them create a post, which take media) and
its own answers for each fault: rate limit, server errors, expired credentials, refused media.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

FAULTS = (
    "429",  # the platform's rate-limit answer, with its reset header
    "500_before",  # 500, nothing created
    "503",  # 503 from the edge, nothing created
    "500_after",  # the post is created, then 500
    "timeout_after",  # the post is created, then no answer until past the client's timeout
    "reset_before",  # the socket is reset before the body is read: nothing created
    "reset_after",  # the post is created, then the socket is reset without an answer
    "expired_token",  # every authenticated call is refused until `clear()` (token renewed)
    "media_rejected",  # the media upload refuses the image with the platform's error
)
URL = re.compile(r"https?://[^\s<>\"\\]+")


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        """An urlencoded body, or the text fields of a multipart one."""
        if self.headers.get_content_type() == "multipart/form-data":
            parts = self.files().items()
            return {k: [v.decode()] for k, (filename, v, _) in parts if filename is None}
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def files(self) -> dict[str, tuple[str | None, bytes, str]]:
        """multipart/form-data parts: name → (filename, bytes, content type)."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        parts: dict[str, tuple[str | None, bytes, str]] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            parts[name] = (part.get_filename(), bytes(payload or b""), part.get_content_type())
        return parts


@dataclass
class Reply:
    """An answer: a JSON body (dict or list), raw text, or nothing."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def data(self) -> bytes:
        if self.body is None:
            return b""
        return (self.body if isinstance(self.body, str) else json.dumps(self.body)).encode()


EDGE_503 = Reply(
    503, "<html><body><h1>503 Service Unavailable</h1></body></html>", content_type="text/html"
)


@dataclass
class Created:
    """One post the fake made: `remote_id` is what the connector should record for it."""

    remote_id: str
    text: str
    links: tuple[str, ...]
    media: tuple[str, ...]
    data: dict[str, Any]  # the platform's own object, as its lookups return it


@dataclass(frozen=True)
class Route:
    """`method path` answered by `handler`; `kinds` says which faults it can receive."""

    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Request, re.Match[str]], Reply]
    kinds: frozenset[str] = frozenset()  # "create" and/or "media"
    authenticated: bool = True


def route(
    method: str,
    pattern: str,
    handler: Callable[[Request, re.Match[str]], Reply],
    *kinds: str,
    authenticated: bool = True,
) -> Route:
    return Route(method, re.compile(pattern), handler, frozenset(kinds), authenticated)


class FakePlatform:
    """A platform on 127.0.0.1 that keeps what it created; thread-safe."""

    name: ClassVar[str]
    hang: float = 1.5  # a "timeout_after" answer comes this late: past the client's timeout

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.posts: list[Created] = []
        self.faults: list[str] = []
        self.revoked = False
        self.seen: list[tuple[str, str]] = []
        self.requests: list[Request] = []  # every request whole, for tests that read bodies
        self.injected: list[tuple[str, str]] = []  # (fault, path) as applied
        self.crashes: list[str] = []  # bugs in the fake itself: a test must not pass over them
        self.ids = itertools.count(1)
        self.routes = self.build_routes()
        self.server: ThreadingHTTPServer | None = None

    # -- what a test uses ---------------------------------------------------------------

    def start(self) -> FakePlatform:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fake = self
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, *faults: str) -> None:
        """Apply these faults, in order, to the next matching requests.

        `media_rejected` matches the media upload, the others the request that creates the
        post; `expired_token` holds (credentials revoked) until `clear()`.
        """
        with self.lock:
            for fault in faults:
                if fault not in FAULTS:
                    raise ValueError(f"unknown fault {fault!r}")
                if fault == "expired_token":
                    self.revoke()
                else:
                    self.faults.append(fault)

    def clear(self) -> None:
        """The fault is over: drop what is left of the script, accept credentials again."""
        with self.lock:
            self.faults.clear()
            self.revoked = False

    def posts_for(self, link: str) -> list[Created]:
        with self.lock:
            return [post for post in self.posts if link in post.links]

    # -- what a platform provides -------------------------------------------------------

    def build_routes(self) -> list[Route]:
        raise NotImplementedError

    def options(self) -> dict[str, str]:
        """The target's connector options (besides api_base) for the config file."""
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def revoke(self) -> None:
        self.revoked = True

    def rate_limited(self) -> Reply:
        raise NotImplementedError

    def server_error(self) -> Reply:
        raise NotImplementedError

    def unavailable(self) -> Reply:
        return EDGE_503

    def expired(self, request: Request) -> Reply:
        raise NotImplementedError

    def media_refused(self) -> Reply:
        raise NotImplementedError

    def next_id(self) -> int:
        with self.lock:
            return next(self.ids)

    def keep(self, post: Created) -> Created:
        with self.lock:
            self.posts.append(post)
        return post

    def latest(self) -> list[Created]:
        with self.lock:
            return list(reversed(self.posts))

    # -- the request cycle --------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        found = self._route(handler.command, parts.path)
        fault = self._take_fault(found[0]) if found else None
        if fault == "reset_before":
            return _reset(handler)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(handler.command, parts.path, parse_qs(parts.query), handler.headers, body)
        with self.lock:
            self.seen.append((request.method, request.path))
            self.requests.append(request)
        if found is None:
            return _send(handler, Reply(404, {"error": f"no route {request.path}"}))
        target, match = found
        if target.authenticated and (self.revoked or not self.authorized(request)):
            return _send(handler, self.expired(request))
        early = {
            "429": self.rate_limited,
            "500_before": self.server_error,
            "503": self.unavailable,
            "media_rejected": self.media_refused,
        }
        if fault in early:
            return _send(handler, early[fault]())
        try:
            reply = target.handler(request, match)
        except Exception as exc:  # a bug in the fake: recorded, and the test fails on it
            self.crashes.append(f"{request.method} {request.path}: {exc!r}")
            reply = Reply(500, {"error": f"fake crashed: {exc!r}"})
        if fault == "500_after":
            reply = self.server_error()
        elif fault == "timeout_after":
            time.sleep(self.hang)
        elif fault == "reset_after":
            return _reset(handler)
        _send(handler, reply)

    def _route(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        for candidate in self.routes:
            if candidate.method == method and (match := candidate.pattern.fullmatch(path)):
                return candidate, match
        return None

    def _take_fault(self, target: Route) -> str | None:
        with self.lock:
            for index, fault in enumerate(self.faults):
                wanted = "media" if fault == "media_rejected" else "create"
                if wanted in target.kinds:
                    del self.faults[index]
                    self.injected.append((fault, target.pattern.pattern))
                    return fault
        return None


def links_in(*texts: str) -> tuple[str, ...]:
    """The URLs in some text, without trailing sentence punctuation."""
    return tuple(url.rstrip(".,;:!?)") for text in texts for url in URL.findall(text))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakePlatform

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # writes to a client that gave up (timeout_after) or a socket we reset


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.server.fake.handle(self)

    do_POST = do_PUT = do_DELETE = do_GET


def _send(handler: _Handler, reply: Reply) -> None:
    data = reply.data()
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _reset(handler: _Handler) -> None:
    """Close with an RST (linger 0), without answering: what a crashed proxy looks like."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()
