"""A minimal sd_notify sender: READY, STATUS, WATCHDOG, STOPPING over $NOTIFY_SOCKET."""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    """Sends state to systemd when run as a Type=notify service; a no-op otherwise."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        self.address = address or None

    def notify(self, **fields: str | int) -> None:
        """Send `KEY=value` lines, e.g. notify(READY=1, STATUS="polling 2 feeds")."""
        if not self.address:
            return
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        # OSError: systemd is gone (shutting down); there is nothing useful to do
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.sendto(message, self.address)

    def watchdog_interval(self) -> float | None:
        """Half the watchdog period systemd expects pings within, or None when disabled."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 2_000_000
