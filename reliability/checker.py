"""The checker: joins the effects ledger, the database audit and the fault log.

It answers, per run: was anything lost, did anything run twice without a fault to explain it,
did the queue ever accept two completions of one job, how many late (zombie) completions did
the fencing reject, and how long did the queue take to recover each job a fault interrupted.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import attrs

from reliability.audit import Transition, worker_pid

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ferroq_core import JobRow
    from reliability.ledger import Effect

__all__ = ["Fault", "Report", "check", "percentile"]

#: A duplicate start may follow a fault on the previous runner's pid that happened this long
#: before the previous start (a self-inflicted exit is logged when its job starts, and a job
#: claimed in the same batch can start a moment later).
FAULT_SLACK = 1.0
#: Fault kinds that end their process at once (SIGKILL, ``os._exit``, a supervisor's kill
#: of a hung job's process): whatever it had not acknowledged is run again.
DEATHS = frozenset({"kill", "os_exit", "hang"})


@attrs.frozen
class Fault:
    """One injected (or deliberately provoked) fault."""

    #: ``kill``, ``stop``, ``term``, ``db``, ``os_exit``, ``hard_timeout``...
    kind: str
    #: The process it hit; None for a fault of the whole database.
    pid: int | None
    #: When it started (epoch seconds); for a provoked death, the earliest it can have been.
    at: float
    #: When it ended (SIGCONT, database back), or the latest a provoked death can have been;
    #: None for an instant fault.
    until: float | None = None

    @property
    def end(self) -> float:
        return self.at if self.until is None else self.until


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@attrs.frozen
class Report:
    """What the checker found. ``problems`` is empty when every guarantee held."""

    dispatched: int
    succeeded: int
    failed: int
    #: Dispatched, never succeeded nor failed (includes jobs still pending or claimed).
    lost: tuple[int, ...]
    #: Accepted as succeeded without a successful run in the ledger on the accepting worker.
    phantom: tuple[int, ...]
    #: Job bodies started, in total.
    starts: int
    #: Re-runs after a deliberate failure (the retry policy at work, not duplicates).
    retries: int
    #: Re-runs of a job whose previous run was on a process a fault hit.
    duplicates_explained: int
    #: Re-runs nothing explains (tokens).
    duplicates_unexplained: tuple[int, ...]
    #: Jobs whose completion the queue accepted more than once (tokens).
    duplicate_completions: tuple[int, ...]
    #: Late successful runs whose completion the fencing refused.
    zombie_writes_rejected: int
    #: Runs that finished on a process killed before it acknowledged them (run again).
    unacknowledged: int
    #: Seconds from each fault to the queue taking back each job the faulty process held.
    recovery: tuple[float, ...]
    #: Seconds from each fault to each interrupted job starting again elsewhere.
    rerun: tuple[float, ...]
    #: Jobs a fault interrupted that the queue never took back.
    unrecovered: int
    #: Jobs expected to succeed that ended failed, and the reverse (tokens).
    wrong_outcome: tuple[int, ...]
    #: Runs whose (job id, worker, attempt) matches no claim the database accepted (tokens).
    unclaimed_runs: tuple[int, ...] = ()
    #: Jobs whose one attempt (one claim) started more than once (tokens).
    attempt_run_twice: tuple[int, ...] = ()

    @property
    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} lost (tokens {list(self.lost)[:10]})")
        if self.phantom:
            found.append(f"{len(self.phantom)} completed without running {list(self.phantom)[:10]}")
        if self.duplicates_unexplained:
            found.append(
                f"{len(self.duplicates_unexplained)} unexplained duplicate starts "
                f"(tokens {list(self.duplicates_unexplained)[:10]})"
            )
        if self.duplicate_completions:
            found.append(f"{len(self.duplicate_completions)} duplicate accepted completions")
        if self.unrecovered:
            found.append(f"{self.unrecovered} interrupted jobs never taken back")
        if self.unclaimed_runs:
            found.append(
                f"{len(self.unclaimed_runs)} runs match no accepted claim "
                f"(tokens {list(self.unclaimed_runs)[:10]})"
            )
        if self.attempt_run_twice:
            found.append(
                f"{len(self.attempt_run_twice)} claims ran twice "
                f"(tokens {list(self.attempt_run_twice)[:10]})"
            )
        if self.wrong_outcome:
            found.append(
                f"{len(self.wrong_outcome)} jobs ended unlike expected "
                f"(tokens {list(self.wrong_outcome)[:10]})"
            )
        return found

    def summary(self) -> dict[str, Any]:
        return {
            "dispatched": self.dispatched,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "lost": len(self.lost),
            "phantom": len(self.phantom),
            "starts": self.starts,
            "retries": self.retries,
            "dup_explained": self.duplicates_explained,
            "dup_unexplained": len(self.duplicates_unexplained),
            "dup_completions": len(self.duplicate_completions),
            "zombie_rejected": self.zombie_writes_rejected,
            "unacknowledged": self.unacknowledged,
            "recovery_p50": percentile(self.recovery, 50),
            "recovery_p95": percentile(self.recovery, 95),
            "recovery_max": max(self.recovery, default=None),
            "rerun_p50": percentile(self.rerun, 50),
            "rerun_max": max(self.rerun, default=None),
            "unrecovered": self.unrecovered,
            "wrong_outcome": len(self.wrong_outcome),
            "unclaimed_runs": len(self.unclaimed_runs),
            "attempt_run_twice": len(self.attempt_run_twice),
        }


def _explained(prev: Effect, nxt: Effect, faults: Iterable[Fault]) -> bool:
    for f in faults:
        if f.pid is None:
            # A database outage explains a re-run of any attempt it overlapped.
            end = f.until if f.until is not None else f.at
            if f.at <= nxt.ts and prev.ts <= end + FAULT_SLACK:
                return True
        elif f.pid == prev.pid and prev.ts - FAULT_SLACK <= f.end and f.at <= nxt.ts:
            return True
    return False


def check(
    tokens: Mapping[int, int],
    expect_ok: Mapping[int, bool],
    effects: Sequence[Effect],
    audit: Sequence[Transition],
    remaining: Iterable[JobRow],
    faults: Sequence[Fault],
) -> Report:
    """Check one run.

    :param tokens: job id -> token, for every job the scenario dispatched.
    :param expect_ok: token -> True when the job should end succeeded, False when failed.
    :param effects: the ledger.
    :param audit: the database audit.
    :param remaining: every row still in ``ferroq_jobs`` after the run.
    :param faults: the faults injected (and provoked) during the run.
    """
    rows = {r.id: r for r in remaining}
    by_job: dict[int, list[Transition]] = defaultdict(list)
    for t in audit:
        by_job[t.job_id].append(t)
    by_token: dict[int, list[Effect]] = defaultdict(list)
    for e in effects:
        by_token[e.token].append(e)

    succeeded = failed = 0
    lost: list[int] = []
    phantom: list[int] = []
    dup_completions: list[int] = []
    wrong: list[int] = []
    zombies = unacked = 0
    for job_id, token in tokens.items():
        completions = [t for t in by_job[job_id] if t.is_completion]
        row = rows.get(job_id)
        parked = row is not None and row.status == "failed"
        if len(completions) + int(parked) > 1:
            dup_completions.append(token)
        if completions:
            succeeded += 1
            pid = worker_pid(completions[0].old_by)
            oks = [e for e in by_token[token] if e.kind == "end" and e.ok]
            if not any(e.pid == pid for e in oks):
                phantom.append(token)
            for e in oks:
                if e.pid == pid:
                    continue
                # A run that finished on a process killed before it could acknowledge is not
                # a zombie: it never wrote. Anything else was refused by the fence.
                if any(f.kind in DEATHS and f.pid == e.pid and f.end >= e.ts for f in faults):
                    unacked += 1
                else:
                    zombies += 1
        elif parked:
            failed += 1
        else:
            lost.append(token)
        if (completions or parked) and bool(completions) != expect_ok.get(token, True):
            wrong.append(token)

    starts = retries = explained = 0
    unexplained: list[int] = []
    for token, effs in by_token.items():
        begun = [e for e in effs if e.kind == "start"]
        starts += len(begun)
        for prev, nxt in itertools.pairwise(begun):
            ended = [e for e in effs if e.kind == "end" and e.pid == prev.pid and e.ts >= prev.ts]
            if ended and ended[0].ok is False and ended[0].ts <= nxt.ts:
                retries += 1
            elif _explained(prev, nxt, faults):
                explained += 1
            else:
                unexplained.append(token)

    unclaimed, twice = _runs_vs_claims(tokens, by_job, by_token)
    recovery, rerun, unrecovered = _recovery(tokens, by_job, by_token, faults)
    return Report(
        dispatched=len(tokens),
        succeeded=succeeded,
        failed=failed,
        lost=tuple(sorted(lost)),
        phantom=tuple(sorted(phantom)),
        starts=starts,
        retries=retries,
        duplicates_explained=explained,
        duplicates_unexplained=tuple(sorted(set(unexplained))),
        duplicate_completions=tuple(sorted(dup_completions)),
        zombie_writes_rejected=zombies,
        unacknowledged=unacked,
        recovery=tuple(recovery),
        rerun=tuple(rerun),
        unrecovered=unrecovered,
        wrong_outcome=tuple(sorted(wrong)),
        unclaimed_runs=unclaimed,
        attempt_run_twice=twice,
    )


def _runs_vs_claims(
    tokens: Mapping[int, int],
    by_job: Mapping[int, list[Transition]],
    by_token: Mapping[int, list[Effect]],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Every run the ledger saw must be one claim the database accepted, run once."""
    unclaimed: set[int] = set()
    twice: set[int] = set()
    for job_id, token in tokens.items():
        claims = {(t.new_by, t.new_attempts) for t in by_job.get(job_id, []) if t.is_claim}
        seen: set[tuple[str | None, int | None]] = set()
        for e in by_token.get(token, []):
            if e.kind != "start" or e.job_id is None:
                continue
            lease = (e.worker, e.attempt)
            if e.job_id != job_id or lease not in claims:
                unclaimed.add(token)
            if lease in seen:
                twice.add(token)
            seen.add(lease)
    return tuple(sorted(unclaimed)), tuple(sorted(twice))


