"""Connector discovery: built-ins and a third-party distribution through the same entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from syndicator import registry
from syndicator.errors import ConfigError

BUILT_INS = {"mastodon", "facebook", "x", "linkedin", "bluesky"}


def test_built_ins_are_registered_like_any_plugin():
    found = registry.available()
    assert set(found) >= BUILT_INS
    for name in BUILT_INS:
        cls = registry.load_class(name)
        assert cls.name == name and found[name].group == "syndicator.connectors"


def test_a_broken_or_incomplete_connector_fails_at_start(monkeypatch):
    real = registry.available

    def available():
        return {
            **real(),
            "broken": EntryPoint("broken", "no_such_module:Thing", registry.GROUP),
            "hollow": EntryPoint("hollow", "tests.fakes:Entry", registry.GROUP),
        }

    monkeypatch.setattr(registry, "available", available)
    with pytest.raises(ConfigError, match="connector 'broken' failed to load: ModuleNotFoundError"):
        registry.load_class("broken")
    with pytest.raises(ConfigError, match="connector 'hollow' .* lacks name, limits"):
        registry.load_class("hollow")


PLUGIN = '''
"""A third party's connector, shipped as its own distribution."""
from syndicator.connector import Limits
from syndicator.models import AccountInfo, Draft, Receipt
from syndicator.render import render


class Carrier:
    name = "carrier-pigeon"
    limits = Limits(max_chars=140)
    secret_keys = ("seed",)
    can_lookup = False

    def __init__(self, options, context):
        self.context = context

    def prepare(self, post):
        return Draft(text=render(post, self.context.text, self.limits), link=post.url)

    def publish(self, draft, *, key):
        return Receipt(remote_id=key)

    def lookup(self, draft, *, key):
        return None

    def check(self):
        return AccountInfo(account="coop #7")
'''


def test_a_third_party_distribution_is_discovered_without_touching_syndicator(tmp_path):
    source = tmp_path / "src"
    (source / "carrier_pigeon").mkdir(parents=True)
    (source / "carrier_pigeon" / "__init__.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "syndicator-carrier-pigeon"
        version = "1.0"
        [project.entry-points."syndicator.connectors"]
        carrier-pigeon = "carrier_pigeon:Carrier"
    """)
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    feed = tmp_path / "feed.xml"
    feed.write_text("<rss/>")
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(f'''
        [syndicator]
        state_dir = "{tmp_path / "state"}"
        [[feeds]]
        name = "blog"
        url = "https://blog.example/feed"
        [targets.pigeons]
        type = "carrier-pigeon"
    ''')
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    base = [sys.executable, "-m", "syndicator", "--config", str(config)]
    check = subprocess.run([*base, "check", "--online"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "pigeons: OK — coop #7" in check.stdout
    listed = subprocess.run(
        [*base, "queue", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(listed.stdout) == []
    without = subprocess.run([*base, "check"], capture_output=True, text=True)
    assert without.returncode == 1 and "unknown connector type 'carrier-pigeon'" in without.stderr
