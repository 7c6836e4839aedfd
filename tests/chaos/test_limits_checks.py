"""The limits scenario's own checks catch what they look for: overlapping runs of one tenant
(a killed run ends at its kill) and starts crowded into one window."""

from __future__ import annotations

from reliability.checker import Fault
from reliability.ledger import Effect
from reliability.scenarios.limits import max_in_window, max_running


def _run(token: int, pid: int, start: float, end: float | None, tenant: str) -> list[Effect]:
    out = [Effect("start", token, pid, start, tenant=tenant)]
    if end is not None:
        out.append(Effect("end", token, pid, end, ok=True))
    return out


def test_overlapping_runs_of_a_tenant_are_counted() -> None:
    effects = [
        *_run(1, 10, 0.0, 1.0, "a"),
        *_run(2, 11, 0.5, 1.5, "a"),
        *_run(3, 12, 0.6, 0.7, "a"),
        *_run(4, 12, 0.6, 0.7, "b"),
    ]
    effects.sort(key=lambda e: e.ts)
    assert max_running(effects, {1, 2, 3, 4}, []) == {"a": 3, "b": 1}


def test_a_run_that_ends_as_another_starts_does_not_overlap_it() -> None:
    effects = [*_run(1, 10, 0.0, 1.0, "a"), *_run(2, 11, 1.0, 2.0, "a")]
    assert max_running(effects, {1, 2}, []) == {"a": 1}


def test_a_killed_run_lasts_until_its_kill() -> None:
    effects = [*_run(1, 10, 0.0, None, "a"), *_run(2, 11, 2.0, 3.0, "a")]
    assert max_running(effects, {1, 2}, [Fault("kill", 10, 1.5)]) == {"a": 1}
    assert max_running(effects, {1, 2}, [Fault("kill", 10, 2.5)]) == {"a": 2}


def test_starts_in_a_sliding_window() -> None:
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.6], 1.0) == 3
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_window([], 1.0) == 0
