"""The reliability scenarios in their --quick form, on SQLite and Postgres, with real worker
processes (see docs/reliability.md; the full run is ``python -m reliability.run``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from reliability.cluster import find_pg_bin
from reliability.netpartition import unavailable
from reliability.run import run_scenario
from reliability.scenarios import POSTGRES_ONLY, SCENARIOS
from reliability.scenarios.base import Context

if TYPE_CHECKING:
    from pathlib import Path


def _cases() -> list[Any]:
    """Every scenario on Postgres, and on SQLite those that mean something there."""
    cases: list[Any] = []
    for scenario in SCENARIOS:
        # The shutdown scenario gives each worker SHUTDOWN + 1 s after SIGTERM.
        timing = [pytest.mark.timing] if scenario == "shutdown" else []
        if scenario not in POSTGRES_ONLY:
            cases.append(pytest.param(scenario, "sqlite", marks=timing, id=f"{scenario}-sqlite"))
        postgres = [pytest.mark.postgres, *timing]
        cases.append(pytest.param(scenario, "postgres", marks=postgres, id=f"{scenario}-postgres"))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "backend"), _cases())
def test_scenario_quick(
    scenario: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = None
    if scenario == "partition" and (why := unavailable()) is not None:
        if os.environ.get("FERROQ_REQUIRE_POSTGRES", "") not in ("", "0"):
            pytest.fail(f"the partition scenario cannot run: {why}")
        pytest.skip(f"the partition scenario cannot run: {why}")
    if backend == "postgres":
        if scenario in ("dbfaults", "failover") and find_pg_bin() is None:
            if os.environ.get("FERROQ_REQUIRE_POSTGRES", "") not in ("", "0"):
                pytest.fail("initdb/pg_ctl not found: the throwaway cluster cannot start")
            pytest.skip("initdb/pg_ctl not found (set FERROQ_PG_BIN)")
        server = str(request.getfixturevalue("pg_server_url"))
    result = run_scenario(Context(backend, True, tmp_path, server), scenario)
    assert result.passed, f"{scenario} on {backend}: " + "; ".join(result.problems)
    if scenario != "idempotency":
        assert result.figures["lost"] == 0
        assert result.figures["dup_unexplained"] == 0
        assert result.figures["dup_completions"] == 0
