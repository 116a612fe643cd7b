"""The systemd unit: what the daemon relies on, `systemd-analyze verify`, exposure ≤ 2.0.

`verify` insists that every Exec*= binary exists, and the unit names the installed path
(/opt/syndicator/...). The verify test therefore checks a copy whose ExecStart points at this
checkout's own `syndicator` entry point; everything else in the copy is the unit as shipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "syndicator.service"
INSTALLED = "/opt/syndicator/.venv/bin/syndicator"
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze not installed (Debian/Ubuntu: apt-get install systemd)",
)


def directives() -> dict[str, list[str]]:
    """{key: [values]} from the [Service] section, in file order."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_unit_matches_what_the_daemon_does() -> None:
    service = directives()
    assert service["Type"] == ["notify"]  # scheduler.Daemon sends READY=1 / STATUS= / WATCHDOG=1
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["60"]
    assert service["ExecStart"] == [f"{INSTALLED} --config /etc/syndicator/config.toml run"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP = reload the config
    assert service["KillSignal"] == ["SIGTERM"]  # SIGTERM = finish deliveries in flight
    assert service["StateDirectory"] == ["syndicator"]  # state_dir = "/var/lib/syndicator"
    assert all(":" in value for value in service["LoadCredential"])


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    entry_point = Path(sys.executable).with_name("syndicator")
    executable = entry_point if entry_point.exists() else Path(sys.executable)
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED, str(executable)), encoding="utf-8")
    result = run_analyze("verify", "--man=no", str(copy))
    assert result.returncode == 0, result.stderr
    assert UNIT.name not in result.stderr, result.stderr  # no warnings about our unit either


@needs_analyze
def test_security_exposure_is_at_most_two() -> None:
    result = run_analyze("security", "--offline=true", "--no-pager", str(UNIT))
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def run_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False)
