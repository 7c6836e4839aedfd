"""Sync mode (QUEUE_CONNECTION unset or ``sync``): dispatch runs the job inline."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import attrs
import pytest

from ferroq_core import (
    Job,
    JobDecodeError,
    Queue,
    QueueConfig,
    SerializationError,
    dispatch_many,
)
from ferroq_tenancy import current_tenant

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_core import Runtime

events: list[object] = []


@attrs.define
class Greet(Job):
    name: str
    seen: list[str] = attrs.field(factory=list)

    def handle(self) -> None:
        self.seen.append(self.name)
        events.append(("greet", self.name, threading.current_thread() is threading.main_thread()))


@attrs.define
class Explodes(Job):
    reason: str

    def handle(self) -> None:
        raise KeyError(self.reason)

    def failed(self, error: BaseException) -> None:
        events.append(("failed", error))


@attrs.define
class AsyncGreet(Job):
    name: str

    async def handle(self) -> None:
        await asyncio.sleep(0)
        events.append(("async", self.name))


@attrs.define
class WhoAmI(Job):
    def handle(self) -> None:
        events.append(("tenant", current_tenant()))


@attrs.define
class BadFailed(Job):
    def handle(self) -> None:
        raise ValueError("handler")

    def failed(self, error: BaseException) -> None:
        raise RuntimeError("failed() itself breaks")


@attrs.define
class LiesAboutItsType(Job):
    count: int

    def handle(self) -> None:
        events.append("never")


@pytest.fixture
def sync_queue(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[Runtime]:
    monkeypatch.delenv("QUEUE_CONNECTION", raising=False)
    events.clear()
    runtime = Queue.init(sqlite_url, QueueConfig.from_env())
    runtime.backend.migrate()
    assert runtime.config.connection == "sync"
    yield runtime
    Queue.reset()


def test_dispatch_runs_inline_and_writes_nothing(sync_queue: Runtime) -> None:
    job = Greet(name="ada")
    job_id = job.delay(60).on_queue("elsewhere").dispatch()
    assert events == [("greet", "ada", True)], "ran at once, in the caller's thread"
    assert job_id.inline
    assert int(job_id) == 0
    assert not job_id.duplicate
    assert "inline" in repr(job_id)
    assert job.seen == [], "the handler ran on a decoded copy, as a worker would"
    assert sync_queue.backend.get_stats().total == 0


def test_dispatch_many_runs_each_in_order(sync_queue: Runtime) -> None:
    ids = dispatch_many([Greet(name="a"), Greet(name="b")])
    assert [e[1] for e in events] == ["a", "b"]  # type: ignore[index]
    assert all(i.inline for i in ids)


def test_an_error_is_raised_after_failed_is_called_once(sync_queue: Runtime) -> None:
    with pytest.raises(KeyError, match="no such user") as info:
        Explodes(reason="no such user").dispatch()
    assert events == [("failed", info.value)]


def test_an_error_in_failed_does_not_hide_the_jobs_error(sync_queue: Runtime) -> None:
    with pytest.raises(ValueError, match="handler"):
        BadFailed().dispatch()


def test_async_handlers_work(sync_queue: Runtime) -> None:
    AsyncGreet(name="plain").dispatch()

    async def from_inside_a_running_loop() -> None:
        AsyncGreet(name="in-loop").dispatch()

    asyncio.run(from_inside_a_running_loop())
    assert events == [("async", "plain"), ("async", "in-loop")]


def test_the_tenant_scope_is_entered(sync_queue: Runtime) -> None:
    WhoAmI().for_tenant("acme").dispatch()
    WhoAmI().dispatch()
    assert events == [("tenant", "acme"), ("tenant", None)]


def test_encoding_and_decoding_errors_surface(sync_queue: Runtime) -> None:
    with pytest.raises(SerializationError, match="field 'name'"):
        Greet(name={"a", "set"}).dispatch()  # type: ignore[arg-type]
    with pytest.raises(JobDecodeError, match="count"):
        LiesAboutItsType(count="many").dispatch()  # type: ignore[arg-type]
    assert events == []


def test_a_connection_writes_a_row_even_in_sync_mode(sync_queue: Runtime) -> None:
    engine = sync_queue.backend.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        job_id = Greet(name="later").dispatch(connection=conn)
    assert not job_id.inline
    assert events == []
    assert sync_queue.backend.get_stats().pending == 1


def test_db_mode_writes_a_row(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.setenv("QUEUE_CONNECTION", "db")
    events.clear()
    runtime = Queue.init(sqlite_url)
    runtime.backend.migrate()
    job_id = Greet(name="stored").dispatch()
    assert not job_id.inline
    assert events == []
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert row.job_type == Greet.type_name()
