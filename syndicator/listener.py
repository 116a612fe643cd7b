"""A small HTTP listener: WordPress update pings, a secret-guarded webhook, health, metrics.

Stdlib `http.server` in a background thread, bound to 127.0.0.1 unless configured otherwise.
It only *asks* for polls through the injected `on_poll`; it never fetches, publishes or reads
the store, so a flood of requests costs at most one debounced poll per feed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from syndicator import pings
from syndicator.config import FeedSettings
from syndicator.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
DRAIN_LIMIT = 1024 * 1024  # read (and drop) this much of a refused body so the 413 arrives
BODY_DEADLINE = 10.0  # seconds for a whole body, not per read: a trickle is no way in
MAX_CLIENTS = 32
SOCKET_TIMEOUT = 10.0  # seconds per socket read/write: a silent or slow client is dropped
SECRET_HEADER = "X-Syndicator-Secret"
THANKS = {"flerror": False, "message": "Thanks for the ping."}
ROUTES = {  # path → (HTTP method, Listener method, ping source counted when refused early)
    "/": ("POST", "wordpress_ping", "xmlrpc"),
    "/xmlrpc": ("POST", "wordpress_ping", "xmlrpc"),
    "/RPC2": ("POST", "wordpress_ping", "xmlrpc"),
    "/webhook": ("POST", "webhook", "webhook"),
    "/healthz": ("GET", "healthz", None),
    "/metrics": ("GET", "scrape", None),
}


@dataclass(frozen=True)
class Request:
    """What a route sees: the client, the headers it may need, and the (capped) body."""

    client: str
    content_type: str
    secret: str | None
    body: bytes


@dataclass(frozen=True)
class Response:
    """What a route answers; the handler adds Content-Length and writes it."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


def _text(status: int, message: str) -> Response:
    return Response(status, f"{message}\n".encode())


def _json(status: int, data: Any) -> Response:
    return Response(status, json.dumps(data, default=str).encode(), "application/json")


