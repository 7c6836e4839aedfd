"""Helpers for worker tests: real ``ferroq worker`` processes and a shared marks file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
BOOT = "from ferroq_core.cli import main; main()"


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        time.sleep(interval)


class Marks:
    """The lines jobs append (``tag event pid time``), parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[tuple[str, str, int, float]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            tag, event, pid, when = line.split()
            out.append((tag, event, int(pid), float(when)))
        return out

    def events(self, tag: str) -> list[str]:
        return [event for t, event, _, _ in self.lines() if t == tag]

    def count(self, tag: str, event: str) -> int:
        return self.events(tag).count(event)

    def order(self, event: str = "run") -> list[str]:
        return [t for t, e, _, _ in self.lines() if e == event]


class WorkerProcess:
    """One ``ferroq worker`` subprocess (its output goes to a log file for failure reports)."""

    def __init__(self, url: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in wait()/kill()
        cmd = [sys.executable, "-c", BOOT, "--database-url", url, "worker"]
        cmd += ["--import", "tests.worker.jobs", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._out, stderr=self._out)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"worker did not exit within {timeout}s:\n{self.output()}"
            ) from None
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def marks(tmp_path: Path) -> Marks:
    return Marks(tmp_path / "marks.log")


@pytest.fixture
def start_worker(
    db_url: str, marks: Marks, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``ferroq worker`` subprocesses on ``db_url``; all are killed at teardown."""
    started: list[WorkerProcess] = []
    env = dict(os.environ, FERROQ_TEST_LOG=str(marks.path), FERROQ_LOG_LEVEL="INFO")

    def start(*args: str, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started) + 1}.log"
        proc = WorkerProcess(db_url, list(args), dict(env, **(extra_env or {})), log)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
