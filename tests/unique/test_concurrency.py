"""Unique jobs under real concurrency, on both backends: 8 dispatching processes hammer the
same keys at once, for every mode and conflict policy, and the rows left are the documented
ones (docs/unique-jobs.md): one job per key, the inserting dispatch the only one not a
duplicate, every other one told the holder's id (skip), raised ``DuplicateJob`` with it
(raise), or replaced the holder's payload, the newest winning (replace). A second run does
the same while a real ``ferroq worker`` runs those jobs and retries half of them, so the
holders move between pending, claimed and deleted under the dispatchers: nothing may
collide, and every job runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from tests.worker.conftest import ROOT, WorkerProcess, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime

pytestmark = pytest.mark.slow

MODES = ("while_queued", "until_started", "until_finished", "for_period")
POLICIES = ("skip", "replace", "raise")
COMBOS = [f"{m}/{p}" for m in MODES for p in POLICIES]
WRITERS = 8
JOB_TYPE = "tests.unique.hammer"


def _hammer(
    url: str, tmp_path: Path, *, rounds: int, keys: int, combos: list[str], batch: bool = False
) -> list[list[Any]]:
    """Run WRITERS dispatching processes at once; their result lines, parsed."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.unique.hammer",
                url,
                str(w),
                str(rounds),
                str(keys),
                str(go),
                ",".join(combos),
                *(["batch"] if batch else []),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        for w in range(WRITERS)
    ]
    # Every process imported and connected, so the dispatches meet, however loaded the machine.
    ready = [go.with_name(f"go.ready-{w}") for w in range(WRITERS)]
    wait_for(
        lambda: all(r.exists() for r in ready) or any(p.poll() is not None for p in procs),
        timeout=60,
    )
    go.touch()
    lines: list[list[Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode(errors="replace")
        lines += [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == WRITERS * rounds * keys * len(combos)
    return lines


def _payloads(runtime: Runtime) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every stored Hammer row by key: (id, payload)."""
    by_key: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for row in runtime.backend.list_jobs(job_type=JOB_TYPE, limit=100_000):
        payload = json.loads(row.payload)
        by_key[payload["key"]].append((row.id, payload))
    return by_key


@pytest.mark.parametrize("batch", [False, True], ids=["dispatch", "dispatch_many"])
def test_eight_dispatchers_leave_one_job_per_key_for_every_mode_and_policy(
    runtime: Runtime, db_url: str, tmp_path: Path, batch: bool
) -> None:
    # In batches, `raise` refuses a whole batch: the rows it leaves are the other policies'.
    combos = [c for c in COMBOS if not (batch and c.endswith("/raise"))]
    rounds, keys = 6, 3
    lines = _hammer(db_url, tmp_path, rounds=rounds, keys=keys, combos=combos, batch=batch)
    stored = _payloads(runtime)
    results: dict[str, list[list[Any]]] = defaultdict(list)
    for line in lines:
        results[line[1]].append(line)
    assert len(results) == len(combos) * keys
    for key, got in results.items():
        policy = key.split("/")[1]
        assert len(stored[key]) == 1, f"{key}: {stored[key]}"
        ((row_id, payload),) = stored[key]
        inserted = [g for g in got if not g[4]]
        assert len(inserted) == 1, f"{key}: {len(inserted)} dispatches inserted"
        assert inserted[0][3] == row_id
        others = [g for g in got if g[4]]
        assert all(g[3] == row_id for g in others), key
        if policy == "skip":
            assert not any(g[5] or g[6] for g in others), key
            assert payload["seq"] == inserted[0][2]
        elif policy == "raise":
            assert all(g[6] and not g[5] for g in others), key
            assert payload["seq"] == inserted[0][2]
        else:
            # Nothing ran, so every later dispatch replaced the pending holder; the one that
            # stays is the newest: the last dispatch of its process.
            assert all(g[5] and not g[6] for g in others), key
            assert payload["seq"] == rounds - 1, f"{key}: an older payload won: {payload}"


@pytest.mark.parametrize(
    "combos",
    [
        [
            "while_queued/skip",
            "until_started/replace",
            "while_queued/replace",
            "until_started/raise",
            "until_finished/replace",
        ]
    ],
)
def test_dispatchers_and_a_retrying_worker_never_collide(
    runtime: Runtime, db_url: str, tmp_path: Path, combos: list[str]
) -> None:
    log = tmp_path / "worker.log"
    env = dict(os.environ, FERROQ_LOG_LEVEL="INFO")
    args = ["--import", "tests.unique.jobs", "--concurrency", "4", "--sleep", "0.05"]
    worker = WorkerProcess(db_url, args, env, log)
    try:
        lines = _hammer(db_url, tmp_path, rounds=15, keys=2, combos=combos)
        wait_for(lambda: runtime.backend.get_stats().total == 0, timeout=120)
    finally:
        worker.signal()
        worker.wait(timeout=60)
    output = worker.output()
    assert "UniqueViolation" not in output, output[-3000:]
    assert "IntegrityError" not in output, output[-3000:]
    assert not runtime.backend.list_jobs(job_type=JOB_TYPE)  # every job ran to success
    for combo in combos:
        mine = [g for g in lines if g[0] == combo]
        assert any(not g[4] for g in mine), combo
