"""Done-when test for tenancy: 2,000 jobs over 20 tenants on a real `ferroq worker` process
with 8 slots (sync handlers on threads, async ones on the worker's event loop), per backend.

Every handler writes the tenant it saw to a ledger file; the test compares each line with the
tenant stored on the job's row at dispatch. Jobs are mixed at random (random priorities), so
tenant-less jobs keep following tenant jobs on the same threads and on the same loop.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ferroq_core import Job, JobState, PendingDispatch, dispatch_many
from ferroq_tenancy import PROVIDER_ENV, tenant_scope
from tests.tenancy.jobs import AsyncRecordTenant, NeedsTenant, RecordTenant

if TYPE_CHECKING:
    from ferroq_core import Runtime

REPO = Path(__file__).resolve().parents[2]
#: Ten text ids and ten int ids (stored as "100".."109").
TENANTS: list[str | int] = [f"t{i}" for i in range(10)] + [100 + i for i in range(10)]
GHOSTS = 20  # jobs for tenants the provider does not know: parked by TenantNotFound
TOTAL = 2000


def _dispatch_mix(ledger: str) -> dict[str, str | None]:
    """Dispatch TOTAL jobs; returns key -> the tenant (as text) each is meant to carry."""
    rng = random.Random(6)
    meant: dict[str, str | None] = {}
    explicit: list[Job | PendingDispatch] = []
    captured: dict[str | int, list[Job | PendingDispatch]] = {t: [] for t in TENANTS}
    for i in range(TOTAL - GHOSTS):
        key = f"k{i}"
        kind = AsyncRecordTenant if i % 4 == 0 else RecordTenant
        pending = kind(key=key, ledger=ledger).with_priority(rng.randrange(10))
        roll = rng.random()
        tenant = rng.choice(TENANTS)
        if roll < 0.15:  # no tenant at all
            meant[key] = None
            explicit.append(pending)
        elif roll < 0.55:  # an explicit for_tenant()
            meant[key] = str(tenant)
            explicit.append(pending.for_tenant(tenant))
        else:  # captured from the dispatching code's scope
            meant[key] = str(tenant)
            captured[tenant].append(pending)
    for i in range(GHOSTS):
        key = f"ghost{i}"
        meant[key] = f"ghost-{i}"
        explicit.append(NeedsTenant(key=key, ledger=ledger).for_tenant(f"ghost-{i}"))
    dispatch_many(explicit)
    for tenant, items in captured.items():
        with tenant_scope(tenant):
            dispatch_many(items)
    return meant


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_2000_jobs_20_tenants_every_handler_sees_its_rows_tenant(
    runtime: Runtime, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.tsv")
    meant = _dispatch_mix(ledger)
    rows = runtime.backend.list_jobs(limit=TOTAL + 1)
    assert len(rows) == TOTAL
    stored = {json.loads(r.payload)["key"]: r.tenant_id for r in rows}
    assert stored == meant  # capture: for_tenant, else the scope, else none

    # Keep the caller's PYTHONPATH after the repo: it names the source tree under test.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, **{PROVIDER_ENV: "tests.tenancy.jobs:AppTenants"})
    env.pop("FERROQ_LOAD_PLUGINS", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ferroq_core.cli",
            "--database-url",
            runtime.config.database_url,
            "worker",
            "--concurrency",
            "8",
            "--stop-when-empty",
            "--sleep",
            "0.2",
            "--import",
            "tests.tenancy.jobs",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    seen: dict[str, str | None] = {}
    last_on: dict[str, str | None] = {}  # thread -> tenant of the job it ran before
    after_tenant = Counter[str]()  # tenant-less jobs right after a tenant job, per thread
    for line in Path(ledger).read_text().splitlines():
        key, tenant, thread = line.split("\t")
        assert key not in seen, f"{key} ran twice"
        seen[key] = None if tenant == "-" else tenant
        if stored[key] is None and last_on.get(thread) is not None:
            after_tenant[thread] += 1
        last_on[thread] = stored[key]
    ran = {k: v for k, v in stored.items() if not k.startswith("ghost")}
    mismatches = {k: (stored[k], seen.get(k)) for k in ran if seen.get(k, "?") != ran[k]}
    assert mismatches == {}
    assert set(seen) == set(ran)
    kinds = Counter("none" if v is None else "tenant" for v in seen.values())
    assert kinds["none"] > 200
    assert kinds["tenant"] > 1500
    # the bleed case really happened, on job threads and on the event loop thread
    assert len([t for t in after_tenant if t != "ferroq-async"]) >= 2
    assert after_tenant["ferroq-async"] > 0

    failed = runtime.backend.list_jobs(state=JobState.FAILED, limit=TOTAL)
    assert sorted(r.tenant_id or "" for r in failed) == sorted(f"ghost-{i}" for i in range(GHOSTS))
    for row in failed:
        assert row.attempts == row.max_attempts == 2
        assert row.error is not None
        assert row.error.startswith("TenantNotFound: tenant 'ghost-")
    assert runtime.backend.get_stats().total == GHOSTS
