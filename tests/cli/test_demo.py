"""The demo's jobs (examples/send_email.py, run by scripts/demo): its report shows the order the
emails went out in (urgent queue first, then priority, delayed ones when due) and counts only
its own run's emails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DELAY = 1.0


def _run(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _demo_run(cwd: Path, env: dict[str, str], run: str, count: int) -> str:
    """One run of scripts/demo's steps; the report it prints."""
    env = {**env, "FERROQ_DEMO_RUN": run}
    cli = ["-c", "from ferroq_core.cli import main; main()"]
    dispatched = _run(cwd, env, "-m", "examples.send_email", str(count))
    assert f"run {run}: dispatched {count} emails" in dispatched
    assert re.search(r"\d+ delayed\s+delayed by 1s", dispatched), dispatched
    assert re.search(r"\d+ priority\s+with priority -1", dispatched), dispatched
    worker = ["worker", "--import", "examples.send_email", "--queue", "high,default"]
    _run(cwd, env, *cli, "-q", *worker, "--concurrency", "1", "--max-time", str(DELAY + 2))
    return _run(cwd, env, "-m", "examples.send_email", "report")


def test_the_demo_shows_order_and_delays_and_counts_only_its_own_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FERROQ_", "QUEUE_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        "QUEUE_CONNECTION": "db",
        "FERROQ_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "FERROQ_DEMO_OUTBOX": str(tmp_path / "outbox.txt"),
        "FERROQ_DEMO_DELAY": str(DELAY),
    }
    _run(tmp_path, env, "-c", "from ferroq_core.cli import main; main()", "migrate")
    _demo_run(tmp_path, env, "first", 10)
    report = _demo_run(tmp_path, env, "second", 15)

    assert "run second: 15 emails sent (10 other lines in" in report
    rows = [line.split() for line in report.splitlines() if re.match(r"\s+\d+\s+[\d.]+s\s", line)]
    kinds = [row[2] for row in rows]
    assert len(rows) == 15
    # 'high' drains first, then 'default' by priority, and the delayed ones when they are due.
    assert kinds == ["urgent"] * 3 + ["priority"] * 3 + ["normal"] * 6 + ["delayed"] * 3
    assert all(float(row[1].rstrip("s")) >= DELAY for row in rows if row[2] == "delayed")
    assert "sent: 3 delayed, 6 normal, 3 priority, 3 urgent" in report
