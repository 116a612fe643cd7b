"""The daemon: one APScheduler per process polling feeds and dispatching; signals; sd_notify.

The only module that imports APScheduler. SIGTERM/SIGINT stop gracefully (deliveries in
flight finish and are recorded); SIGHUP reloads the config, keeping the old one if the new
one is invalid.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from syndicator import config, logs
from syndicator.app import App
from syndicator.engagement import Engagement
from syndicator.errors import ConfigError
from syndicator.health import healthy
from syndicator.listener import Listener
from syndicator.metrics import Metrics
from syndicator.models import utcnow
from syndicator.queries import counts_by_state
from syndicator.sdnotify import Notifier

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0


class Daemon:
    """Runs until stopped; `reload()` swaps in a freshly validated config."""

    def __init__(self, app: App, config_path: Path, notifier: Notifier | None = None) -> None:
        self.app = app
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.dispatcher = app.dispatcher(self.metrics)
        self.listener: Listener | None = None
        self._dispatch_lock = threading.Lock()
        self._engagement_lock = threading.Lock()
        self._feed_locks: dict[str, threading.Lock] = {}

    # -- jobs --------------------------------------------------------------------------------

    def _schedule(self) -> None:
        self.scheduler.remove_all_jobs()
        job = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
        for feed in self.app.settings.feeds:
            self.scheduler.add_job(
                self.poll_feed,
                "interval",
                args=[feed.name],
                id=f"feed:{feed.name}",
                seconds=feed.interval,
                next_run_time=utcnow(),
                **job,
            )
        self.scheduler.add_job(
            self.dispatch,
            "interval",
            id="dispatch",
            seconds=self.app.settings.dispatch_interval,
            next_run_time=utcnow(),
            **job,
        )
        engagement = self.app.settings.engagement
        if engagement.enabled:
            first = min(engagement.interval, 60.0)  # after the first dispatch ticks: posts first
            self.scheduler.add_job(
                self.read_engagement,
                "interval",
                id="engagement",
                seconds=engagement.interval,
                next_run_time=utcnow() + timedelta(seconds=first),
                **job,
            )
        watchdog = self.notifier.watchdog_interval()
        self.scheduler.add_job(
            self.heartbeat,
            "interval",
            id="heartbeat",
            seconds=min(HEARTBEAT_SECONDS, watchdog or HEARTBEAT_SECONDS),
            next_run_time=utcnow(),
            **job,
        )

    def poll_feed(self, name: str, *, force: bool = False) -> None:
        """Poll one feed (if this daemon wins its lease), then dispatch what it produced.

        `force` (a ping or webhook) skips the lease; polls of one feed never overlap here.
        """
        feed = next((f for f in self.app.settings.feeds if f.name == name), None)
        if feed is None:
            return
        lock = self._feed_locks.setdefault(name, threading.Lock())
        with lock:
            try:
                now = utcnow()
                store = self.app.store
                if force or store.claim_feed(
                    feed.name, feed.url, self.app.owner, now, feed.interval
                ):
                    result = self.app.poller().poll(feed, now)
                    outcome = "error" if result.error else "ok"
                    self.metrics.feed_poll(name, "not_modified" if result.not_modified else outcome)
                    if result.deliveries:
                        self.dispatch()
            except Exception:  # the scheduler must survive anything a poll throws
                self.metrics.feed_poll(name, "error")
                log.exception("feed %s: poll crashed", name)

    def ping(self, name: str) -> None:
        """A WordPress ping or webhook: poll that feed now, off the listener's thread."""
        self.scheduler.add_job(
            self.poll_feed,
            args=[name],
            kwargs={"force": True},
            id=f"ping:{name}",
            replace_existing=True,
        )

    def dispatch(self) -> None:
        """One dispatch tick; ticks never overlap within a process."""
        if self.stopping.is_set() or not self._dispatch_lock.acquire(blocking=False):
            return
        try:
            self.app.images.fresh()
            self.dispatcher.tick(wait=False)  # each target drains on its own; none waits
        except Exception:
            log.exception("dispatch tick crashed")
        finally:
            self._dispatch_lock.release()

    def read_engagement(self) -> None:
        """One engagement round (the same as `syndicator engagement --once`); never overlaps."""
        if self.stopping.is_set() or not self._engagement_lock.acquire(blocking=False):
            return
        try:
            app = self.app
            result = Engagement(app.settings, app.store, app.connectors).run_once()
            if result.stored or result.refused:
                log.info("engagement: %s", result.summary())
        except Exception:
            log.exception("engagement round crashed")
        finally:
            self._engagement_lock.release()

    def heartbeat(self) -> None:
        """Liveness row for `status`, and STATUS/WATCHDOG for systemd: sent from the
        scheduler's own thread, so a scheduler that stops running stops the pings."""
        try:
            self.app.store.heartbeat(self.app.owner, socket.gethostname(), os.getpid(), utcnow())
        except Exception:  # the database is away: no WATCHDOG, systemd restarts us if it lasts
            log.exception("heartbeat failed")
            return
        self.notifier.notify(STATUS=self.status_line(), WATCHDOG=1)

    def status_line(self) -> str:
        totals: dict[str, int] = {}
        for states in counts_by_state(self.app.store).values():
            for state, count in states.items():
                totals[state] = totals.get(state, 0) + count
        shown = ", ".join(f"{count} {state}" for state, count in sorted(totals.items()))
        sizes = f"{len(self.app.settings.feeds)} feeds, {len(self.app.connectors)} targets"
        return f"{sizes}; {shown or 'queue empty'}"

    # -- life cycle --------------------------------------------------------------------------

    def _listen(self) -> None:
        """(Re)start the ping/webhook/health/metrics listener if the config asks for one."""
        if self.listener:
            self.listener.stop()
            self.listener = None
        settings = self.app.settings
        if not settings.listen:
            return
        self.listener = Listener(
            settings.listen,
            feeds=settings.feeds,
            secret=settings.webhook_secret,
            on_poll=self.ping,
            health=lambda: healthy(self.app.settings, self.app.store),
            queue_counts=lambda: counts_by_state(self.app.store),
            metrics=self.metrics,
        )
        self.listener.start()
        log.info("listening on %s:%s", settings.listen.rsplit(":", 1)[0], self.listener.port)

    def run(self) -> None:
        """Block until SIGTERM/SIGINT."""
        self._install_signals()
        self._forget_refusals()
        self._schedule()
        self.scheduler.start()
        self._listen()
        self.notifier.notify(READY=1, STATUS=self.status_line())
        log.info("syndicator running: %s (mode %s)", self.app.owner, self.app.settings.mode)
        while not self.stopping.wait(timeout=1.0):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
        self.shutdown()

    def stop(self, *_: object) -> None:
        """SIGTERM/SIGINT: deliveries in flight finish, the rest of each batch is released."""
        self.stopping.set()
        self.dispatcher.stopping.set()

    def reload(self) -> None:
        """Re-read the config; a bad one is refused with a message and the old one stays."""
        self.notifier.notify(RELOADING=1, MONOTONIC_USEC=int(os.times().elapsed * 1e6))
        try:
            settings = config.load(self.config_path)
            app = App.build(settings)
        except Exception as exc:  # ConfigError, a database URL it cannot open, ...
            message = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            log.error("reload refused, keeping the running config: %s", message)
        else:
            logs.add_secrets(settings.secrets)
            with self._dispatch_lock, self._engagement_lock:  # no round on the old store
                self.dispatcher.close()
                old, self.app = self.app, app
                self.app.owner = old.owner
                self.dispatcher = app.dispatcher(self.metrics)
                old.close()
            self._forget_refusals()
            self._schedule()
            self._listen()
            log.info("config reloaded from %s", self.config_path)
        self.notifier.notify(READY=1, STATUS=self.status_line())

    def _forget_refusals(self) -> None:
        """A (re)loaded config may carry new permissions: ask refusing platforms once more."""
        try:
            if lifted := self.app.store.clear_metrics_error():
                log.info("engagement: asking %d refusing target(s) again", lifted)
        except Exception:
            log.exception("could not clear engagement refusals")

    def shutdown(self) -> None:
        """Stop scheduling, let in-flight work finish and be recorded, then leave."""
        self.notifier.notify(STOPPING=1, STATUS="stopping: finishing deliveries in flight")
        log.info("stopping: waiting for deliveries in flight")
        if self.listener:
            self.listener.stop()
        self.scheduler.shutdown(wait=True)
        with self._dispatch_lock:
            self.dispatcher.close()
        self.app.store.release_feeds(self.app.owner)
        self.app.store.forget_daemon(self.app.owner)
        self.app.close()
        log.info("stopped")

    def _install_signals(self) -> None:
        handlers: dict[int, Callable[..., None]] = {
            signal.SIGTERM: self.stop,
            signal.SIGINT: self.stop,
            signal.SIGHUP: lambda *_: self.reload_requested.set(),
        }
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