def parse_address(address: str) -> tuple[str, int]:
    """'host:port', '[::1]:port' or ':port' (meaning 127.0.0.1) → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class Listener:
    """Serves the endpoints above in a background thread; `start()` binds, `stop()` closes."""

    def __init__(
        self,
        address: str,
        *,
        feeds: Sequence[FeedSettings],
        secret: str | None,
        on_poll: Callable[[str], None],
        health: Callable[[], tuple[bool, dict[str, Any]]],
        queue_counts: Callable[[], dict[str, dict[str, int]]],
        metrics: Metrics,
        debounce: float = 5.0,
    ) -> None:
        self.host, self._port = parse_address(address)
        self.feeds = tuple(feeds)
        self.secret = secret or None
        self.on_poll, self.health, self.queue_counts = on_poll, health, queue_counts
        self.metrics = metrics
        self.debounce = debounce
        self._last_poll: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when the address asked for port 0)."""
        if self._server is None:
            raise RuntimeError("listener not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind (OSError if the address is taken) and serve in a daemon thread."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, self._port), _handler(self), family)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="listener", daemon=True
        )
        self._thread.start()
        log.info("listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and close the socket; requests in progress are not waited for."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    # -- routes ------------------------------------------------------------------------------

    def wordpress_ping(self, request: Request) -> Response:
        """A WordPress "Update Services" ping: poll the feeds it names; 403 when none."""
        media_type = request.content_type.split(";")[0].strip().lower()
        if media_type not in ("text/xml", "application/xml") and not media_type.endswith("+xml"):
            return self._refused("xmlrpc", _text(415, "expected an XML-RPC call (text/xml)"))
        try:
            ping = pings.to_ping(*pings.parse_call(request.body))
        except pings.NotAPing as exc:
            return self._refused("xmlrpc", _fault(exc.code, str(exc)))
        except Exception as exc:  # untrusted input: any parser failure means "malformed"
            log.info("ping from %s: unreadable XML-RPC: %s", request.client, str(exc)[:200])
            return self._refused("xmlrpc", _text(400, "malformed XML-RPC call"))
        names = pings.matching(ping, self.feeds)
        if not names:
            shown = ping.blog_url[:200]  # anyone may ping: keep their text's share of the log small
            log.info("ping from %s for unknown blog %r refused", request.client, shown)
            return self._refused("xmlrpc", _text(403, "no feed here matches this blog"))
        polled, _ = self._poll(names)
        log.info(
            "ping from %s for %r (%r): polling %s",
            request.client,
            ping.blog_name,
            ping.blog_url,
            polled or "none (debounced)",
        )
        self.metrics.ping("xmlrpc", "accepted")
        body = xmlrpc.client.dumps((THANKS,), methodresponse=True).encode()
        return Response(200, body, "text/xml; charset=utf-8")

    def webhook(self, request: Request) -> Response:
        """Poll one named feed, or all of them, for a caller holding the shared secret."""
        given = (request.secret or "").encode()
        if self.secret is None or not hmac.compare_digest(given, self.secret.encode()):
            log.info("webhook from %s refused: wrong or missing secret", request.client)
            return self._refused("webhook", _text(403, "forbidden"))
        try:
            data = json.loads(request.body) if request.body.strip() else {}
        except ValueError:
            return self._refused("webhook", _text(400, "body must be JSON"))
        if not isinstance(data, dict) or not isinstance(data.get("feed", ""), str):
            return self._refused("webhook", _text(400, 'expected {"feed": "<name>"}'))
        wanted = data.get("feed")
        names = [f.name for f in self.feeds if wanted is None or f.name == wanted]
        if not names:
            return self._refused("webhook", _text(404, f"no feed named {wanted!r}"))
        polled, debounced = self._poll(names)
        log.info("webhook from %s: polling %s", request.client, polled or "none (debounced)")
        self.metrics.ping("webhook", "accepted")
        return _json(202, {"polling": polled, "debounced": debounced})

    def healthz(self, request: Request) -> Response:
        """200 with the details when healthy, 503 otherwise (or when the check crashes)."""
        try:
            healthy, details = self.health()
        except Exception:
            log.exception("health check crashed")
            return _json(503, {"error": "health check crashed"})
        return _json(200 if healthy else 503, details)

    def scrape(self, request: Request) -> Response:
        """Prometheus exposition, with the queue gauges read just now."""
        try:
            self.metrics.set_queue_counts(self.queue_counts())
        except Exception:  # stale queue gauges beat no metrics at all
            log.exception("metrics: could not read queue counts")
        return Response(200, self.metrics.render(), CONTENT_TYPE_LATEST)

    # -- helpers -----------------------------------------------------------------------------

    def _poll(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Ask for a poll of each feed not asked for within `debounce` seconds."""
        now = time.monotonic()
        with self._lock:
            polled = [
                n
                for n in names
                if n not in self._last_poll or now - self._last_poll[n] >= self.debounce
            ]
            self._last_poll.update(dict.fromkeys(polled, now))
        for name in polled:
            try:
                self.on_poll(name)
            except Exception:
                log.exception("feed %s: could not start a poll", name)
        return polled, [n for n in names if n not in polled]

    def _refused(self, source: str, response: Response) -> Response:
        self.metrics.ping(source, "refused")
        return response


def _fault(code: int, message: str) -> Response:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Response(200, body.encode(), "text/xml; charset=utf-8")


class _Server(ThreadingHTTPServer):
    """Threads per request, capped: past MAX_CLIENTS a new connection is closed at once."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], family: int
    ) -> None:
        self.address_family = family
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or sent garbage: one log line, never a bare traceback."""
        log.debug("listener: request from %s failed", client_address, exc_info=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to `listener`; it only moves bytes, the listener decides."""

    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT

        def handle_one_request(self) -> None:
            """Request line and headers must arrive within BODY_DEADLINE as a whole: a client
            dripping a header byte every few seconds would otherwise hold a slot for days."""
            self.headers_done = threading.Event()
            timer = threading.Timer(BODY_DEADLINE, self._too_slow)
            timer.daemon = True
            timer.start()
            try:
                super().handle_one_request()
            finally:
                timer.cancel()

        def parse_request(self) -> bool:
            parsed = super().parse_request()
            self.headers_done.set()
            return parsed

        def _too_slow(self) -> None:
            if not self.headers_done.is_set():
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        def do_GET(self) -> None:
            self._route()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

        def _route(self) -> None:
            route = ROUTES.get(urlsplit(self.path).path)
            if route is None:
                return self._send(_text(404, "not found"))
            method, name, source = route
            if self.command != method:
                return self._send(_text(405, "method not allowed"), allow=method)
            body = self._read_body()
            if isinstance(body, Response):
                if source:
                    listener.metrics.ping(source, "refused")
                return self._send(body)
            request = Request(
                client=self.client_address[0],
                content_type=self.headers.get("Content-Type", ""),
                secret=self.headers.get(SECRET_HEADER),
                body=body,
            )
            self._send(getattr(listener, name)(request))

        def _read_body(self) -> bytes | Response:
            if "Transfer-Encoding" in self.headers:
                return _text(411, "send a Content-Length, not a chunked body")
            raw = self.headers.get("Content-Length", "0").strip()
            if not (raw.isascii() and raw.isdigit()):  # int("²") would raise
                return _text(400, "bad Content-Length")
            length = int(raw)
            if length > MAX_BODY:
                self._read(min(length, DRAIN_LIMIT))
                return _text(413, f"body larger than {MAX_BODY} bytes")
            body = self._read(length)
            return body if len(body) == length else _text(400, "incomplete body")

        def _read(self, length: int) -> bytes:
            chunks, deadline = [], time.monotonic() + BODY_DEADLINE
            while length > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(length, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
                length -= len(chunk)
            return b"".join(chunks)

        def _send(self, response: Response, allow: str | None = None) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            if allow:
                self.send_header("Allow", allow)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def version_string(self) -> str:
            return "syndicator"  # no Python version for scanners to match

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
