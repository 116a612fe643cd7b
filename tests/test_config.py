"""Config validation: every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicator import config, registry
from syndicator.errors import ConfigError

BASE = """
[syndicator]
state_dir = "state"

[[feeds]]
name = "blog"
url = "https://blog.example/feed/"

[targets.masto]
type = "fake"
platform = "p"
"""


def load(tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def test_defaults(tmp_path):
    s = load(tmp_path, BASE)
    assert s.mode == "dry-run"
    assert s.database == f"sqlite:///{tmp_path / 'state' / 'syndicator.db'}"
    assert s.feeds[0].interval == 300 and s.feeds[0].backfill == 0
    assert s.targets[0].on_unknown == "hold" and s.targets[0].options == {"platform": "p"}


def test_durations(tmp_path):
    s = load(
        tmp_path,
        BASE.replace(
            'url = "https://blog.example/feed/"',
            'url = "https://b.example/"\ninterval = "15m"\nmax_age = "2d"',
        ),
    )
    assert s.feeds[0].interval == 900 and s.feeds[0].max_age == 172800


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[syndicator]", '[syndicator]\nmode = "yolo"'),
            "[syndicator] mode: must be one of live, dry-run",
        ),
        (("[syndicator]", '[syndicator]\nmoed = "live"'), "[syndicator] moed: unknown key"),
        (('url = "https://blog.example/feed/"', 'url = "ftp://x"'), "[feeds #1] url: an http"),
        (
            ('url = "https://blog.example/feed/"', 'url = "https://x"\ninterval = "soon"'),
            "[feeds #1] interval: expected seconds or a duration",
        ),
        (
            ('url = "https://blog.example/feed/"', 'url = "https://x"\nbackfill = "3"'),
            "[feeds #1] backfill: expected int, got str '3'",
        ),
        (
            ('url = "https://blog.example/feed/"', 'url = "https://x"\nbackfill = true'),
            "[feeds #1] backfill: expected int, got bool",
        ),
        (
            ('url = "https://blog.example/feed/"', 'url = "https://x"\nbakfill = 3'),
            "[feeds #1] bakfill: unknown key",
        ),
        (('type = "fake"', "type = 3"), "[targets.masto] type: expected str"),
        (
            ('type = "fake"', 'type = "fake"\non_unknown = "maybe"'),
            "[targets.masto] on_unknown: must be one of hold, resend",
        ),
        (('type = "fake"', 'type = "fake"\nmax_attempts = 0'), "max_attempts: must be at least 1"),
        (
            ("[syndicator]", '[syndicator]\ntrial_until = "next week"'),
            "trial_until: expected a date",
        ),
        (("[syndicator]", "[sindicator]"), "unknown top-level table(s): sindicator"),
        (
            ('type = "fake"', 'type = "fake"\ntoken = "${SYNDICATOR_TEST_UNSET_VAR}"'),
            "[targets.masto] token: environment variable SYNDICATOR_TEST_UNSET_VAR is not set",
        ),
    ],
)
def test_bad_configs_name_file_and_key(tmp_path, change, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, BASE.replace(*change, 1))
    assert str(tmp_path / "config.toml") in str(err.value)
    assert message in str(err.value)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(tmp_path, "[syndicator\n")
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_secrets_from_env_and_file_are_collected_for_redaction(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_TOKEN", "env-secret-value")
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "tok").write_text("file-secret-value\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    text = BASE.replace(
        'platform = "p"', 'platform = "p"\ntoken = "${TEST_TOKEN}"\napp_secret_file = "tok"'
    )
    s = load(tmp_path, text)
    assert s.targets[0].options["token"] == "env-secret-value"
    assert s.targets[0].options["app_secret"] == "file-secret-value"
    assert {"env-secret-value", "file-secret-value"} <= s.secrets


def test_unreadable_secret_file(tmp_path):
    text = BASE.replace('platform = "p"', 'platform = "p"\ntoken_file = "missing"')
    with pytest.raises(ConfigError, match=r"\[targets.masto\] token_file: cannot read"):
        load(tmp_path, text)


def test_unknown_connector_type_is_refused_at_start(tmp_path):
    s = load(tmp_path, BASE.replace('type = "fake"', 'type = "myspace"'))
    with pytest.raises(ConfigError, match=r"\[targets.masto\] unknown connector type 'myspace'"):
        registry.build(s, load_image=None)


def test_connector_validates_its_own_options(tmp_path):
    s = load(tmp_path, BASE.replace('platform = "p"', ""))
    with pytest.raises(ConfigError, match=r"\[targets.masto\] platform: required"):
        registry.build(s, load_image=None)


def test_example_config_is_valid(monkeypatch, tmp_path):
    for name in ("facebook-page-token", "linkedin-token", "mastodon-token"):
        (tmp_path / name).write_text("file-token-value")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    for var in (
        "MASTODON_TOKEN",
        "X_API_KEY",
        "X_API_SECRET",
        "X_ACCESS_TOKEN",
        "X_ACCESS_TOKEN_SECRET",
        "BLUESKY_APP_PASSWORD",
        "MAILCHIMP_API_KEY",
    ):
        monkeypatch.setenv(var, "x" * 12)
    monkeypatch.setenv("MAILCHIMP_API_KEY", "0123456789abcdef-us21")
    path = Path(__file__).resolve().parents[1] / "config.example.toml"
    text = path.read_text()
    s = config.parse(__import__("tomllib").loads(text), path)
    names = {t.name for t in s.targets}
    assert names == {"mastodon", "facebook", "x", "linkedin", "bluesky", "newsletter"}
    built = registry.build(s, load_image=None, only_enabled=False)  # every connector accepts it
    assert set(built) == names


def test_a_misspelt_connector_option_is_refused(tmp_path):
    """`visibilty = "private"` silently ignored would post publicly."""
    text = BASE.replace(
        'type = "fake"\nplatform = "p"',
        'type = "mastodon"\napi_base = '
        '"https://m.example"\naccess_token = "tok-1234"\nvisibilty = "private"',
    )
    s = load(tmp_path, text)
    with pytest.raises(
        ConfigError,
        match=r"\[targets.masto\] visibilty: unknown key for a "
        r"mastodon target \(known: access_token, api_base",
    ):
        registry.build(s, load_image=None)
