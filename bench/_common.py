"""What every benchmark shares: statistics, output, local fakes, config, the daemon process.

One way of doing each thing: a multi-feed server and fake Mastodon instances on 127.0.0.1
(threads of the bench process), a config writer, the daemon as a child process (READY over a
NOTIFY_SOCKET datagram socket, CPU and RSS from /proc), bulk database generation and
PostgreSQL schemas. Figures are summarised as median, p90, p99, min and max: this machine is
shared and noisy, so compare medians and ratios, never one time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform as pyplatform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakeplatform import Platform, handler_for
from tests.fakes import Entry, rss

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TICK = os.sysconf("SC_CLK_TCK")

# -- statistics and output ------------------------------------------------------------------


def summary(values: Sequence[float]) -> dict[str, Any]:
    """n, median, p90, p99, min, max (percentiles interpolated: with n < 100, p99 ≈ max)."""
    data = sorted(float(v) for v in values)
    if not data:
        return {"n": 0, "median": None, "p90": None, "p99": None, "min": None, "max": None}
    cuts = statistics.quantiles(data, n=100, method="inclusive") if len(data) > 1 else data * 99
    return {
        "n": len(data),
        "median": statistics.median(data),
        "p90": cuts[89],
        "p99": cuts[98],
        "min": data[0],
        "max": data[-1],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    return None if a is None or not b else a / b


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"
    return str(value)


def table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Print rows (dicts with the same keys) as an aligned table under a title."""
    print(f"\n{title}")
    if not rows:
        print("  (no rows)")
        return
    headers = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[fmt(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for line in [headers, ["-" * w for w in widths], *cells]:
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )


def stat_row(label: str, values: Sequence[float], unit: str = "", **extra: Any) -> dict[str, Any]:
    """One table row: a label, the summary of `values`, then extra columns."""
    s = summary(values)
    return {
        "case": label,
        "unit": unit,
        **{k: s[k] for k in ("n", "median", "p90", "p99", "min", "max")},
        **extra,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        pyplatform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": pyplatform.python_version(),
        "kernel": pyplatform.release(),
        "load_average": os.getloadavg(),
    }


def arguments(doc: str | None, **defaults: Any) -> argparse.Namespace:
    """The options every benchmark takes: --quick (tiny sizes, for the smoke test), --results."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks it runs, not timed"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for <name>.json")
    for name, (default, help_text) in defaults.items():
        kind = type(default) if default is not None else str
        if kind is bool:
            parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=help_text)
        else:
            parser.add_argument(
                f"--{name.replace('_', '-')}", type=kind, default=default, help=help_text
            )
    return parser.parse_args()


def save(args: argparse.Namespace, name: str, data: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json with the machine description and the run's options."""
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{name}.json"
    document = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nresults: {path}")
    return path


def wait_until(check: Callable[[], Any], timeout: float, step: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g}s")
        time.sleep(step)


# -- local fakes ----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A threaded server with a listen backlog deep enough for many pollers at once.

    socketserver's default backlog is 5: past it the kernel drops SYNs and the client
    retries a second later, which would show up as fake latency.
    """

    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients going away mid-request are not the benchmark's business


def _no_nagle(handler: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
    """The handler with TCP_NODELAY: it writes headers and body in two sends, and on a
    keep-alive connection Nagle plus the client's delayed ACK would add ~40 ms to each."""
    return type(handler.__name__, (handler,), {"disable_nagle_algorithm": True})


def _serve(server: _Server) -> _Server:
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@dataclass
class _Feed:
    entries: list[Entry] = field(default_factory=list)
    body: bytes = b""
    etag: str = ""

    def render(self) -> None:
        self.body = rss(self.entries).encode()
        self.etag = '"' + hashlib.sha1(self.body).hexdigest() + '"'


class FeedServer:
    """Many RSS feeds at /feeds/<name>.xml on 127.0.0.1, with content ETags (304 on a match).

    `added[guid]` is the wall-clock time an entry appeared; `on_request` (if set) is called
    for every GET, in the server's thread.
    """

    def __init__(self, keep: int | None = None, latency: float = 0.0) -> None:
        self.keep = keep  # a feed lists only its newest `keep` entries (WordPress: 10)
        self.latency = latency  # seconds before each answer, like a blog across the internet
        self.feeds: dict[str, _Feed] = {}
        self.added: dict[str, float] = {}
        self.lock = threading.Lock()
        self.requests = {200: 0, 304: 0, 404: 0}
        self.log: list[tuple[float, str, str]] = []  # (time, feed, User-Agent) of each GET
        self.on_request: Callable[[], None] | None = None
        self.server = _serve(_Server(("127.0.0.1", 0), _no_nagle(self._handler())))
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def url(self, name: str) -> str:
        return f"{self.base}/feeds/{name}.xml"

    def create(self, name: str, back_catalogue: int = 0) -> str:
        """A feed with `back_catalogue` older entries (never published by the daemon)."""
        feed = _Feed()
        old = datetime.now(UTC) - timedelta(days=1)
        feed.entries = [
            Entry(guid=f"{name}-old-{i}", title=f"Old {i} of {name}", published=old)
            for i in range(back_catalogue)
        ]
        feed.render()
        with self.lock:
            self.feeds[name] = feed
        return self.url(name)

    def add(self, name: str, *guids: str) -> float:
        """Publish new entries at the top of a feed, all at once (one render: no poll sees
        half of them); returns the time they appeared."""
        now = datetime.now(UTC)
        entries = [Entry(guid=g, title=f"Post {g}", published=now) for g in reversed(guids)]
        with self.lock:
            feed = self.feeds[name]
            feed.entries[:0] = entries
            del feed.entries[self.keep or len(feed.entries) :]
            feed.render()
            at = time.time()
            self.added.update(dict.fromkeys(guids, at))
            return at

    def first_request(self, name: str, after: float, agent: str) -> float | None:
        """When a client whose User-Agent starts with `agent` first asked for the feed after
        `after` (the poll that could see an entry added then)."""
        with self.lock:
            return next(
                (t for t, n, a in self.log if t > after and n == name and a.startswith(agent)),
                None,
            )

    def etag(self, name: str) -> str:
        with self.lock:
            return self.feeds[name].etag

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                if server.on_request is not None:
                    server.on_request()
                if server.latency:
                    time.sleep(server.latency)
                name = self.path.rpartition("/")[2].removesuffix(".xml")
                with server.lock:
                    server.log.append((time.time(), name, self.headers.get("User-Agent", "")))
                    feed = server.feeds.get(name)
                    body, etag = (feed.body, feed.etag) if feed else (b"", "")
                    status = (
                        404
                        if feed is None
                        else 304
                        if self.headers.get("If-None-Match") == etag
                        else 200
                    )
                    server.requests[status] += 1
                self.send_response(status)
                if status == 200:
                    self.send_header("Content-Type", "application/rss+xml; charset=UTF-8")
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)

        return Handler


