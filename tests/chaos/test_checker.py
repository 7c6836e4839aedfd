"""The checker itself: it must see each kind of broken guarantee in a made-up run."""

from __future__ import annotations

from datetime import datetime, timezone

from ferroq_core import JobRow
from reliability.audit import Transition
from reliability.checker import Fault, check, percentile
from reliability.ledger import Effect, Ledger, read_ledger

A, B = "host:100:aaaa", "host:200:bbbb"


def _claim(seq: int, job: int, by: str, attempts: int, at: float) -> Transition:
    before = attempts - 1
    return Transition(seq, job, "update", "pending", "claimed", None, by, before, attempts, at)


def _complete(seq: int, job: int, by: str, attempts: int, at: float) -> Transition:
    return Transition(seq, job, "delete", "claimed", None, by, None, attempts, None, at)


def _reap(seq: int, job: int, by: str, attempts: int, at: float) -> Transition:
    return Transition(seq, job, "update", "claimed", "pending", by, None, attempts, attempts, at)


def _run(token: int, pid: int, start: float, end: float | None, ok: bool = True) -> list[Effect]:
    out = [Effect("start", token, pid, start)]
    if end is not None:
        out.append(Effect("end", token, pid, end, ok=ok))
    return out


def test_clean_run_with_a_killed_worker_is_explained() -> None:
    # Job 1 ran on A, A was killed mid-run, the reaper gave it back, B ran it once.
    effects = _run(1, 100, 1.0, None) + _run(1, 200, 4.0, 4.5)
    audit = [_claim(1, 1, A, 1, 0.9), _reap(2, 1, A, 1, 3.5), _claim(3, 1, B, 2, 3.9)]
    audit.append(_complete(4, 1, B, 2, 4.6))
    report = check({1: 1}, {1: True}, effects, audit, [], [Fault("kill", 100, 2.0)])
    assert report.problems == []
    assert report.duplicates_explained == 1
    assert report.recovery == (1.5,)
    assert report.rerun == (2.0,)


def test_each_broken_guarantee_is_reported() -> None:
    now = datetime.now(timezone.utc)
    stuck = JobRow(3, "default", "chaos.work", "{}", "pending", 0, 0, 3, None, None, now, now)
    effects = _run(1, 100, 1.0, 1.5) + _run(1, 200, 2.0, 2.5)  # ran twice, no fault
    effects += _run(2, 100, 1.0, 1.2, ok=False)  # failed, yet accepted as succeeded
    audit = [_claim(1, 1, A, 1, 0.9), _complete(2, 1, A, 1, 1.6)]
    audit += [_claim(3, 2, A, 1, 0.9), _complete(4, 2, A, 1, 1.3), _complete(5, 2, A, 1, 1.4)]
    report = check({1: 1, 2: 2, 3: 3}, {}, effects, audit, [stuck], [])
    assert report.lost == (3,)
    assert report.duplicates_unexplained == (1,)
    assert report.duplicate_completions == (2,)
    assert report.phantom == (2,)
    assert report.zombie_writes_rejected == 1
    assert len(report.problems) == 4


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_ledger_skips_a_line_cut_by_a_kill(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(tmp_path, fsync=False)
    ledger.start(7)
    ledger.end(7, ok=True)
    with (tmp_path / "999.jsonl").open("a") as f:
        f.write('{"k":"start","t":8,"p"')  # a writer killed mid-line
    effects = read_ledger(tmp_path)
    assert [(e.kind, e.token, e.ok) for e in effects] == [("start", 7, None), ("end", 7, True)]
    assert ledger.first_failure(7) is True
    assert ledger.first_failure(7) is False


def test_runs_must_match_accepted_claims() -> None:
    def start(token: int, ts: float, worker: str, attempt: int) -> Effect:
        pid = int(worker.split(":")[1])
        return Effect("start", token, pid, ts, job_id=token, attempt=attempt, worker=worker)

    # Job 1: its one claim (A, attempt 1) started twice. Job 2: ran under a lease (B, 1) the
    # database never granted.
    effects = [start(1, 1.0, A, 1), start(1, 1.1, A, 1), start(2, 1.0, B, 1)]
    effects += [Effect("end", 1, 100, 1.2, ok=True), Effect("end", 2, 200, 1.2, ok=True)]
    audit = [_claim(1, 1, A, 1, 0.9), _complete(2, 1, A, 1, 1.3), _claim(3, 2, A, 1, 0.9)]
    audit.append(_complete(4, 2, A, 1, 1.3))
    report = check({1: 1, 2: 2}, {}, effects, audit, [], [Fault("kill", 100, 1.05)])
    assert report.attempt_run_twice == (1,)
    assert report.unclaimed_runs == (2,)
