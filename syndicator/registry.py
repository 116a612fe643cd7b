"""Connector discovery through entry points; built-ins are registered the same way.

Loading fails fast, at start-up, with a ConfigError naming the target and the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from syndicator.config import Settings, TargetSettings
from syndicator.connector import Connector, ConnectorContext, ImageLoader, Limits
from syndicator.errors import ConfigError
from syndicator.render import validate_template

GROUP = "syndicator.connectors"
REQUIRED = ("name", "limits", "secret_keys", "can_lookup", "prepare", "publish", "lookup", "check")


def available() -> dict[str, EntryPoint]:
    """Installed connectors by name; a name registered twice is an error."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise ConfigError(
                f"connector {ep.name!r} is registered twice: {found[ep.name].value} and {ep.value}"
            )
        found[ep.name] = ep
    return found


def load_class(name: str) -> type[Connector]:
    """Import one connector class and check it fulfils the protocol."""
    installed = available()
    if name not in installed:
        known = ", ".join(sorted(installed)) or "none"
        raise ConfigError(f"unknown connector type {name!r} (installed: {known})")
    try:
        cls = installed[name].load()
    except Exception as exc:  # a broken third-party package must not crash with a traceback
        raise ConfigError(
            f"connector {name!r} failed to load: {type(exc).__name__}: {exc}"
        ) from None
    missing = [attr for attr in REQUIRED if not hasattr(cls, attr)]
    if missing:
        raise ConfigError(
            f"connector {name!r} ({installed[name].value}) lacks {', '.join(missing)}"
        )
    if not isinstance(cls.limits, Limits):
        raise ConfigError(f"connector {name!r}: `limits` must be a syndicator.connector.Limits")
    return cls


def build(
    settings: Settings,
    load_image: ImageLoader | Callable[..., Any],
    *,
    only_enabled: bool = True,
) -> dict[str, Connector]:
    """Instantiate every (enabled) target's connector; ConfigError names the file and target."""
    connectors: dict[str, Connector] = {}
    for target in settings.targets:
        if only_enabled and not target.enabled:
            continue
        connectors[target.name] = build_one(settings, target, load_image)
    return connectors


def check_keys(cls: type[Connector], target: TargetSettings) -> None:
    """A misspelt option must not be silently ignored (`visibilty = "private"` would post
    publicly): connectors that declare `option_keys` get unknown keys refused."""
    known = getattr(cls, "option_keys", None)
    if known is None:
        return
    unknown = sorted(set(target.options) - set(known))
    if unknown:
        keys = ", ".join(sorted(known))
        raise ConfigError(f"{unknown[0]}: unknown key for a {cls.name} target (known: {keys})")


def build_one(settings: Settings, target: TargetSettings, load_image: Any) -> Connector:
    try:
        validate_template(target.text.template)
        cls = load_class(target.type)
        check_keys(cls, target)
        context = ConnectorContext(
            target=target.name,
            text=target.text,
            state_dir=settings.state_dir,
            load_image=load_image,
            user_agent=settings.user_agent,
            timeout=target.timeout,
        )
        return cls(target.options, context)
    except ConfigError as exc:
        raise ConfigError(f"{settings.path}: [targets.{target.name}] {exc}") from None