class FakeApi:
    """One fake Mastodon server (tests.fakeplatform) on 127.0.0.1; instance = target."""

    def __init__(
        self, delay: float = 0.0, faults: dict[str, float] | None = None, hang: float = 3.0
    ) -> None:
        self.platform = Platform(delay=delay, faults=faults or {}, hang=hang)
        self.server = _serve(_Server(("127.0.0.1", 0), _no_nagle(handler_for(self.platform))))
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def statuses(self, instance: str) -> list[dict[str, Any]]:
        with self.platform.lock:
            return list(self.platform.statuses.get(instance, []))

    def count(self, instances: Sequence[str] | None = None) -> int:
        with self.platform.lock:
            names = instances if instances is not None else list(self.platform.statuses)
            return sum(len(self.platform.statuses.get(n, [])) for n in names)

    def received_at(self, instance: str) -> dict[str, float]:
        """guid → time its status was created on this instance (the first, if several)."""
        found: dict[str, float] = {}
        for status in self.statuses(instance):
            for link in status["links"]:
                found.setdefault(link.rsplit("/", 1)[1].split("?")[0], status["created_at"])
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- config and the daemon process ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One [targets.<name>] table: a fake Mastodon instance, or another type given by `extra`."""

    name: str
    api: str  # the FakeApi base URL (Mastodon only)
    timeout: float = 10.0
    extra: str = ""
    kind: str = "mastodon"


def write_config(
    folder: Path,
    *,
    feeds: Sequence[tuple[str, str, float]],
    targets: Sequence[Target],
    database: str | None = None,
    dispatch_interval: float = 10.0,
    core: str = "",
) -> Path:
    """A live-mode config: feeds as (name, url, interval seconds), Mastodon targets."""
    database = database or f"sqlite:///{folder / 'state' / 'syndicator.db'}"
    lines = [
        "[syndicator]",
        'mode = "live"',
        f'state_dir = "{folder / "state"}"',
        f'database = "{database}"',
        f"dispatch_interval = {dispatch_interval}",
        core,
    ]
    for name, url, interval in feeds:
        lines += ["", "[[feeds]]", f'name = "{name}"', f'url = "{url}"', f"interval = {interval}"]
    for t in targets:
        lines += [
            "",
            f"[targets.{t.name}]",
            f'type = "{t.kind}"',
            *(
                [f'api_base = "{t.api}/{t.name}"', f'access_token = "bench-token-{t.name}"']
                if t.kind == "mastodon"
                else []
            ),
            f"timeout = {t.timeout}",
            'retry_delay = "1s"',
            'template = "{title} {url}"',
            t.extra,
        ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss(pid: int) -> int:
    """Resident set size in bytes, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET (as tests/test_daemon.py)."""

    def __init__(self, folder: Path, name: str = "notify.sock") -> None:
        self.path = str(folder / name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def wait_for(self, needle: str, timeout: float) -> float:
        """Block until a message containing `needle` arrives; returns time.monotonic() then."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            if needle in message:
                return time.monotonic()
        raise TimeoutError(f"daemon sent no {needle!r} within {timeout:g}s")

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def syndicator_command(config: Path, *args: str) -> list[str]:
    """The CLI as a user runs it (the console script), with an explicit config."""
    return [str(Path(sys.executable).parent / "syndicator"), "--config", str(config), *args]


