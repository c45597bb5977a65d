"""The history reads only what it shows, from the end of the audit log, however long the log is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets.store import SettingsStore, read_tail_lines

LINES = 1_000_000


def _event(number: int) -> bytes:
    return (
        json.dumps(
            {
                "at": "2026-01-01T00:00:00+00:00",
                "actor": f"admin{number}",
                "action": "authenticate",
                "provider": "openai",
                "changed": [],
                "outcome": "ok",
            }
        )
        + "\n"
    ).encode()


MEASURE = """
import json, os, subprocess, sys, time
started = time.monotonic()
with open(sys.argv[1], "wb") as out:
    child = subprocess.Popen(sys.argv[2:], stdout=out)
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"seconds": time.monotonic() - started, "rss_kib": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status)}))
"""


def _timed_history(home: Path, limit: int) -> tuple[float, float, str]:
    """Run ``ai-admin history --limit`` (``python -m ai_admin_widgets``) as a child process.

    A small Python process starts it and measures it, so that the peak resident memory
    (``ru_maxrss`` of that one child, from ``wait4``) is not the test runner's own, which
    a child forked straight from it would count until its ``exec``.

    Returns:
        The seconds it took, its peak resident memory in MB, and what it printed.
    """
    output = home.parent / f"{home.name}.out"
    command = [sys.executable, "-m", "ai_admin_widgets", "--home", str(home), "history", "--limit", str(limit)]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(output), *command], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["code"] == 0, output.read_text()
    return measured["seconds"], measured["rss_kib"] / 1024, output.read_text()  # ru_maxrss is in KiB on Linux


def test_history_of_the_last_10_of_a_million_events_is_fast_and_small(tmp_path):
    home = tmp_path / "store"
    home.mkdir()
    small = tmp_path / "small"
    small.mkdir()
    (small / "audit.jsonl").write_bytes(b"".join(_event(number) for number in range(10)))
    try:
        with open(home / "audit.jsonl", "wb") as handle:
            batch = 10_000
            for start in range(0, LINES, batch):
                handle.write(b"".join(_event(number) for number in range(start, start + batch)))
        assert (home / "audit.jsonl").stat().st_size > 100 * 1024 * 1024  # more than the memory bound

        baseline, baseline_rss, _ = _timed_history(small, 10)  # starting Python and the package, nothing read
        elapsed, rss, out = _timed_history(home, 10)
    finally:
        (home / "audit.jsonl").unlink(missing_ok=True)  # 130 MB: not left in the temp folders pytest keeps
    shown = re.findall(r"\badmin\d+\b", out)
    assert shown == [f"admin{number}" for number in range(LINES - 10, LINES)]
    # Under 1 s and 100 MB; on a busy machine the start-up alone may take longer, so the
    # bound is 1 s or what starting took plus half a second, whichever is more.
    assert elapsed < max(1.0, baseline + 0.5), (elapsed, baseline)
    assert rss < 100, (rss, baseline_rss)
    print(f"history --limit 10 of {LINES} events: {elapsed:.2f} s (start-up alone {baseline:.2f} s), {rss:.0f} MB")


def test_audit_log_with_a_limit_returns_the_newest_oldest_first_skipping_damaged_lines(tmp_path):
    store = SettingsStore(tmp_path / "store", None)
    for number in range(5):
        store.append_audit({"actor": f"a{number}", "action": "authenticate"})
    with open(store.home / "audit.jsonl", "ab") as handle:
        handle.write(b"not json\n\n[1, 2]\n")
    store.append_audit({"actor": "a5", "action": "authenticate"})
    assert [event["actor"] for event in store.audit_log(3)] == ["a3", "a4", "a5"]
    assert [event["actor"] for event in store.audit_log(100)] == [f"a{number}" for number in range(6)]
    assert [event["actor"] for event in store.audit_log()] == [f"a{number}" for number in range(6)]
    assert aiw.AISettings(home=store.home, keyring=None).audit_log(limit=2)[-1]["actor"] == "a5"


@pytest.mark.parametrize("line_length", [1, 100, 65_535, 65_536, 65_537, 200_000])
def test_the_tail_reader_finds_lines_across_chunk_boundaries(tmp_path, line_length):
    path = tmp_path / "log"
    lines = [bytes([65 + number % 26]) * line_length for number in range(7)]
    path.write_bytes(b"\n".join(lines))  # the last line has no line end
    assert read_tail_lines(path, 3) == lines[-3:]
    assert read_tail_lines(path, 100) == lines
    assert read_tail_lines(path, 0) == []


def test_the_tail_reader_skips_a_line_too_long_to_hold(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"first\n" + b"x" * 300_000 + b"\nlast\n")
    assert read_tail_lines(path, 5, max_line=100_000) == [b"first", b"last"]


def test_the_tail_reader_refuses_a_symlink_and_a_fifo(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"secret\n")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    for name in ("link", "fifo"):
        with pytest.raises(OSError, match="not a regular file"):
            read_tail_lines(tmp_path / name, 1)


def test_the_whole_audit_log_skips_a_line_too_long_to_hold(tmp_path):
    store = SettingsStore(tmp_path / "store", None)
    store.append_audit({"actor": "before", "action": "authenticate"})
    with open(store.home / "audit.jsonl", "ab") as handle:
        handle.write(b'{"actor": "huge", "x": "' + b"x" * (3 << 20) + b'"}\n')
    store.append_audit({"actor": "after", "action": "authenticate"})
    for events in (store.audit_log(), store.audit_log(10)):
        assert [event["actor"] for event in events] == ["before", "after"]


def test_audit_log_refuses_a_limit_that_is_not_a_count(tmp_path):
    settings = aiw.AISettings(home=tmp_path / "store", keyring=None)
    for wrong, error in (("10", TypeError), (2.5, TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(error, match="limit"):
            settings.audit_log(wrong)
    assert settings.audit_log(0) == []
