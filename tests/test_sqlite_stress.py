"""SQLite with a busy daemon and a human at the CLI at the same time: WAL and busy timeouts
mean nobody ever sees "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest

from syndicator.models import Post, Receipt, State, utcnow
from syndicator.store import Store
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite-specific")


def test_cli_and_daemon_writing_at_once_never_see_a_locked_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'stress.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[syndicator]\nstate_dir = "{tmp_path}"\ndatabase = "{url}"\n'
        '[[feeds]]\nname = "f"\nurl = "https://b.example/feed"\n'
    )
    store = Store(url)
    store.migrate()
    stop = threading.Event()
    errors: list[BaseException] = []
    published = [0]

    def daemon_thread(worker: int) -> None:
        """Insert posts and run them through claim → published, as fast as possible."""
        own = Store(url)
        n = 0
        try:
            while not stop.is_set():
                now = utcnow()
                post = Post(
                    feed="f",
                    guid=f"w{worker}-{n}",
                    url=f"https://b.example/{worker}/{n}",
                    title="t",
                    published=now - timedelta(seconds=1),
                )
                post_id, _, _ = own.add_post(post, now, publish=True)
                own.create_delivery(
                    post_id, f"t{worker}", State.PENDING, dry_run=False, now=now, due=now
                )
                for d in own.claim_due(
                    f"w{worker}",
                    utcnow(),
                    60,
                    target=f"t{worker}",
                    limit=5,
                    resolvable_unknown=True,
                ):
                    own.mark_published(d, f"w{worker}", Receipt(str(d.id)), utcnow(), duration_ms=1)
                    published[0] += 1
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=daemon_thread, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    outputs = []
    deadline = time.monotonic() + 6
    base = [sys.executable, "-m", "syndicator", "--config", str(config)]
    while time.monotonic() < deadline:
        for args in (
            ["queue", "list", "--json"],
            ["log", "--limit", "5"],
            ["status"],
            ["queue", "cancel", "1"],
            ["queue", "retry", "1"],
        ):
            done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
            outputs.append((args, done.returncode, done.stdout + done.stderr))
    stop.set()
    for thread in threads:
        thread.join()
    store.close()
    assert not errors, errors
    assert published[0] > 50
    assert not [o for o in outputs if "locked" in o[2].lower()]
    assert all(code in (0, 1) for _, code, _ in outputs)  # 1: cancel/retry refused by state
    assert all(code == 0 for args, code, _ in outputs if args[0] != "queue" or args[1] == "list")