class Daemon:
    """`syndicator run` as a child process; `ready` is the monotonic time READY=1 arrived."""

    def __init__(
        self, config: Path, *, log_level: str = "INFO", env: dict[str, str] | None = None
    ) -> None:
        self.folder = config.parent
        self.notify = NotifySocket(self.folder, f"notify-{uuid.uuid4().hex[:6]}.sock")
        self.log = self.folder / f"daemon-{uuid.uuid4().hex[:6]}.log"
        env = {
            **os.environ,
            "NOTIFY_SOCKET": self.notify.path,
            "SYNDICATOR_LOG_LEVEL": log_level,
            **(env or {}),
        }
        env.pop("WATCHDOG_USEC", None)
        self.started = time.monotonic()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                syndicator_command(config, "run"), stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.pid = self.process.pid
        self.ready: float | None = None

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from spawn to READY=1."""
        try:
            self.ready = self.notify.wait_for("READY=1", timeout)
        except TimeoutError:
            raise RuntimeError(f"daemon not ready; its log:\n{self.tail()}") from None
        return self.ready - self.started

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def rss(self) -> int:
        return proc_rss(self.pid)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.notify.close()
        return self.process.returncode


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary folder for configs, databases and logs, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"syndicator-bench-{prefix}-") as folder:
        yield Path(folder)


# -- databases ------------------------------------------------------------------------------


def postgres_url() -> str:
    return (
        os.environ.get("SYNDICATOR_BENCH_DATABASE_URL")
        or os.environ.get("SYNDICATOR_TEST_DATABASE_URL")
        or PG_DEFAULT
    )


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema (search_path in the URL, as tests/conftest.py does), dropped afterwards."""
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def query(url: str, sql: str, **params: Any) -> Any:
    """One scalar from the database (a short-lived engine: the bench never holds locks)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def seed_feeds(url: str, feeds: dict[str, tuple[str, str | None]], *, migrate: bool = True) -> None:
    """Store feed state as if each feed had been polled: name → (url, etag), initialized."""
    import sqlalchemy as sa

    from syndicator.schema import feeds as table
    from syndicator.store import Store

    store = Store(url)
    if migrate:
        store.migrate()
    past = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        {"name": n, "url": u, "etag": e, "initialized": True, "last_poll_at": past}
        for n, (u, e) in feeds.items()
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    store.close()


def run_timed(command: Sequence[str], *, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one cold child process; raises if it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def bare(*args: str) -> dict[str, Any]:
    """Run the baseline (bench/_bare.py) to completion; its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "bench._bare", *args], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"baseline failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bare_process(*args: str) -> subprocess.Popen[str]:
    """Start the baseline in the background (its first stdout line says it is ready)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench._bare", *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )


# -- a large database -----------------------------------------------------------------------

TARGET_NAMES = ("mastodon", "facebook", "x", "linkedin", "bluesky")
STATE_MIX = (  # out of 1000 deliveries: a long-running install, mostly settled
    ("published", 950),
    ("failed", 10),
    ("unknown", 2),
    ("pending", 8),
    ("dry_run", 15),
    ("skipped", 10),
    ("cancelled", 5),
)


def generate_database(url: str, deliveries: int, log_rows: int, chunk: int = 20_000) -> float:
    """Fill a migrated database with realistic rows (one post per 5 deliveries) via bulk
    SQLAlchemy Core inserts; returns the seconds it took."""
    import sqlalchemy as sa

    from syndicator.models import Draft, Post
    from syndicator.schema import deliveries as d_table
    from syndicator.schema import feeds, posts, publish_log
    from syndicator.store import Store

    began = time.perf_counter()
    store = Store(url)
    store.migrate()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    states = [state for state, n in STATE_MIX for _ in range(n)]
    draft_shape = Draft(text="").to_dict()
    per_delivery, extra = divmod(log_rows, deliveries)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(feeds),
            [{"name": "blog", "url": "https://blog.example/feed/", "initialized": True}],
        )
    post_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    log_batch: list[dict[str, Any]] = []
    log_id = 0

    def flush(final: bool = False) -> None:
        for table, rows in ((posts, post_rows), (d_table, delivery_rows), (publish_log, log_batch)):
            if rows and (final or len(rows) >= chunk or table is posts):
                with store.engine.begin() as conn:
                    conn.execute(sa.insert(table), rows)
                rows.clear()

    for delivery_id in range(1, deliveries + 1):
        post_id, target_index = divmod(delivery_id - 1, len(TARGET_NAMES))
        post_id += 1
        at = start + timedelta(minutes=30 * post_id)
        if target_index == 0:
            post = Post(
                feed="blog",
                guid=f"https://blog.example/?p={post_id}",
                url=f"https://blog.example/{at:%Y/%m}/post-number-{post_id}/",
                title=f"Post number {post_id}: what happened at the spring meeting",
                summary="A short summary of the post, as WordPress writes it in the feed. " * 3,
                categories=("news", "events"),
                tags=("community",),
                published=at,
            )
            post_rows.append(
                {
                    "id": post_id,
                    "feed": "blog",
                    "guid": post.guid,
                    "url": post.url,
                    "title": post.title,
                    "content_hash": post.content_hash,
                    "data": post.to_dict(),
                    "published_at": at,
                    "first_seen_at": at,
                    "updated_at": at,
                    "edits": 0,
                    "fanned_out": True,
                }
            )
        target = TARGET_NAMES[target_index]
        state = states[delivery_id % len(states)]
        link = f"https://blog.example/p/{post_id}"
        # Draft.to_dict()'s shape, built directly: asdict() would dominate the generation time
        draft = dict(
            draft_shape, text=f"Post number {post_id}: what happened #news {link}", link=link
        )
        done = state in ("published", "failed", "skipped", "cancelled", "dry_run")
        delivery_rows.append(
            {
                "id": delivery_id,
                "post_id": post_id,
                "target": target,
                "state": state,
                "dry_run": state == "dry_run",
                "attempts": 1,
                "next_attempt_at": None if done else at,
                "payload": draft,
                "payload_hash": hashlib.sha256(draft["text"].encode()).hexdigest(),
                "remote_id": str(delivery_id) if state == "published" else None,
                "remote_url": f"https://{target}.example/status/{delivery_id}"
                if state == "published"
                else None,
                "last_error": "HTTP 500 from POST /api/v1/statuses"
                if state in ("failed", "unknown")
                else None,
                "created_at": at,
                "updated_at": at + timedelta(seconds=2),
            }
        )
        for i in range(per_delivery + (1 if delivery_id <= extra else 0)):
            log_id += 1
            last = i == per_delivery - 1
            log_batch.append(
                {
                    "id": log_id,
                    "delivery_id": delivery_id,
                    "post_id": post_id,
                    "target": target,
                    "at": at + timedelta(seconds=i),
                    "outcome": state if last else "retry",
                    "remote_url": None,
                    "error": None if last else "HTTP 503 from POST /api/v1/statuses",
                    "duration_ms": 120,
                    "dry_run": state == "dry_run",
                    "payload": None,
                }
            )
        if target_index == len(TARGET_NAMES) - 1 and len(delivery_rows) >= chunk:
            flush()
    flush(final=True)
    store.close()
    return time.perf_counter() - began


def database_bytes(url: str) -> int:
    """Size on disk: SQLite file after a WAL checkpoint, or the PostgreSQL schema's relations."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
                size = conn.exec_driver_sql("PRAGMA page_size").scalar()
                return int(pages or 0) * int(size or 0)
            return int(
                conn.execute(
                    sa.text(
                        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                    )
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()
