"""`syndicator demo`: one dry-run round on the bundled sample feed, served on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path


@contextmanager
def serve_sample() -> Iterator[str]:
    """Serve the package's sample folder on an ephemeral 127.0.0.1 port; yield the feed URL."""
    folder = resources.files("syndicator") / "sample"
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def write_config(state_dir: Path, feed_url: str) -> Path:
    """The demo config, pointing at the served feed and a fresh state folder of its own."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for old in state_dir.glob("syndicator.db*"):  # every demo starts from a first start
        old.unlink()
    template = (resources.files("syndicator") / "sample" / "demo.toml").read_text(encoding="utf-8")
    path = state_dir / "config.toml"
    text = template.replace("{state_dir}", str(state_dir.resolve())).replace("{feed_url}", feed_url)
    path.write_text(text, encoding="utf-8")
    return path
