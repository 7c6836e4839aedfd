"""Job types the observability tests run in real worker processes
(``--import tests.observability.jobs``).

Every run appends ``<n> <ok|err>`` to the ledger file named by ``FERROQ_TEST_LEDGER`` (one
short O_APPEND write, atomic across processes), so a test knows what ran whatever the
metrics say.
"""

from __future__ import annotations

import os

import attrs

from ferroq_core import Job

LEDGER_ENV = "FERROQ_TEST_LEDGER"


def _write(line: str) -> None:
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@attrs.define
class Flaky(Job):
    """``ok`` succeeds, ``fail`` always raises (two attempts: a retry, then parked),
    ``once`` raises on its first attempt only (a marker file remembers it)."""

    job_name = "test.obs.flaky"
    max_attempts = 2

    n: int
    kind: str = "ok"

    def retry_delay(self, attempt: int) -> float:
        return 0.0

    def handle(self) -> None:
        if self.kind == "fail":
            _write(f"{self.n} err\n")
            raise RuntimeError(f"job {self.n} always fails")
        if self.kind == "once":
            marker = f"{os.environ[LEDGER_ENV]}.{self.n}"
            if not os.path.exists(marker):
                open(marker, "w").close()
                _write(f"{self.n} err\n")
                raise RuntimeError(f"job {self.n} fails once")
        _write(f"{self.n} ok\n")


def kind_of(n: int) -> str:
    """The mix the tests dispatch: one job in 10 always fails, one in 7 fails once."""
    if n % 10 == 0:
        return "fail"
    if n % 7 == 0:
        return "once"
    return "ok"


def ledger_counts(path: str) -> dict[str, int]:
    """``started``, ``succeeded``, ``retried``, ``failed`` as the ledger saw them: a job's
    error runs are retries except its last when it never succeeded (with two attempts)."""
    runs: dict[int, list[str]] = {}
    with open(path) as f:
        for line in f:
            n, outcome = line.split()
            runs.setdefault(int(n), []).append(outcome)
    counts = {"started": 0, "succeeded": 0, "retried": 0, "failed": 0}
    for outcomes in runs.values():
        counts["started"] += len(outcomes)
        counts["succeeded"] += outcomes.count("ok")
        errors = outcomes.count("err")
        if outcomes[-1] == "err" and len(outcomes) == Flaky.max_attempts:
            counts["failed"] += 1
            errors -= 1
        counts["retried"] += errors
    return counts
