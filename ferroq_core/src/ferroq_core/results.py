"""Reading and awaiting stored results on a runtime: what :meth:`JobId.result` and
:meth:`JobId.aresult` run (on the process-wide queue's runtime unless given one).

A result is stored by the worker with the job's acknowledgement when its type sets
``store_result`` (docs/results.md); waiting is woken by the database: NOTIFY on PostgreSQL,
the change detection on SQLite, from any process or host.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from ferroq_core.errors import ConfigError, JobFailed, ResultMissing

if TYPE_CHECKING:
    from ferroq_core.runtime import Runtime
    from ferroq_core.storage.results import ResultState

__all__ = ["aresult", "result", "result_state"]

#: How long one blocking wait of :func:`aresult` lasts at most: a cancelled ``aresult`` leaves
#: its helper thread waiting no longer than this.
_ASYNC_SLICE = 1.0


def result_state(job_id: int, runtime: Runtime) -> ResultState:
    """What the database holds for ``job_id`` now, without waiting: its stored result (still
    encoded), or its row's status and error."""
    return runtime.backend.read_result(int(job_id))


def result(job_id: int, timeout: float | None, runtime: Runtime) -> Any:
    """The decoded result of ``job_id``, waiting up to ``timeout`` seconds (None: no limit;
    0: only look). See :meth:`ferroq_core.JobId.result` for what it raises."""
    rt = runtime
    limit = _limit(timeout)
    job_id = int(job_id)
    wait = rt.backend.wait_result
    state = rt.backend.read_result(job_id) if limit == 0 else wait(job_id, limit)
    return _finish(rt, state, timeout)


async def aresult(job_id: int, timeout: float | None, runtime: Runtime) -> Any:
    """:func:`result` without blocking the event loop: the waits run on a helper thread, in
    slices of at most a second, so cancelling the task ends them soon."""
    rt = runtime
    limit = _limit(timeout)
    job_id = int(job_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    state = await asyncio.to_thread(rt.backend.read_result, job_id)
    while not state.finished:
        left = deadline - loop.time()
        if left <= 0:
            break
        state = await asyncio.to_thread(rt.backend.wait_result, job_id, min(left, _ASYNC_SLICE))
    return _finish(rt, state, timeout)


def _limit(timeout: float | None) -> float:
    if timeout is None:
        return math.inf
    if math.isnan(timeout) or timeout < 0:
        raise ConfigError(f"timeout must be a number of seconds >= 0 or None, not {timeout!r}")
    return float(timeout)


def _finish(rt: Runtime, state: ResultState, timeout: float | None) -> Any:
    if state.result is not None:
        return rt.serializer.decode_result(state.result.value)
    if state.status == "failed":
        raise JobFailed(state.job_id, state.error)
    if state.status is None:
        raise ResultMissing(
            f"job {state.job_id} has no stored result and is not queued: it succeeded without "
            "store_result, its result expired (result_ttl), it was cancelled or deleted, or it "
            "never existed"
        )
    raise TimeoutError(f"job {state.job_id} is still {state.status} after {timeout}s")
