"""Real worker processes, both backends: a job type limited to k running per limit key (a
payload field, not the tenant) never has more than k running per key across two worker
processes, by the ledger of every start and end; every job runs; and the tenants, which cut
across the keys, are not what is counted."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from reliability.harness import Bench
from reliability.limited_jobs import PerAccount
from reliability.scenarios.limits import max_running

if TYPE_CHECKING:
    from pathlib import Path

K = PerAccount.concurrency_limit
ACCOUNTS = 6


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_k_per_limit_key_holds_across_two_worker_processes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = str(request.getfixturevalue("pg_server_url")) if backend == "postgres" else None
    rng = random.Random(22)
    with Bench.open(backend, tmp_path / "keys", server) as bench:
        account: dict[int, str] = {}
        jobs = []
        for token in range(1, 241):
            account[token] = f"acct-{token % ACCOUNTS}"
            # Two tenants, each with three of the accounts: a per-tenant count would hold
            # them to 2 each; a count per key lets each tenant run up to 6.
            job = PerAccount(token, round(rng.uniform(0.02, 0.08), 3), account=account[token])
            jobs.append((token, job.for_tenant(f"t{token % 2}"), True))
        bench.dispatch(jobs)
        extra = ["--import", "reliability.limited_jobs"]
        for name in ("w0", "w1"):
            bench.start_worker(name, concurrency=8, extra=extra)
        bench.wait_drained(180)
        report = bench.report()
        assert report.problems == [], report.problems
        assert report.succeeded == len(jobs)
        effects = bench.effects()
        tokens = set(account)
        per_key = max_running(effects, tokens, bench.faults, key=lambda e: account[e.token])
        assert set(per_key) == set(account.values())
        assert max(per_key.values()) <= K, per_key
        per_tenant = max_running(effects, tokens, bench.faults)
        assert max(per_tenant.values()) > K, f"the tenants were what was counted: {per_tenant}"
        pids = {e.pid for e in effects if e.kind == "start"}
        assert len(pids) == 2, "both worker processes ran jobs"
