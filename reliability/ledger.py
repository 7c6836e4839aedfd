"""The effects ledger: what every chaos job really did, kept outside the queue's tables.

Each process appends JSON lines to its own file (``<dir>/<pid>.jsonl``) with ``O_APPEND``
writes, fsynced by default, so a record survives the ``kill -9`` of its writer the moment the
write returns. A line cut short by a kill mid-write is skipped when reading. The directory comes
from ``FERROQ_CHAOS_LEDGER`` (the runner sets it for every worker it starts).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ferroq_core import JobRow

__all__ = ["FAIL_MARKS", "LEDGER_ENV", "Effect", "Ledger", "read_ledger"]

LEDGER_ENV = "FERROQ_CHAOS_LEDGER"
FSYNC_ENV = "FERROQ_CHAOS_FSYNC"
#: Sub-directory of marker files that make a ``fail_once`` job fail exactly once.
FAIL_MARKS = "fail-marks"


@attrs.frozen
class Effect:
    """One ledger line: a job body started (``start``) or finished (``end``)."""

    #: ``start`` or ``end``.
    kind: str
    #: The job's token (unique per dispatched job, chosen by the scenario).
    token: int
    #: Process that ran it.
    pid: int
    #: Wall-clock time (``time.time()``) of the event.
    ts: float
    #: For ``end``: True when the body returned, False when it raised.
    ok: bool | None = None
    #: For a failed ``end``: the exception type.
    error: str | None = None
    #: For ``start``: the job id, attempt number and worker id the queue gave this run.
    job_id: int | None = None
    attempt: int | None = None
    worker: str | None = None
    #: For ``start``: the claim's time (the database clock on Postgres), epoch seconds.
    claimed_at: float | None = None
    #: For ``start``: the job's tenant.
    tenant: str | None = None


class Ledger:
    """Appends effects for the current process. Thread-safe; survives ``fork``."""

    def __init__(self, directory: str | Path, *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self._fd: int | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Ledger:
        directory = os.environ.get(LEDGER_ENV)
        if not directory:
            raise RuntimeError(f"{LEDGER_ENV} is not set: chaos jobs need a ledger directory")
        return cls(directory, fsync=os.environ.get(FSYNC_ENV, "1") != "0")

    def _descriptor(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            # A forked child must not share its parent's file: one writer per file keeps every
            # line whole even when the other writer is killed mid-line.
            path = self.directory / f"{pid}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = pid
        return self._fd

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            fd = self._descriptor()
            os.write(fd, line)
            if self.fsync:
                os.fsync(fd)

    def start(self, token: int, row: JobRow | None = None) -> None:
        record: dict[str, Any] = {"k": "start", "t": token, "p": os.getpid(), "ts": time.time()}
        if row is not None:
            record.update(j=row.id, a=row.attempts, w=row.claimed_by, n=row.tenant_id)
            if row.claimed_at is not None:
                record["c"] = row.claimed_at.timestamp()
        self._append(record)

    def end(self, token: int, *, ok: bool, error: str | None = None) -> None:
        record: dict[str, Any] = {"k": "end", "t": token, "p": os.getpid(), "ts": time.time()}
        record["ok"] = ok
        if error is not None:
            record["e"] = error
        self._append(record)

    def first_failure(self, token: int) -> bool:
        """True exactly once per token across every process (an ``O_EXCL`` marker file)."""
        marks = self.directory / FAIL_MARKS
        marks.mkdir(exist_ok=True)
        try:
            fd = os.open(marks / str(token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        os.close(fd)
        return True


def read_ledger(directory: str | Path) -> list[Effect]:
    """Every whole line of every process's file, oldest first."""
    effects: list[Effect] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue  # the last line of a process killed mid-write
            effects.append(
                Effect(
                    kind=rec["k"],
                    token=int(rec["t"]),
                    pid=int(rec["p"]),
                    ts=float(rec["ts"]),
                    ok=rec.get("ok"),
                    error=rec.get("e"),
                    job_id=rec.get("j"),
                    attempt=rec.get("a"),
                    worker=rec.get("w"),
                    claimed_at=rec.get("c"),
                    tenant=rec.get("n"),
                )
            )
    effects.sort(key=lambda e: e.ts)
    return effects
