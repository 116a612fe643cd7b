"""A standalone fake Mastodon (many instances under one port) for chaos, multi-daemon and
benchmark runs, where the daemon is a separate process that gets killed.

Instances live under a path prefix: api_base = http://127.0.0.1:PORT/<instance>. An instance
whose name starts with "noidem" ignores Idempotency-Key, so only lookup prevents duplicates.
Faults are injected at random with the given probabilities, some of them AFTER the status
was created (500, a hang past the client's timeout, a dropped connection) — the cases where
a cross-poster cannot know whether the post landed.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import random
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

URL = re.compile(r"https?://\S+")
FAULTS = ("503", "429", "500_after", "hang_after", "reset_after")


@dataclass
class Platform:
    """Everything the fake received; thread-safe."""

    delay: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    hang: float = 3.0
    seed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    inflight: int = 0
    requests: int = 0
    faults_injected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def pick_fault(self) -> str | None:
        with self.lock:
            roll = self.random.random()
            for name in FAULTS:
                roll -= self.faults.get(name, 0.0)
                if roll < 0:
                    self.faults_injected[name] += 1
                    return name
        return None

    def create(self, instance: str, text: str, key: str | None) -> tuple[dict[str, Any], bool]:
        """Store a status (or return the one stored under the same Idempotency-Key)."""
        with self.lock:
            honour = not instance.startswith("noidem")
            if honour and key and (instance, key) in self.keys:
                return self.keys[(instance, key)], False
            number = next(self.ids)
            links = URL.findall(text)
            content = URL.sub(
                lambda m: f'<a href="{html.escape(m.group(0))}">{m.group(0)}</a>',
                html.escape(text, quote=False),
            )
            status = {
                "id": str(number),
                "url": f"https://fake.example/@{instance}/{number}",
                "content": f"<p>{content}</p>",
                "created_at": time.time(),
                "key": key,
                "links": links,
            }
            self.statuses[instance].append(status)
            if key:
                self.keys[(instance, key)] = status
            return status, True

    def stats(self) -> dict[str, Any]:
        with self.lock:
            instances = {}
            for name, statuses in self.statuses.items():
                by_link: dict[str, int] = defaultdict(int)
                for status in statuses:
                    for link in status["links"]:
                        by_link[link.split("?")[0]] += 1
                by_id = {s["id"]: [link.split("?")[0] for link in s["links"]] for s in statuses}
                instances[name] = {"statuses": len(statuses), "by_link": by_link, "by_id": by_id}
            return {
                "instances": instances,
                "inflight": self.inflight,
                "requests": self.requests,
                "faults": dict(self.faults_injected),
            }


def handler_for(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_stats":
                return self._send(200, platform.stats())
            instance, _, rest = parts.path.lstrip("/").partition("/")
            if rest == "api/v1/accounts/verify_credentials":
                return self._send(200, {"id": "1", "acct": instance, "username": instance})
            if rest == "api/v1/accounts/1/statuses":
                limit = int(parse_qs(parts.query).get("limit", ["20"])[0])
                with platform.lock:
                    recent = list(reversed(platform.statuses[instance]))[:limit]
                return self._send(200, recent)
            self._send(404, {"error": "Record not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the client died mid-request: a real server drops it too
                self.close_connection = True
                return
            form = parse_qs(body.decode())
            instance, _, rest = urlsplit(self.path).path.lstrip("/").partition("/")
            if rest != "api/v1/statuses":
                return self._send(404, {"error": "Record not found"})
            with platform.lock:
                platform.requests += 1
                platform.inflight += 1
            try:
                self._status(instance, form)
            finally:
                with platform.lock:
                    platform.inflight -= 1

        def _status(self, instance: str, form: dict[str, list[str]]) -> None:
            if platform.delay:
                time.sleep(platform.delay)
            fault = platform.pick_fault()
            if fault == "503":
                return self._send(503, {"error": "Service unavailable"})
            if fault == "429":
                reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
                return self._send(429, {"error": "Too many requests"}, {"X-RateLimit-Reset": reset})
            text = form.get("status", [""])[0]
            status, _ = platform.create(instance, text, self.headers.get("Idempotency-Key"))
            if fault == "500_after":
                return self._send(500, {"error": "Internal server error"})
            if fault == "hang_after":
                time.sleep(platform.hang)
            if fault == "reset_after":
                self.close_connection = True
                self.connection.close()
                return
            self._send(200, status)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients killed mid-request (the point of a crash run) are not errors here


def serve(platform: Platform, port: int = 0) -> ThreadingHTTPServer:
    """Start the fake in a background thread; the caller stops it with .shutdown()."""
    server = _Server(("127.0.0.1", port), handler_for(platform))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    server = serve(Platform(delay=args.delay), args.port)
    print(f"fake platform on http://127.0.0.1:{server.server_port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
