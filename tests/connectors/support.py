"""What every connector's tests share: the error assertion and an address nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytest


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
