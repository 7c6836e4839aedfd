"""How successful attempts are acknowledged: their rows deleted in fenced batch writes that
also store their results and history records, then the ``succeeded`` hooks and log lines.

A row whose lease no longer matches (it was reaped and reclaimed) is left alone, and its
success is reported ``stale``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferroq_core.history_records import Completion
from ferroq_core.jobmodel import DEFAULT_RESULT_TTL
from ferroq_core.runtime import fire
from ferroq_core.storage.results import ResultWrite
from ferroq_core.worker.outcome import describe_row

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.outcome import Outcome

__all__ = ["acknowledge", "settle_successes"]

log = logging.getLogger("ferroq.worker")


def acknowledge(runtime: Runtime, outcomes: Sequence[Outcome]) -> set[int]:
    """Acknowledge successes; return the ids whose lease matched. Three fenced paths, the
    plain one unchanged for jobs that ask for nothing more:

    - a result to store: ``complete_with_results``, which stores each result in the same
      fenced write that deletes its job (a lost lease stores nothing), and the history
      record of a job that also keeps history in that same write;
    - history kept (the job type's ``keep_history``, else the queue's), no result:
      ``complete_with_history``, the record written in the acknowledgement's transaction;
    - the others: the plain batch ``complete``.
    """
    backend = runtime.backend
    # Inline comprehensions, not a call per job: this runs for every success.
    stored = [o for o in outcomes if o.result is not None]
    # --- history: a branch taken only when a job keeps history -------------------------------
    if runtime.config.keep_history:
        kept = [o for o in outcomes if o.job is None or o.job.keep_history is not False]
    else:
        kept = [o for o in outcomes if o.job is not None and o.job.keep_history]
    if not stored and not kept:
        # --- the plain acknowledgement -------------------------------------------------------
        return backend.complete([o.row.lease for o in outcomes])
    if not kept:
        # --- results, no history: the record's fields keep their defaults --------------------
        writes = [
            ResultWrite(o.row.lease, o.result, _result_ttl(o))
            for o in stored
            if o.result is not None
        ]
        if len(stored) == len(outcomes):
            return backend.complete_with_results(writes)
        plain = [o.row.lease for o in outcomes if o.result is None]
        return backend.complete(plain) | backend.complete_with_results(writes)
    # --- history kept by some, with or without results ---------------------------------------
    recorded = {id(o) for o in kept}
    plain = [o.row.lease for o in outcomes if o.result is None and id(o) not in recorded]
    matched = backend.complete(plain) if plain else set()
    only_kept = [Completion(o.row.lease, o.duration) for o in kept if o.result is None]
    if only_kept:
        matched |= backend.complete_with_history(only_kept)
    if stored:
        writes = [
            ResultWrite(o.row.lease, o.result, _result_ttl(o), id(o) in recorded, o.duration)
            for o in stored
            if o.result is not None
        ]
        matched |= backend.complete_with_results(writes)
    return matched


def _result_ttl(outcome: Outcome) -> float:
    """Seconds to keep a result: its dispatch's (the row's), else its type's."""
    ttl = outcome.row.result_ttl
    if ttl is not None:
        return ttl
    job = outcome.job
    return job.result_ttl if job is not None else DEFAULT_RESULT_TTL


def settle_successes(runtime: Runtime, outcomes: Sequence[Outcome]) -> list[str]:
    """Delete the rows of successful attempts in one batch and fire ``ferroq_job_succeeded``
    for each whose lease still matched. Returns ``succeeded`` or ``stale`` per outcome."""
    if not outcomes:
        return []
    matched = acknowledge(runtime, outcomes)
    results: list[str] = []
    # Looked up once per batch, not per job: describe_row() is not free, nor is a hook call.
    logged = log.isEnabledFor(logging.INFO)
    listened = bool(runtime.pm.hook.ferroq_job_succeeded.get_hookimpls())
    batch: list[Outcome] | None = (
        [] if runtime.pm.hook.ferroq_jobs_succeeded.get_hookimpls() else None
    )
    for outcome in outcomes:
        row = outcome.row
        if row.id in matched:
            if logged:
                log.info("%s: succeeded in %.3fs", describe_row(row), outcome.duration)
            if listened:
                fire(runtime.pm, "ferroq_job_succeeded", row=row, duration=outcome.duration)
            if batch is not None:
                batch.append(outcome)
            results.append("succeeded")
        else:
            log.warning("job %s: completion rejected, lease lost (reaped and reclaimed)", row.id)
            results.append("stale")
    if batch:
        rows, durations = [o.row for o in batch], [o.duration for o in batch]
        fire(runtime.pm, "ferroq_jobs_succeeded", rows=rows, durations=durations)
    return results
