"""The context's actions in this process: ``handle(self, ctx)``, ``ctx.release()``,
``ctx.fail()``, ``ctx.progress()`` and ``ctx.heartbeat()`` in ``drain()``, ``run_job()`` and
sync mode, and which jobs keep history."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest

from ferroq_core import (
    CurrentJob,
    Job,
    JobGivenUp,
    JobReleased,
    Queue,
    QueueConfig,
    current_job,
)
from ferroq_core.testing import drain, run_job

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime

EVENTS: list[str] = []


@attrs.define
class TakesCtx(Job):
    job_name = "test.actions.takes_ctx"

    def handle(self, ctx: CurrentJob) -> None:
        assert ctx is current_job()
        EVENTS.append(f"ctx {ctx.attempt}")


@attrs.define
class AsyncTakesCtx(Job):
    job_name = "test.actions.async_takes_ctx"

    async def handle(self, ctx: CurrentJob) -> None:
        EVENTS.append(f"async ctx {ctx.job_type}")


@attrs.define
class Releases(Job):
    """Releases itself twice (10 s each), then reports progress and succeeds."""

    job_name = "test.actions.releases"
    max_attempts = 1

    def handle(self) -> None:
        ctx = current_job()
        EVENTS.append(f"run {ctx.attempt}")
        if EVENTS.count("run 1") < 3:
            ctx.release(10)
        ctx.progress(1.0, "all done")
        assert ctx.heartbeat() is True
        assert ctx.last_progress is not None
        assert ctx.last_progress.message == "all done"

    def failed(self, error: BaseException) -> None:
        EVENTS.append(f"failed {type(error).__name__}")


@attrs.define
class GivesUp(Job):
    job_name = "test.actions.gives_up"
    max_attempts = 4

    def handle(self, ctx: CurrentJob) -> None:
        EVENTS.append("run")
        ctx.fail("no point")

    def failed(self, error: BaseException) -> None:
        EVENTS.append(f"failed {type(error).__name__}: {error}")


@attrs.define
class NeverKept(Job):
    job_name = "test.actions.never_kept"
    keep_history: ClassVar[bool | None] = False

    def handle(self) -> None:
        pass


@attrs.define
class AlwaysKept(Job):
    job_name = "test.actions.always_kept"
    keep_history: ClassVar[bool | None] = True

    def handle(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _clear() -> None:
    EVENTS.clear()


def test_handle_may_take_the_context_everywhere(runtime: Runtime) -> None:
    TakesCtx().dispatch()
    AsyncTakesCtx().dispatch()
    drain()
    run_job(TakesCtx())
    run_job(AsyncTakesCtx())
    assert EVENTS == [
        "ctx 1",
        "async ctx test.actions.async_takes_ctx",
        "ctx 1",
        "async ctx test.actions.async_takes_ctx",
    ]


def test_drain_honours_release_fail_and_stores_progress(runtime: Runtime) -> None:
    released = Releases().dispatch()
    given_up = GivesUp().dispatch()
    result = drain(advance_time=True)
    assert (result.released, result.succeeded, result.failed, result.retried) == (2, 1, 1, 0)
    assert [type(e).__name__ for _row, e in result.errors] == ["JobGivenUp"]
    assert EVENTS.count("run 1") == 3
    assert "failed JobReleased" not in EVENTS
    assert EVENTS.count("failed JobGivenUp: no point") == 1
    assert EVENTS.count("run") == 1
    backend = runtime.backend
    assert backend.get_progress([released])[released].message == "all done"
    row = backend.get_job(given_up)
    assert row is not None
    assert (row.status, row.attempts) == ("failed", 1)
    assert [e.attempt for e in backend.attempt_errors(given_up)] == [1]


def test_release_delays_the_next_run(runtime: Runtime) -> None:
    job_id = Releases().dispatch()
    drain()  # no advance_time: the released job waits its 10 s
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert (row.status, row.attempts) == ("pending", 0)
    assert (row.available_at - runtime.backend.now()).total_seconds() > 5


def test_run_job_and_sync_mode_raise_the_request(tmp_path: Path) -> None:
    with pytest.raises(JobReleased):
        run_job(Releases())
    with pytest.raises(JobGivenUp, match="no point"):
        run_job(GivesUp())
    Queue.init(f"sqlite:///{tmp_path / 'sync.db'}", QueueConfig(connection="sync"))
    try:
        EVENTS.clear()
        with pytest.raises(JobReleased):
            Releases().dispatch()
        with pytest.raises(JobGivenUp):
            GivesUp().dispatch()
    finally:
        Queue.reset()
    # failed() runs for a job given up, never for a release.
    assert EVENTS == ["run 1", "run", "failed JobGivenUp: no point"]


def test_bad_progress_and_release_are_refused(runtime: Runtime) -> None:
    seen: list[str] = []

    @attrs.define
    class Bad(Job):
        job_name = "test.actions.bad"

        def handle(self, ctx: CurrentJob) -> None:
            for call in (lambda: ctx.progress(1.5), lambda: ctx.release(-1)):
                try:
                    call()
                except ValueError as exc:
                    seen.append(str(exc))

    run_job(Bad())
    assert seen == [
        "progress fraction must be from 0.0 to 1.0, got 1.5",
        "release delay must not be negative, got -1.0",
    ]


def test_a_job_types_keep_history_wins_over_the_setting(runtime: Runtime) -> None:
    kept, skipped = AlwaysKept().dispatch(), NeverKept().dispatch()
    drain()
    assert runtime.backend.get_history(kept) is not None
    assert runtime.backend.get_history(skipped) is None
    on = attrs.evolve(runtime, config=attrs.evolve(runtime.config, keep_history=True))
    skipped_again, plain = NeverKept().dispatch(), TakesCtx().dispatch()
    drain(runtime=on)
    assert runtime.backend.get_history(skipped_again) is None
    assert runtime.backend.get_history(plain) is not None
