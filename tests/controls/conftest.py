"""Real ``ferroq worker`` processes on each backend, and the ledger their jobs write."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

import pytest

from tests.worker.conftest import WorkerProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


class Entry(NamedTuple):
    tag: str
    event: str
    pid: int
    at: float
    #: When the attempt was claimed (None outside an attempt).
    claimed: float | None


class Ledger:
    """The lines of tests.controls.jobs.ledger, parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            tag, event, pid, at, claimed = line.split()
            out.append(
                Entry(tag, event, int(pid), float(at), None if claimed == "-" else float(claimed))
            )
        return out

    def of(self, tag: str, event: str | None = None) -> list[Entry]:
        return [e for e in self.entries() if e.tag == tag and (event is None or e.event == event)]

    def events(self, tag: str) -> list[str]:
        return [e.event for e in self.of(tag)]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    """The ledger, written by the workers and by this process (``cancelled()`` of a job
    cancelled while pending runs here)."""
    path = tmp_path / "ledger.log"
    monkeypatch.setenv("FERROQ_TEST_LOG", str(path))
    return Ledger(path)


class _Worker(WorkerProcess):
    def __init__(self, url: str, args: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(url, ["--import", "tests.controls.jobs", *args], env, log)


@pytest.fixture
def start_worker(
    db_url: str, ledger: Ledger, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``ferroq worker`` subprocesses on ``db_url``; all are killed at teardown."""
    started: list[WorkerProcess] = []
    env = dict(os.environ, FERROQ_TEST_LOG=str(ledger.path), FERROQ_LOG_LEVEL="INFO")

    def start(*args: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started) + 1}.log"
        proc = _Worker(db_url, list(args), env, log)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
