"""TOML → validated, frozen settings. Reads files; no network, no database.

Secrets come from `${ENV_VAR}` substitution or a `<key>_file` next to the key (systemd
`LoadCredential=` puts them in `$CREDENTIALS_DIRECTORY`). Every secret value is collected
in `Settings.secrets` so logging can redact it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from syndicator import objectives
from syndicator.config_reader import Reader as _Reader
from syndicator.config_reader import expand as _expand
from syndicator.config_reader import read_small_file
from syndicator.connector import TextOptions
from syndicator.errors import ConfigError
from syndicator.objectives import EngagementSettings, Objective

SECRET_HINTS = ("token", "secret", "password", "key")
MEASURING = ("engagement", "objectives")  # top-level tables read by syndicator.objectives
CORE_KEYS = {
    "mode",
    "state_dir",
    "database",
    "trial_until",
    "dispatch_interval",
    "lease",
    "user_agent",
    "listen",
    "webhook_secret",
    "webhook_secret_file",
    "approval_webhook",
    "require_approval",
}
FEED_KEYS = {"name", "url", "interval", "backfill", "max_age", "timeout", "max_bytes"}
TARGET_KEYS = {
    "type",
    "enabled",
    "dry_run",
    "template",
    "max_hashtags",
    "hashtags_from",
    "utm",
    "delay",
    "include_categories",
    "exclude_categories",
    "include_tags",
    "exclude_tags",
    "feeds",
    "require_approval",
    "on_unknown",
    "on_image_error",
    "max_attempts",
    "cap_per_hour",
    "cap_per_day",
    "min_spacing",
    "timeout",
    "retry_delay",
    "shorten",
    "on_shortener_error",
}


@dataclass(frozen=True)
class FeedSettings:
    """One watched feed."""

    name: str
    url: str = field(repr=False)  # may carry a token
    interval: float = 300.0
    backfill: int = 0
    max_age: float | None = 7 * 86400.0
    timeout: float = 20.0
    max_bytes: int = 10_000_000


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, as data; the dispatcher applies it."""

    max_attempts: int = 8
    base: float = 60.0
    factor: float = 2.0
    max_delay: float = 6 * 3600.0
    jitter: float = 0.2


@dataclass(frozen=True)
class TargetSettings:
    """One destination account: core keys here, the connector's own keys in `options`."""

    name: str
    type: str
    enabled: bool = True
    dry_run: bool = False
    text: TextOptions = field(default_factory=TextOptions)
    delay: float = 0.0
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    include_tags: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    feeds: frozenset[str] = frozenset()
    require_approval: bool = False
    on_unknown: str = "hold"
    on_image_error: str = "text"
    shorten: str | None = None
    on_shortener_error: str = "long"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cap_per_hour: int | None = None
    cap_per_day: int | None = None
    min_spacing: float = 0.0
    timeout: float = 30.0
    options: dict[str, Any] = field(default_factory=dict, repr=False)  # holds tokens


@dataclass(frozen=True)
class BitlySettings:
    """The bit.ly account targets with `shorten = "bitly"` use."""

    token: str = field(repr=False)
    api_base: str = "https://api-ssl.bitly.com"
    group_guid: str | None = None


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    path: Path
    mode: str
    state_dir: Path
    database: str = field(repr=False)  # may carry a password
    feeds: tuple[FeedSettings, ...]
    targets: tuple[TargetSettings, ...]
    trial_until: datetime | None = None
    dispatch_interval: float = 10.0
    lease_seconds: float = 300.0
    user_agent: str = "syndicator/0.1 (+https://github.com/syndicator)"
    allow_private_hosts: frozenset[str] = frozenset()
    listen: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    approval_webhook: str | None = field(default=None, repr=False)
    bitly: BitlySettings | None = None
    engagement: EngagementSettings = field(default_factory=EngagementSettings)
    objectives: tuple[Objective, ...] = ()
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    def trial_active(self, now: datetime) -> bool:
        """True until `trial_until`: every target is forced into dry-run."""
        return self.trial_until is not None and now < self.trial_until

    def target(self, name: str) -> TargetSettings:
        """The target called `name`; ConfigError when there is none."""
        for target in self.targets:
            if target.name == name:
                return target
        raise ConfigError(f"{self.path}: no target named {name!r}")


