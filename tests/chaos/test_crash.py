"""A short crash run in the suite; the full one is `python -m tests.chaos.crash` (see README)."""

from __future__ import annotations

from tests.chaos.crash import run


def test_short_crash_run_loses_nothing_and_duplicates_nothing(tmp_path):
    report = run(posts=16, kills=6, seed=7, faults=0.1, workdir=tmp_path, settle=90)
    assert report.received == report.expected == 64
    assert report.lost == []
    assert report.duplicated == []
    assert report.misattributed == []
    assert report.unknown_left == []  # every target here can look posts up
    assert report.failed == []
    assert report.clean_exit