def _recovery(
    tokens: Mapping[int, int],
    by_job: Mapping[int, list[Transition]],
    by_token: Mapping[int, list[Effect]],
    faults: Sequence[Fault],
) -> tuple[list[float], list[float], int]:
    """For each fault on a process: every job that process held when hit, how long until the
    queue took it back (the transition ending that claim) and until it started again."""
    recovery: list[float] = []
    rerun: list[float] = []
    unrecovered = 0
    process_faults = [f for f in faults if f.pid is not None and f.kind in ("kill", "stop")]
    for job_id, token in tokens.items():
        history = by_job.get(job_id, [])
        for f in process_faults:
            held = None
            for t in history:
                if t.at > f.at:
                    break
                if t.is_claim and worker_pid(t.new_by) == f.pid:
                    held = t
                elif held is not None and t.ends_claim and t.old_by == held.new_by:
                    held = None
            if held is None:
                continue
            back = next(
                (t for t in history if t.at > f.at and t.ends_claim and t.old_by == held.new_by),
                None,
            )
            if back is None:
                unrecovered += 1
                continue
            recovery.append(back.at - f.at)
            again = next(
                (
                    e
                    for e in by_token.get(token, [])
                    if e.kind == "start" and e.pid != f.pid and e.ts > f.at
                ),
                None,
            )
            if again is not None:
                rerun.append(again.ts - f.at)
    return recovery, rerun, unrecovered