def load(path: str | Path) -> Settings:
    """Read and validate a config file; raise ConfigError naming the file and key."""
    try:
        path = Path(path).expanduser()
        data = tomllib.loads(read_small_file(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return parse(data, path)


def parse(data: dict[str, Any], path: Path) -> Settings:
    """Validate an already-decoded TOML document."""
    secrets: set[str] = set()
    unknown = set(data) - {"syndicator", "feeds", "targets", "media", "bitly", *MEASURING}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level table(s): {', '.join(sorted(unknown))}")
    core = _Reader(path, "syndicator", _table(data, "syndicator", path), secrets)
    core.reject_unknown(CORE_KEYS)
    try:
        state_dir = Path(core.get("state_dir", str, "state")).expanduser()
    except RuntimeError as exc:  # "~nouser/x"
        raise core.fail("state_dir", str(exc)) from None
    if "\x00" in str(state_dir):
        raise core.fail("state_dir", "contains a NUL character")
    if not state_dir.is_absolute():
        state_dir = (path.parent / state_dir).resolve()
    database = core.secret("database") or f"sqlite:///{state_dir / 'syndicator.db'}"
    _check_database(core, database)
    feeds = tuple(_feed(path, i, f, secrets) for i, f in enumerate(_feeds(data, path)))
    if len({f.name for f in feeds}) != len(feeds):
        raise ConfigError(f"{path}: [[feeds]] names must be unique")
    targets_table = _table(data, "targets", path)
    approval = core.get("require_approval", bool, False)
    targets = tuple(_target(path, n, t, secrets, approval) for n, t in targets_table.items())
    media = _Reader(path, "media", _table(data, "media", path), secrets)
    media.reject_unknown({"allow_private_hosts"})
    feed_names = {f.name for f in feeds}
    for target in targets:
        if target.feeds - feed_names:
            missing = sorted(target.feeds - feed_names)[0]
            raise ConfigError(f"{path}: [targets.{target.name}] feeds: no feed named {missing!r}")
    bitly = _bitly(_Reader(path, "bitly", _table(data, "bitly", path), secrets))
    for target in targets:
        if target.shorten == "bitly" and bitly is None:
            raise ConfigError(f"{path}: [targets.{target.name}] shorten: needs a [bitly] token")
    return Settings(
        path=path,
        mode=core.choice("mode", ("live", "dry-run"), "dry-run"),
        state_dir=state_dir,
        database=database,
        feeds=feeds,
        targets=targets,
        trial_until=_trial_until(core),
        dispatch_interval=core.duration("dispatch_interval", 10.0, minimum=0.1) or 10.0,
        lease_seconds=core.duration("lease", 300.0, minimum=2) or 300.0,
        user_agent=core.get("user_agent", str, Settings.user_agent),
        allow_private_hosts=frozenset(media.names("allow_private_hosts")),
        listen=_listen(core),
        webhook_secret=core.secret("webhook_secret"),
        approval_webhook=_approval_webhook(core),
        bitly=bitly,
        engagement=objectives.engagement(
            _Reader(path, "engagement", _table(data, "engagement", path), secrets)
        ),
        objectives=_objectives(data, path, frozenset(t.name for t in targets), secrets),
        secrets=frozenset(secrets),
    )


def _objectives(
    data: dict[str, Any], path: Path, targets: frozenset[str], secrets: set[str]
) -> tuple[Objective, ...]:
    """The [[objectives]] tables; names must be unique."""
    tables = data.get("objectives", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: objectives must be written as [[objectives]] tables")
    found = tuple(
        objectives.objective(_Reader(path, f"objectives #{i + 1}", t, secrets), targets)
        for i, t in enumerate(tables)
    )
    if len({o.name for o in found}) != len(found):
        raise ConfigError(f"{path}: [[objectives]] names must be unique")
    return found


def _bitly(r: _Reader) -> BitlySettings | None:
    """The optional [bitly] table: token (or token_file), api_base, group_guid."""
    if not r.table:
        return None
    r.reject_unknown({"token", "token_file", "api_base", "group_guid"})
    token = r.secret("token")
    if not token:
        raise r.fail("token", "required (or token_file)")
    return BitlySettings(
        token=token,
        api_base=r.get("api_base", str, BitlySettings.api_base),
        group_guid=r.get("group_guid", str),
    )


def _check_database(core: _Reader, url: str) -> None:
    """A URL SQLAlchemy can read, for a database syndicator supports."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise core.fail(
            "database",
            "not a database URL (e.g. sqlite:///path or postgresql+psycopg://user@host/db)",
        ) from None
    if backend not in ("sqlite", "postgresql"):
        raise core.fail("database", f"SQLite or PostgreSQL, not {backend}")


def _listen(core: _Reader) -> str | None:
    """ "host:port" for the listener (port 0: any free port)."""
    value = core.get("listen", str)
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535 or not host.strip("[]").strip():
        raise core.fail("listen", f"expected host:port such as 127.0.0.1:8787, got {value!r}")
    return value


def _approval_webhook(core: _Reader) -> str | None:
    """The approval webhook URL; its path is often its secret (chat incoming webhooks)."""
    url = core.url("approval_webhook")
    if url:
        core.secrets.add(url)
        core.secrets.update(part for part in url.split("/")[3:] if len(part) >= 8)
    return url


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{key}] must be a table")
    return value


def _feeds(data: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    feeds = data.get("feeds", [])
    if not isinstance(feeds, list) or not all(isinstance(f, dict) for f in feeds):
        raise ConfigError(f"{path}: feeds must be written as [[feeds]] tables")
    return feeds


def _trial_until(core: _Reader) -> datetime | None:
    value = core.get("trial_until", (date, datetime, str))
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise core.fail(
                "trial_until", f"expected a date like 2026-12-31, got {value!r}"
            ) from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _default_name(url: str) -> str:
    """A feed's name when none is given: from its URL, never its position (posts are
    remembered by feed name, so a renumbered feed would publish its entries again)."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path.rstrip('/')}" or url


def _feed(path: Path, index: int, table: dict[str, Any], secrets: set[str]) -> FeedSettings:
    r = _Reader(path, f"feeds #{index + 1}", table, secrets)
    r.reject_unknown(FEED_KEYS)
    url = r.url("url")  # the URL is not secret (logs would show *** per feed); its tokens are
    if not url:
        raise r.fail("url", "an http:// or https:// URL is required")
    backfill = r.count("backfill", 0)
    interval = r.duration("interval", 300.0, minimum=1) or 300.0
    return FeedSettings(
        name=r.get("name", str) or _default_name(url),
        url=url,
        interval=interval,
        backfill=backfill,
        max_age=r.duration("max_age", FeedSettings.max_age),
        timeout=r.duration("timeout", 20.0, minimum=1) or 20.0,
        max_bytes=r.count("max_bytes", FeedSettings.max_bytes, minimum=1000),
    )


def _target(path: Path, name: str, table: Any, secrets: set[str], approval: bool) -> TargetSettings:
    """One [targets.<name>] table; `approval` is the global require_approval default."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [targets.{name}] must be a table")
    r = _Reader(path, f"targets.{name}", table, secrets)
    kind = r.get("type", str)
    if not kind:
        raise r.fail("type", "required (the connector name, e.g. 'mastodon')")
    max_attempts = r.count("max_attempts", RetryPolicy.max_attempts, minimum=1)
    text = TextOptions(
        template=r.get("template", str, TextOptions.template),
        max_hashtags=r.count("max_hashtags", TextOptions.max_hashtags),
        hashtags_from=_hashtag_sources(r),
        utm={str(k): str(v) for k, v in r.get("utm", dict, {}).items()},
    )
    return TargetSettings(
        name=name,
        type=kind,
        enabled=r.get("enabled", bool, True),
        dry_run=r.get("dry_run", bool, False),
        text=text,
        delay=r.duration("delay", 0.0) or 0.0,
        include_categories=r.names("include_categories"),
        exclude_categories=r.names("exclude_categories"),
        include_tags=r.names("include_tags"),
        exclude_tags=r.names("exclude_tags"),
        feeds=frozenset(r.get("feeds", list, [])),
        require_approval=r.get("require_approval", bool, approval),
        on_unknown=r.choice("on_unknown", ("hold", "resend"), "hold"),
        on_image_error=r.choice("on_image_error", ("text", "hold", "fail"), "text"),
        shorten=r.choice("shorten", ("bitly", ""), "") or None,
        on_shortener_error=r.choice("on_shortener_error", ("long", "wait"), "long"),
        retry=RetryPolicy(
            max_attempts=max_attempts,
            base=r.duration("retry_delay", RetryPolicy.base, minimum=1) or RetryPolicy.base,
        ),
        cap_per_hour=r.optional_count("cap_per_hour", minimum=1),
        cap_per_day=r.optional_count("cap_per_day", minimum=1),
        min_spacing=r.duration("min_spacing", 0.0) or 0.0,
        timeout=r.duration("timeout", 30.0, minimum=1) or 30.0,
        options=_connector_options(r),
    )


def _hashtag_sources(r: _Reader) -> tuple[str, ...]:
    sources = r.get("hashtags_from", list, list(TextOptions.hashtags_from))
    wrong = [s for s in sources if s not in ("categories", "tags")]
    if wrong:
        raise r.fail("hashtags_from", f"may list categories and tags only, not {wrong[0]!r}")
    return tuple(sources)


def _connector_options(r: _Reader) -> dict[str, Any]:
    """The connector's own keys, with secrets resolved; `<key>_file` becomes `<key>`."""
    options: dict[str, Any] = {}
    for key in r.table:
        if key in TARGET_KEYS:
            continue
        if key.endswith("_file") and isinstance(r.table[key], str):
            options[key.removesuffix("_file")] = r.secret(key.removesuffix("_file"))
        elif isinstance(r.table[key], str):
            value = _expand(
                r.table[key], lambda var, k=key: r.fail(k, f"environment variable {var} is not set")
            )
            is_secret = any(h in key.lower() for h in SECRET_HINTS) or value != r.table[key]
            if is_secret and value:
                r.secrets.add(value)
            options[key] = value
        else:
            options[key] = r.table[key]
    return options
