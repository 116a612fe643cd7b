"""What every connector's tests share: a recording fake platform, the error assertion, and an
address nobody listens on."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def raises_without_secrets(
    kind: type[Exception],
    call: Callable[[], Any],
    match: str | None,
    secrets: Iterable[str],
    *,
    exact: bool = True,
) -> Any:
    """Run `call`, expect `kind` (exactly, unless `exact` is off), and check that no secret
    is in any part of the error: its message or its arguments."""
    with pytest.raises(kind, match=match or None) as info:
        call()
    if exact:
        assert type(info.value) is kind
    for secret in secrets:
        assert secret not in str(info.value) and secret not in repr(info.value.args)
    return info.value


def closed_port_url() -> str:
    """http://127.0.0.1:<port> where nothing listens: connection refused before sending."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Seen:
    """One request as a fake platform received it."""

    method: str
    url: str
    path: str
    query: str
    args: dict[str, str]
    headers: dict[str, str]
    form: dict[str, list[str]]
    files: dict[str, tuple[str, bytes, str]]
    data: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.data) if self.data else None

    @property
    def body(self) -> bytes:
        return self.data


def seen(request: Request) -> Seen:
    """Everything a test may want to check about one request."""
    data = request.get_data(cache=True)
    files = {k: (f.filename or "", f.read(), f.mimetype) for k, f in request.files.items()}
    return Seen(
        request.method,
        request.base_url,
        request.path,
        request.query_string.decode(),
        request.args.to_dict(),
        dict(request.headers),
        request.form.to_dict(flat=False),
        files,
        data,
    )


Answer = Callable[[Seen], tuple[Any, int]]


class RecordingServer:
    """Routes on a pytest-httpserver that answer like one platform and record every request.

    Subclasses set `prefix` (e.g. Mailchimp's /3.0), `empty` (the text of an answer with no
    body) and `content_type(status)`, and add their platform's helpers.
    """

    prefix: ClassVar[str] = ""
    empty: ClassVar[str] = "null"

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.seen: list[Seen] = []
        self.busy = threading.Lock()  # held while a handler runs (the server is single-threaded)
        self.idle = threading.Event()  # no slow answer still running
        self.idle.set()

    def content_type(self, status: int) -> str | None:
        return "application/json"

    def on(
        self,
        method: str,
        path: str,
        body: Any = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        once: bool = False,
        delay: float = 0.0,
        content_type: str | None = "",
    ) -> None:
        """Answer `method prefix+path` with a JSON body, raw text when `body` is a str, or what
        `body(seen)` returns when it is callable; `content_type=None` sends none at all."""

        def handler(request: Request) -> Response:
            with self.busy:
                return answer(request)

        def answer(request: Request) -> Response:
            record = seen(request)
            self.seen.append(record)
            if delay:
                self.idle.clear()
                time.sleep(delay)
                self.idle.set()
            value, code = body(record) if callable(body) else (body, status)
            text = (
                value
                if isinstance(value, str)
                else self.empty
                if value is None
                else json.dumps(value)
            )
            response = Response(text, code, headers)
            kind = self.content_type(code) if content_type == "" else content_type
            if kind is None:
                del response.headers["Content-Type"]
            else:
                response.headers["Content-Type"] = kind
            return response

        expect = self.server.expect_oneshot_request if once else self.server.expect_request
        expect(self.prefix + path, method=method).respond_with_handler(handler)
