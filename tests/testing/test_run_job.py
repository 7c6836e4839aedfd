"""run_job(): one job, executed as a worker would (serialize, decode, scope, handle)."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from ferroq_core import (
    Job,
    JobDecodeError,
    JobRow,
    PayloadTooLarge,
    QueueConfig,
    SerializationError,
    hookimpl,
)
from ferroq_core.testing import run_job
from ferroq_core.testing._context import LocalContext
from ferroq_tenancy import current_tenant, register_tenant_capture_hook, tenant_scope
from tests.testing.jobs import AlwaysFails, AsyncJob, SendEmail, failed_calls, ran

if TYPE_CHECKING:
    from collections.abc import Iterator


@attrs.define
class Counts(Job):
    """Keeps state on the instance the handler ran on."""

    n: int
    seen: list[int] = attrs.field(factory=list)

    def handle(self) -> None:
        self.seen.append(self.n)


@attrs.define
class LiesAboutItsType(Job):
    #: Annotated int but given a string: encodes fine, cannot decode.
    count: int

    def handle(self) -> None:
        pass


@attrs.define
class HoldsAnObject(Job):
    thing: object

    def handle(self) -> None:
        pass


@attrs.define
class RecordsTenant(Job):
    def handle(self) -> None:
        ran.append(("tenant", current_tenant()))


MARKER: ContextVar[str | None] = ContextVar("test_run_job_marker", default=None)


@attrs.define
class SetsMarker(Job):
    def handle(self) -> None:
        MARKER.set("set by a job")


@attrs.define
class ReadsMarker(Job):
    def handle(self) -> None:
        ran.append(("marker", MARKER.get()))


def test_runs_a_decoded_copy_and_returns_it() -> None:
    original = Counts(n=3)
    done = run_job(original)
    assert done == Counts(n=3, seen=[3])
    assert done is not original
    assert original.seen == [], "the handler ran on the instance the worker would decode"
    run_job(SendEmail(to="a@example.com"))
    assert ran == [("email", "a@example.com")]


def test_a_job_that_cannot_round_trip_fails() -> None:
    with pytest.raises(JobDecodeError, match="count"):
        run_job(LiesAboutItsType(count="many"))  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="thing"):
        run_job(HoldsAnObject(thing=object()))


def test_async_handlers_run_to_completion() -> None:
    run_job(AsyncJob(value=9))
    assert ran == [("async", 9)]


def test_errors_propagate_and_failed_is_not_called() -> None:
    with pytest.raises(ValueError, match="boom"):
        run_job(AlwaysFails(reason="boom"))
    assert failed_calls == [], "one attempt: a worker would retry, not call failed()"


def test_tenant_scope_is_entered() -> None:
    run_job(RecordsTenant(), tenant=7)
    run_job(RecordsTenant().for_tenant("acme"))
    run_job(RecordsTenant())
    assert ran == [("tenant", "7"), ("tenant", "acme"), ("tenant", None)]


def test_job_scope_plugins_see_a_claimed_row() -> None:
    ctx = LocalContext.from_env()
    rows: list[JobRow] = []

    class Scope:
        @hookimpl
        def ferroq_job_scope(self, job: Job, row: JobRow | None) -> Any:
            assert row is not None
            rows.append(row)

            @contextmanager
            def scope() -> Iterator[None]:
                ran.append(("scope", "enter"))
                yield
                ran.append(("scope", "exit"))

            return scope()

    ctx.pm.register(Scope())
    run_job(SendEmail(to="s").on_queue("mail"), runtime=ctx)
    assert ran == [("scope", "enter"), ("email", "s"), ("scope", "exit")]
    (row,) = rows
    assert (row.queue, row.job_type, row.status, row.attempts) == (
        "mail",
        SendEmail.type_name(),
        "claimed",
        1,
    )


def test_a_job_runs_in_a_context_of_its_own_and_scopes_go_through_pluggy() -> None:
    # As under a worker, a stored job without a tenant sees none, whatever the caller has
    # current, and context variables the job sets end with it; a wrapper registered on the
    # hook sees what pluggy returns and may extend it.
    ctx = LocalContext.from_env()
    seen: list[int] = []

    @contextmanager
    def scope() -> Iterator[None]:
        ran.append(("wrapped", current_tenant()))
        yield

    class Wrapper:
        @hookimpl(wrapper=True)
        def ferroq_job_scope(self, job: Job, row: JobRow | None) -> Iterator[None]:
            scopes: list[Any] = yield
            seen.append(len(scopes))
            return [*scopes, scope()]

    previous = register_tenant_capture_hook(lambda job: None)
    try:
        with tenant_scope("outer"):
            run_job(RecordsTenant(), runtime=ctx)
            ctx.pm.register(Wrapper())
            run_job(RecordsTenant(), runtime=ctx)
            assert current_tenant() == "outer"  # the caller's own context is untouched
    finally:
        register_tenant_capture_hook(previous)
    run_job(RecordsTenant(), runtime=ctx)
    assert seen == [0, 0]
    assert ran == [("tenant", None)] + [("wrapped", None), ("tenant", None)] * 2


def test_context_variables_a_job_sets_end_with_it() -> None:
    ctx = LocalContext.from_env()
    run_job(SetsMarker(), runtime=ctx)
    assert MARKER.get() is None
    run_job(ReadsMarker(), runtime=ctx)
    with tenant_scope("outer"):
        MARKER.set("caller's")
        try:
            run_job(ReadsMarker(), runtime=ctx)
        finally:
            MARKER.set(None)
    assert ran == [("marker", None), ("marker", None)]


def test_the_payload_limit_applies() -> None:
    ctx = attrs.evolve(LocalContext.from_env(), config=QueueConfig(max_payload_bytes=10))
    with pytest.raises(PayloadTooLarge):
        run_job(SendEmail(to="a-long-address@example.com"), runtime=ctx)
