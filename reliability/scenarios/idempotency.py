"""Scenario 6, idempotency under contention: several processes dispatch the same keys many
times each (singly and in batches, each process in its own random order), with no worker
running: exactly one job per key must exist, and exactly one dispatch per key must report a
new job. A dispatch inside a transaction that is rolled back must leave no job (and must not
hold the key).

Run as ``python -m reliability.scenarios.idempotency URL KEYS ROUNDS SEED GO_FILE`` it is one
of the dispatching processes.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import sqlalchemy as sa

from ferroq_core import FerroqError, QueueConfig, Runtime, make_plugin_manager
from ferroq_core.dispatching import dispatch, dispatch_many
from reliability.harness import ScenarioResult
from reliability.jobs import Keyed
from reliability.scenarios.base import Context, Timer

__all__ = ["run"]

BATCH = 20


class _Rollback(Exception):
    """Raised inside a transaction to roll it back."""


def _app_engine(url: str) -> sa.engine.Engine:
    """An engine as the application would have its own (not ferroq's)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool)


def spam(url: str, keys: int, rounds: int, seed: int, go_file: str) -> dict[str, Any]:
    """One dispatching process: every key ``rounds`` times; returns its counts."""
    runtime = Runtime.build(
        url, QueueConfig(connection="db", database_url=url), make_plugin_manager()
    )
    rng = random.Random(seed)
    names = [f"k{i}" for i in range(keys)]
    new = dup = 0
    errors: list[str] = []
    while not os.path.exists(go_file):  # start together, for real contention
        time.sleep(0.01)
    for r in range(rounds):
        rng.shuffle(names)
        try:
            if r % 2 == 0:
                ids = [dispatch(Keyed(k), runtime=runtime) for k in names]
            else:
                ids = []
                for start in range(0, keys, BATCH):
                    chunk = [Keyed(k) for k in names[start : start + BATCH]]
                    ids += dispatch_many(chunk, runtime=runtime)
        except FerroqError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        new += sum(1 for i in ids if not i.duplicate)
        dup += sum(1 for i in ids if i.duplicate)
    # Rolled-back dispatches, of fresh keys and of keys that already exist.
    engine = _app_engine(url)
    for i in range(10):
        for key in (f"rb-{seed}-{i}", names[i]):
            try:
                with engine.begin() as conn:
                    dispatch(Keyed(key), connection=conn, runtime=runtime)
                    raise _Rollback
            except _Rollback:
                pass
            except FerroqError as exc:
                errors.append(f"rolled-back dispatch: {type(exc).__name__}: {exc}")
    engine.dispose()
    runtime.close()
    return {"new": new, "dup": dup, "errors": errors}


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    procs_n, keys, rounds = (4, 100, 3) if ctx.quick else (8, 1000, 20)
    problems: list[str] = []
    with ctx.bench("idempotency") as bench:
        go = bench.workdir / "go"
        module = "reliability.scenarios.idempotency"
        args = [bench.url, str(keys), str(rounds)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", module, *args, str(seed), str(go)],
                env=bench.env(),
                stdout=subprocess.PIPE,
                text=True,
            )
            for seed in range(procs_n)
        ]
        time.sleep(0.5)
        go.touch()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=600)
            if p.returncode != 0:
                problems.append(f"a dispatching process exited with {p.returncode}")
                continue
            results.append(json.loads(out.strip().splitlines()[-1]))
        rows = bench.runtime.backend.list_jobs(job_type="chaos.keyed", limit=10_000_000)
        per_key = Counter(r.idempotency_key for r in rows)
        doubled = [k for k, n in per_key.items() if n > 1]
        missing = keys - sum(1 for k in per_key if k and not k.startswith("rb-"))
        rolled_back = [k for k in per_key if k and k.startswith("rb-")]
        new = sum(r["new"] for r in results)
        errors = [e for r in results for e in r["errors"]]
        if doubled:
            problems.append(f"{len(doubled)} keys have more than one job")
        if missing:
            problems.append(f"{missing} keys have no job")
        if rolled_back:
            problems.append(f"{len(rolled_back)} rolled-back dispatches left a job")
        if new != keys:
            problems.append(f"{new} dispatches reported a new job, expected {keys}")
        if errors:
            problems.append(f"{len(errors)} dispatches failed, first: {errors[0]}")
        # A rolled-back key is free: dispatching it now makes a new job.
        again = dispatch(Keyed("rb-0-0"), runtime=bench.runtime)
        if again.duplicate:
            problems.append("a rolled-back dispatch still holds its idempotency key")
        figures = {
            "processes": procs_n,
            "keys": keys,
            "dispatches": procs_n * keys * rounds,
            "jobs": len(rows),
            "keys_doubled": len(doubled),
            "new_reported": new,
            "rolled_back_left": len(rolled_back),
            "errors": len(errors),
        }
    return ScenarioResult("idempotency", ctx.backend, figures, problems, timer.seconds)


if __name__ == "__main__":
    url, n_keys, n_rounds, seed_, go_path = sys.argv[1:6]
    print(json.dumps(spam(url, int(n_keys), int(n_rounds), int(seed_), go_path)))
