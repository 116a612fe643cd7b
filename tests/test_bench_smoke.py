"""Every benchmark runs with --quick (tiny sizes) and writes its JSON; timings are not judged.

The scripts start together, each in its own process, so the whole check takes about as long
as the slowest one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import NAMES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.Popen[str], Path]]:
    results = tmp_path_factory.mktemp("bench-results")
    started = {}
    for name in NAMES:
        command = [sys.executable, "-m", f"bench.{name}", "--quick", "--results", str(results)]
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started[name] = (process, results / f"{name}.json")
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_runs_quick(
    runs: dict[str, tuple[subprocess.Popen[str], Path]], name: str
) -> None:
    process, result = runs[name]
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    data = json.loads(result.read_text())
    assert data["benchmark"] == name and data["quick"] is True
    assert data["rows"], output[-3000:]
    assert "median" in output or "not available" in output
