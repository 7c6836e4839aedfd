"""Every hookspec is called with its documented arguments, and what it returns is used.

Each test writes a plugin (a class with ``@hookimpl`` methods) and registers it on a fresh
plugin manager with no installed plugins; the SQLite plugin is registered by hand where a
database is needed. ``test_every_hookspec_has_a_call_test`` fails when a hook is added
without a test here.
"""

from __future__ import annotations

import inspect
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import click
import pytest
from click.testing import CliRunner

import ferroq_sqlite.plugin
from ferroq_core import (
    BackendSpec,
    BackoffPolicy,
    EnqueueRequest,
    Job,
    JobRow,
    Pause,
    PauseScope,
    Queue,
    QueueConfig,
    Runtime,
    WorkerConfig,
    WorkerLoop,
    current_job,
    dispatch,
    dispatch_many,
    hookimpl,
    hookspecs,
    make_plugin_manager,
)
from ferroq_core.cli import make_cli
from ferroq_core.cli.worker import worker_argv
from ferroq_core.registry import JobRegistry
from ferroq_core.serialization import JsonSerializer
from ferroq_core.testing import drain, sqlite_queue

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    import pluggy

#: Every hook this module tests, by the test's name (checked against the hookspecs below).
TESTED: dict[str, str] = {}


def covers(hook: str) -> Any:
    def mark(fn: Any) -> Any:
        TESTED[hook] = fn.__name__
        return fn

    return mark


def _pm(*plugins: object, sqlite: bool = False) -> pluggy.PluginManager:
    pm = make_plugin_manager(load_entrypoints=False)
    if sqlite:
        pm.register(ferroq_sqlite.plugin, name="sqlite")
    for plugin in plugins:
        pm.register(plugin)
    return pm


@contextmanager
def _queue(tmp_path: Path, *plugins: object) -> Iterator[Runtime]:
    with sqlite_queue(tmp_path, pm=_pm(*plugins, sqlite=True)) as runtime:
        yield runtime


SEEN: list[str] = []


@attrs.define
class Work(Job):
    job_name = "tests.hook_calls.work"

    label: str
    fail: bool = False

    def handle(self) -> None:
        SEEN.append(self.label)
        if self.fail:
            raise RuntimeError(f"boom {self.label}")


@attrs.define
class Once(Work):
    job_name = "tests.hook_calls.once"
    max_attempts = 1


@pytest.fixture(autouse=True)
def _clear_seen() -> None:
    SEEN.clear()


# -- registries ----------------------------------------------------------------------------


class _FakeBackend:
    def __init__(self, url: Any, options: dict[str, Any]) -> None:
        self.url, self.options, self.closed = url, options, False

    def close(self) -> None:
        self.closed = True


@covers("ferroq_backends")
def test_a_backend_plugin_serves_its_scheme() -> None:
    class Plugin:
        @hookimpl
        def ferroq_backends(self) -> list[BackendSpec]:
            return [BackendSpec("fake", ("fakedb",), _FakeBackend, "ferroq-fake")]

    pm = _pm(Plugin())
    runtime = Runtime.build("fakedb://host/name", QueueConfig(), pm, {"pool_size": 3})
    backend: Any = runtime.backend
    assert isinstance(backend, _FakeBackend)
    assert (str(backend.url), backend.options) == ("fakedb://host/name", {"pool_size": 3})
    runtime.close()
    assert backend.closed


class _Reversing(JsonSerializer):
    name = "reversing"

    def encode(self, job: Any) -> str:
        return super().encode(job)[::-1]

    def decode(self, job_type: Any, payload: str) -> Any:
        return super().decode(job_type, payload[::-1])


@covers("ferroq_serializers")
def test_a_serializer_plugin_encodes_the_payloads(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def ferroq_serializers(self) -> list[JsonSerializer]:
            return [_Reversing()]

    pm = _pm(Plugin(), sqlite=True)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    runtime = Runtime.build(url, QueueConfig(connection="db", serializer="reversing"), pm)
    runtime.backend.migrate()
    try:
        assert isinstance(runtime.serializer, _Reversing)
        job_id = dispatch(Work("rev"), runtime=runtime)
        row = runtime.backend.get_job(int(job_id))
        assert row is not None
        assert row.payload.startswith("}")
        assert row.payload.endswith("{")
        assert drain(runtime=runtime).succeeded == 1
        assert SEEN == ["rev"]
    finally:
        runtime.close()


@covers("ferroq_backoff_policies")
def test_a_backoff_policy_plugin_sets_the_retry_delay(tmp_path: Path) -> None:
    calls: list[tuple[Any, int]] = []

    def delay(job: Any, attempt: int) -> float:
        calls.append((job, attempt))
        return 42.0

    class Plugin:
        @hookimpl
        def ferroq_backoff_policies(self) -> list[BackoffPolicy]:
            return [BackoffPolicy(name="fixed-42", delay=delay)]

        @hookimpl
        def ferroq_job_retrying(self, row: JobRow, error: BaseException, delay: float) -> None:
            delays.append(delay)

    delays: list[float] = []
    pm = _pm(Plugin(), sqlite=True)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    runtime = Runtime.build(url, QueueConfig(connection="db", backoff="fixed-42"), pm)
    runtime.backend.migrate()
    try:
        dispatch(Work("r", fail=True), runtime=runtime)
        assert drain(runtime=runtime).retried == 1
    finally:
        runtime.close()
    assert calls == [(Work("r", fail=True), 1)]
    assert delays == [42.0]


@covers("ferroq_job_types")
def test_a_plugin_registers_job_types_the_registry_does_not_know() -> None:
    @attrs.define
    class Hidden(Job):
        job_name = "tests.hook_calls.hidden"

        def handle(self) -> None:
            pass

    calls: list[None] = []

    class Plugin:
        @hookimpl
        def ferroq_job_types(self) -> list[type[Job]]:
            calls.append(None)
            return [Hidden]

    registry = JobRegistry()  # a fresh one: Hidden registered itself in the default one
    assert registry.get("tests.hook_calls.hidden", _pm(Plugin())) is Hidden
    assert calls == [None]
    assert registry.get("tests.hook_calls.hidden") is Hidden  # registered, not asked again
    assert calls == [None]


# -- tenancy and scope ---------------------------------------------------------------------


@covers("ferroq_capture_tenants")
def test_the_captured_tenant_is_stored_with_the_job(tmp_path: Path) -> None:
    got: list[Any] = []

    class Plugin:
        @hookimpl
        def ferroq_capture_tenants(self, jobs: list[Job]) -> list[str | None]:
            got.append(list(jobs))
            return [None if j.label == "none" else f"tenant-of-{j.label}" for j in jobs]

    class NoOpinion:
        @hookimpl
        def ferroq_capture_tenants(self, jobs: list[Job]) -> None:
            return None

    with _queue(tmp_path, Plugin(), NoOpinion()) as runtime:
        ids = [Work("a").dispatch(), Work("none").dispatch(), Work("b").for_tenant(7).dispatch()]
        ids += dispatch_many([Work("c"), Work("d").for_tenant("own"), Work("none")])
        rows = [runtime.backend.get_job(int(i)) for i in ids]
    assert [r.tenant_id for r in rows if r is not None] == [
        "tenant-of-a",
        None,
        "7",
        "tenant-of-c",
        "own",
        None,
    ]
    # Not asked for jobs with for_tenant(); once per dispatch call, not per job.
    assert got == [[Work("a")], [Work("none")], [Work("c"), Work("none")]]


@covers("ferroq_capture_tenants")
def test_a_capture_result_of_the_wrong_length_is_a_clear_error(tmp_path: Path) -> None:
    class Short:
        @hookimpl
        def ferroq_capture_tenants(self, jobs: list[Job]) -> list[str | None]:
            return ["only-one"]

    with _queue(tmp_path, Short()), pytest.raises(TypeError, match="one entry per job"):
        dispatch_many([Work("a"), Work("b")])


@covers("ferroq_job_scope")
def test_job_scopes_wrap_each_execution(tmp_path: Path) -> None:
    calls: list[tuple[Any, Any]] = []
    events: list[str] = []

    @contextmanager
    def scope(name: str) -> Iterator[None]:
        events.append(f"enter {name}")
        yield
        events.append(f"exit {name}")

    class First:
        @hookimpl
        def ferroq_job_scope(self, job: Job, row: JobRow | None) -> Any:
            calls.append((job, row))
            return scope("first")

    class Second:
        @hookimpl
        def ferroq_job_scope(self, job: Job, row: JobRow | None) -> Any:
            return scope("second")

    class Handler:
        @hookimpl
        def ferroq_job_started(self, row: JobRow, worker_id: str) -> None:
            events.append("started")

    with _queue(tmp_path, First(), Second(), Handler()) as runtime:
        job_id = Work("s").dispatch()
        assert drain(runtime=runtime).succeeded == 1
    ((job, row),) = calls
    assert job == Work("s")
    assert isinstance(row, JobRow)
    assert row.id == int(job_id)
    # the most recently registered plugin's scope is entered first, left last
    assert events == ["started", "enter second", "enter first", "exit first", "exit second"]
    assert SEEN == ["s"]

    calls.clear()
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    sync = Runtime.build(url, QueueConfig(connection="sync"), _pm(First(), sqlite=True))
    try:
        dispatch(Work("inline"), runtime=sync)
    finally:
        sync.close()
    assert calls == [(Work("inline"), None)]  # sync mode: no row


@covers("ferroq_tenant_scope")
def test_the_tenant_scope_wraps_jobs_that_carry_a_tenant(tmp_path: Path) -> None:
    current: list[str | None] = [None]
    asked: list[str] = []

    @contextmanager
    def tenant(tenant_id: str) -> Iterator[None]:
        current[0] = tenant_id
        try:
            yield
        finally:
            current[0] = None

    class Plugin:
        @hookimpl
        def ferroq_tenant_scope(self, tenant_id: str) -> Any:
            asked.append(tenant_id)
            return tenant(tenant_id)

        @hookimpl
        def ferroq_job_succeeded(self, row: JobRow, duration: float) -> None:
            pass

    seen_tenants: list[str | None] = []

    @attrs.define
    class TenantWork(Job):
        job_name = "tests.hook_calls.tenant_work"

        def handle(self) -> None:
            seen_tenants.append(current[0])

    with _queue(tmp_path, Plugin()) as runtime:
        TenantWork().for_tenant("acme").dispatch()
        TenantWork().dispatch()
        assert drain(runtime=runtime).succeeded == 2
    assert asked == ["acme"]  # only for the job that carries a tenant
    assert len(seen_tenants) == 2
    assert set(seen_tenants) == {"acme", None}


# -- command line --------------------------------------------------------------------------


@covers("ferroq_register_commands")
def test_a_plugin_adds_a_command_to_the_command_line(tmp_path: Path) -> None:
    groups: list[click.Group] = []

    class Plugin:
        @hookimpl
        def ferroq_register_commands(self, cli: click.Group) -> None:
            groups.append(cli)

            @cli.command(help="Say which database the command line points at.")
            @click.argument("name")
            @click.pass_obj
            def greet(obj: Any, name: str) -> None:
                click.echo(f"hello {name} from {obj.database_url}")

    cli = make_cli(_pm(Plugin()))
    assert groups == [cli]
    runner = CliRunner()
    helped = runner.invoke(cli, ["--help"], prog_name="ferroq")
    assert helped.exit_code == 0, helped.output
    assert "greet" in helped.output
    assert "Say which database the command line points at." in helped.output
    assert "worker" in helped.output  # core's commands are still there
    url = f"sqlite:///{tmp_path / 'x.db'}"
    ran = runner.invoke(cli, ["--database-url", url, "greet", "you"], prog_name="ferroq")
    assert ran.exit_code == 0, ran.output
    assert ran.output == f"hello you from {url}\n"


@covers("ferroq_worker_options")
def test_a_plugin_adds_an_option_to_the_worker(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def ferroq_worker_options(self) -> list[click.Option]:
            return [click.Option(["--greeting"], default=None, help="Say this at start.")]

    cli = make_cli(_pm(Plugin()))
    helped = CliRunner().invoke(cli, ["worker", "--help"], prog_name="ferroq")
    assert helped.exit_code == 0, helped.output
    assert "--greeting" in helped.output
    assert "Say this at start." in helped.output
    # Under --processes every child gets the plugins' options as given.
    argv = worker_argv(WorkerConfig(), [], 0, {"greeting": "hi"}, cli.commands["worker"])
    assert argv[-2:] == ["--greeting", "hi"]
    assert "--greeting" not in worker_argv(
        WorkerConfig(), [], 0, {"greeting": None}, cli.commands["worker"]
    )


@covers("ferroq_worker_scope")
def test_worker_scopes_wrap_the_run_of_a_worker_process(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []

    class Plugin:
        @hookimpl
        def ferroq_worker_options(self) -> list[click.Option]:
            return [click.Option(["--greeting"], default=None)]

        @hookimpl
        def ferroq_worker_scope(
            self, runtime: Runtime, options: Mapping[str, Any], role: str
        ) -> Any:
            events.append(("called", (dict(options), role, isinstance(runtime, Runtime))))

            @contextmanager
            def scope() -> Iterator[None]:
                events.append(("entered", None))
                yield
                events.append(("left", None))

            return scope()

    url = f"sqlite:///{tmp_path / 'w.db'}"
    cli = make_cli(_pm(Plugin(), sqlite=True))
    runner = CliRunner()
    assert runner.invoke(cli, ["--database-url", url, "migrate"]).exit_code == 0
    ran = runner.invoke(
        cli,
        ["--database-url", url, "worker", "--greeting", "hi", "--stop-when-empty"],
        prog_name="ferroq",
    )
    assert ran.exit_code == 0, ran.output
    assert events == [
        ("called", ({"greeting": "hi"}, "worker", True)),
        ("entered", None),
        ("left", None),
    ]


# -- dispatch ------------------------------------------------------------------------------


@covers("ferroq_dispatch_scope")
def test_dispatch_scopes_wrap_the_write_of_each_dispatch_call(tmp_path: Path) -> None:
    seen: list[tuple[str, Any]] = []

    class Plugin:
        runtime: Runtime

        @hookimpl
        def ferroq_dispatch_scope(self, requests: Sequence[EnqueueRequest]) -> Any:
            @contextmanager
            def scope() -> Iterator[None]:
                seen.append(("enter", self.runtime.backend.get_stats().pending))
                yield
                seen.append(("exit", self.runtime.backend.get_stats().pending))

            seen.append(("requests", [r.payload for r in requests]))
            return scope()

    plugin = Plugin()
    with _queue(tmp_path, plugin) as runtime:
        plugin.runtime = runtime
        dispatch_many([Work("a"), Work("b")])
        Work("c").dispatch()
    assert seen == [
        ("requests", ['{"label":"a","fail":false}', '{"label":"b","fail":false}']),
        ("enter", 0),
        ("exit", 2),
        ("requests", ['{"label":"c","fail":false}']),
        ("enter", 2),
        ("exit", 3),
    ]


@covers("ferroq_dispatch_requests")
def test_a_plugin_rewrites_the_rows_a_dispatch_writes(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def ferroq_dispatch_requests(
            self, requests: Sequence[EnqueueRequest]
        ) -> list[EnqueueRequest]:
            return [attrs.evolve(r, payload=r.payload.replace('"a', '"z')) for r in requests]

    class Wrong:
        @hookimpl
        def ferroq_dispatch_requests(
            self, requests: Sequence[EnqueueRequest]
        ) -> list[EnqueueRequest]:
            return []

    with _queue(tmp_path, Plugin()) as runtime:
        dispatch_many([Work("a1"), Work("b1")])
        drain(runtime=runtime)
    assert SEEN == ["z1", "b1"]
    SEEN.clear()
    # A result of the wrong length is logged; the rows are written as they were.
    (tmp_path / "wrong").mkdir()
    with _queue(tmp_path / "wrong", Wrong()) as runtime:
        Work("a2").dispatch()
        drain(runtime=runtime)
    assert SEEN == ["a2"]


# -- lifecycle events ----------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def ferroq_job_enqueued(self, job_id: int, request: EnqueueRequest, duplicate: bool) -> None:
        self.events.append(("enqueued", {"job_id": job_id, "request": request, "dup": duplicate}))

    @hookimpl
    def ferroq_job_started(self, row: JobRow, worker_id: str) -> None:
        self.events.append(("started", {"row": row, "worker_id": worker_id}))

    @hookimpl
    def ferroq_job_succeeded(self, row: JobRow, duration: float) -> None:
        self.events.append(("succeeded", {"row": row, "duration": duration}))

    @hookimpl
    def ferroq_job_retrying(self, row: JobRow, error: BaseException, delay: float) -> None:
        self.events.append(("retrying", {"row": row, "error": error, "delay": delay}))

    @hookimpl
    def ferroq_job_failed(self, row: JobRow, error: BaseException) -> None:
        self.events.append(("failed", {"row": row, "error": error}))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [args for name, args in self.events if name == kind]


@covers("ferroq_job_enqueued")
def test_enqueued_fires_per_stored_job_with_its_request(tmp_path: Path) -> None:
    rec = Recorder()
    with _queue(tmp_path, rec):
        first = Work("e").with_idempotency_key("k").dispatch()
        again = Work("e").with_idempotency_key("k").dispatch()
    (one, two) = rec.of("enqueued")
    assert one["job_id"] == int(first)
    assert one["dup"] is False
    assert two["job_id"] == int(again) == int(first)
    assert two["dup"] is True
    request = one["request"]
    assert isinstance(request, EnqueueRequest)
    assert (request.job_type, request.queue, request.idempotency_key) == (
        "tests.hook_calls.work",
        "default",
        "k",
    )


@covers("ferroq_job_started")
def test_started_fires_before_the_handler_with_the_claimed_row(tmp_path: Path) -> None:
    rec = Recorder()
    with _queue(tmp_path, rec) as runtime:
        job_id = Work("go").dispatch()
        drain(runtime=runtime)
    (started,) = rec.of("started")
    assert started["row"].id == int(job_id)
    assert started["row"].attempts == 1
    assert started["worker_id"].count(":") == 2  # host:pid:uuid


@covers("ferroq_job_succeeded")
def test_succeeded_fires_with_the_duration(tmp_path: Path) -> None:
    rec = Recorder()
    with _queue(tmp_path, rec) as runtime:
        job_id = Work("ok").dispatch()
        drain(runtime=runtime)
    (done,) = rec.of("succeeded")
    assert done["row"].id == int(job_id)
    assert 0.0 <= done["duration"] < 60.0
    assert [name for name, _ in rec.events] == ["enqueued", "started", "succeeded"]


@covers("ferroq_job_retrying")
def test_retrying_fires_with_the_error_and_the_delay(tmp_path: Path) -> None:
    rec = Recorder()
    with _queue(tmp_path, rec) as runtime:
        job_id = Work("again", fail=True).dispatch()
        drain(runtime=runtime)
    (retry,) = rec.of("retrying")
    assert retry["row"].id == int(job_id)
    assert str(retry["error"]) == "boom again"
    assert 0.0 <= retry["delay"] <= Work.backoff_cap


@covers("ferroq_job_failed")
def test_failed_fires_when_attempts_are_spent(tmp_path: Path) -> None:
    rec = Recorder()
    with _queue(tmp_path, rec) as runtime:
        job_id = Once("last", fail=True).dispatch()
        assert drain(runtime=runtime).failed == 1
    (failed,) = rec.of("failed")
    assert failed["row"].id == int(job_id)
    assert isinstance(failed["error"], RuntimeError)
    assert str(failed["error"]) == "boom last"
    assert rec.of("retrying") == []


class BatchRecorder:
    def __init__(self) -> None:
        self.claimed: list[tuple[list[int], str]] = []
        self.succeeded: list[tuple[list[int], list[float]]] = []

    @hookimpl
    def ferroq_jobs_claimed(self, rows: Sequence[JobRow], worker_id: str) -> None:
        self.claimed.append(([r.id for r in rows], worker_id))

    @hookimpl
    def ferroq_jobs_succeeded(self, rows: Sequence[JobRow], durations: Sequence[float]) -> None:
        self.succeeded.append(([r.id for r in rows], list(durations)))


def _work_once(runtime: Runtime) -> None:
    config = WorkerConfig(queues=("default",), concurrency=10, stop_when_empty=True)
    assert WorkerLoop(runtime, config, handle_signals=False).run() == 0


@covers("ferroq_jobs_enqueued")
def test_enqueued_batches_fire_once_per_dispatch_call(tmp_path: Path) -> None:
    calls: list[tuple[list[str], list[tuple[int, bool]]]] = []

    class Plugin:
        @hookimpl
        def ferroq_jobs_enqueued(
            self, requests: Sequence[EnqueueRequest], results: Sequence[Any]
        ) -> None:
            calls.append(([r.payload for r in requests], [(r.id, r.duplicate) for r in results]))

    with _queue(tmp_path, Plugin()):
        ids = [int(i) for i in dispatch_many([Work("a"), Work("b").with_idempotency_key("k")])]
        again = int(Work("b").with_idempotency_key("k").dispatch())
    assert calls == [
        (
            ['{"label":"a","fail":false}', '{"label":"b","fail":false}'],
            [(ids[0], False), (ids[1], False)],
        ),
        (['{"label":"b","fail":false}'], [(again, True)]),
    ]
    assert again == ids[1]


@covers("ferroq_jobs_claimed")
def test_claimed_fires_once_per_claim_with_its_rows(tmp_path: Path) -> None:
    rec = BatchRecorder()
    with _queue(tmp_path, rec) as runtime:
        ids = [int(i) for i in dispatch_many([Work(str(n)) for n in range(5)])]
        _work_once(runtime)
        ((claimed, worker_id),) = rec.claimed
        assert sorted(claimed) == ids
        assert worker_id.count(":") == 2
        rec.claimed.clear()
        one = int(Work("x").dispatch())
        drain(runtime=runtime)
    assert [c for c, _ in rec.claimed] == [[one]]


def test_a_row_whose_attempts_are_spent_is_not_claimed_to_start(tmp_path: Path) -> None:
    rec = BatchRecorder()
    with _queue(tmp_path, rec) as runtime:
        spent = int(Once("killed its worker").dispatch())
        (row,) = runtime.backend.claim(["default"], "host:1:dead", 1)
        runtime.backend.requeue([row.lease])  # its worker died on the last attempt
        fresh = int(Work("fresh").dispatch())
        _work_once(runtime)
        assert runtime.backend.get_stats().failed == 1
    assert [i for batch, _ in rec.claimed for i in batch] == [fresh]
    assert SEEN == ["fresh"]
    assert spent != fresh


@covers("ferroq_jobs_succeeded")
def test_succeeded_batches_fire_with_each_duration(tmp_path: Path) -> None:
    rec = BatchRecorder()
    with _queue(tmp_path, rec) as runtime:
        ids = [int(i) for i in dispatch_many([Work(str(n)) for n in range(5)])]
        Work("bad", fail=True).dispatch()  # a failure is not a success
        _work_once(runtime)
    done = [i for batch, _ in rec.succeeded for i in batch]
    assert sorted(done) == ids
    for batch, durations in rec.succeeded:
        assert len(durations) == len(batch)
        assert all(0.0 <= d < 60.0 for d in durations)


def test_hook_errors_never_affect_a_job(tmp_path: Path) -> None:
    class Broken:
        @hookimpl
        def ferroq_dispatch_scope(self, requests: Sequence[EnqueueRequest]) -> Any:
            raise RuntimeError("scope hook")

        @hookimpl
        def ferroq_dispatch_requests(self, requests: Sequence[EnqueueRequest]) -> Any:
            raise RuntimeError("rewrite hook")

        @hookimpl
        def ferroq_job_enqueued(self, job_id: int, request: Any, duplicate: bool) -> None:
            raise RuntimeError("enqueued hook")

        @hookimpl
        def ferroq_jobs_claimed(self, rows: Sequence[JobRow], worker_id: str) -> None:
            raise RuntimeError("claimed hook")

        @hookimpl
        def ferroq_job_started(self, row: JobRow, worker_id: str) -> None:
            raise RuntimeError("started hook")

        @hookimpl
        def ferroq_jobs_succeeded(self, rows: Sequence[JobRow], durations: Sequence[float]) -> None:
            raise RuntimeError("succeeded batch hook")

        @hookimpl
        def ferroq_job_succeeded(self, row: JobRow, duration: float) -> None:
            raise RuntimeError("succeeded hook")

        @hookimpl
        def ferroq_job_retrying(self, row: JobRow, error: BaseException, delay: float) -> None:
            raise RuntimeError("retrying hook")

        @hookimpl
        def ferroq_job_failed(self, row: JobRow, error: BaseException) -> None:
            raise RuntimeError("failed hook")

    class BadScope:
        @hookimpl
        def ferroq_dispatch_scope(self, requests: Sequence[EnqueueRequest]) -> Any:
            @contextmanager
            def scope() -> Iterator[None]:
                raise RuntimeError("entering")
                yield

            return scope()

    with _queue(tmp_path, Broken(), BadScope()) as runtime:
        dispatch_many([Work("ok1"), Work("ok2")])
        Once("bad", fail=True).dispatch()
        _work_once(runtime)
        assert runtime.backend.get_stats().failed == 1
        assert runtime.backend.get_stats().pending == 0
        Work("ok3").dispatch()
        Work("again", fail=True).dispatch()
        result = drain(runtime=runtime, advance_time=True)
    assert sorted(SEEN) == ["again", "again", "again", "bad", "ok1", "ok2", "ok3"]
    assert (result.succeeded, result.retried, result.failed) == (1, 2, 1)


class ControlRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def ferroq_paused(self, pause: Pause) -> None:
        self.events.append(("paused", (pause.scope, pause.name, pause.reason)))

    @hookimpl
    def ferroq_resumed(self, pause: Pause) -> None:
        self.events.append(("resumed", (pause.scope, pause.name, pause.reason)))

    @hookimpl
    def ferroq_job_cancelled(self, row: JobRow, running: bool) -> None:
        self.events.append(("cancelled", (row.id, running)))


@covers("ferroq_paused")
def test_paused_fires_once_per_pause_recorded(tmp_path: Path) -> None:
    rec = ControlRecorder()
    with _queue(tmp_path, rec):
        Queue.pause("emails", reason="outage")
        Queue.pause("emails")  # in force already: no event
        Queue.pause(tenant="acme")
    assert rec.events == [
        ("paused", (PauseScope.QUEUE, "emails", "outage")),
        ("paused", (PauseScope.TENANT, "acme", None)),
    ]


@covers("ferroq_resumed")
def test_resumed_fires_with_the_pause_removed(tmp_path: Path) -> None:
    rec = ControlRecorder()
    with _queue(tmp_path, rec):
        Queue.pause(job_type="app:Report", reason="slow")
        Queue.resume(job_type="app:Report")
        Queue.resume(job_type="app:Report")  # nothing to resume: no event
    assert rec.events[1:] == [("resumed", (PauseScope.JOB_TYPE, "app:Report", "slow"))]


@attrs.define
class Patient(Job):
    job_name = "hooks.patient"

    def handle(self) -> None:
        ctx = current_job()
        for _ in range(600):  # at most a minute
            ctx.raise_if_cancelled()
            time.sleep(0.1)


@covers("ferroq_job_cancelled")
def test_cancelled_fires_for_pending_and_running_jobs(tmp_path: Path) -> None:
    rec = ControlRecorder()
    with _queue(tmp_path, rec) as runtime:
        pending = Work("never").dispatch()
        Queue.cancel(pending)
        running = Patient().dispatch()
        config = WorkerConfig(queues=("default",), heartbeat_interval=0.2, stop_when_empty=True)
        worker = WorkerLoop(runtime, config, handle_signals=False)
        thread = threading.Thread(target=worker.run)
        thread.start()
        deadline = time.monotonic() + 30
        while runtime.backend.get_stats().claimed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Queue.cancel(running).requested == (int(running),)
        thread.join(60)
        assert not thread.is_alive()
    assert rec.events == [("cancelled", (int(pending), False)), ("cancelled", (int(running), True))]


def test_every_hookspec_has_a_call_test() -> None:
    specs = {
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, "ferroq_spec", None) is not None
    }
    assert specs == set(TESTED), f"hooks without a call test: {sorted(specs - set(TESTED))}"


class RegistryEvents:
    """Records the worker registry's hooks."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def ferroq_worker_registered(self, worker: Any) -> None:
        self.events.append(("registered", (worker.id, worker.role, worker.queues)))

    @hookimpl
    def ferroq_worker_deregistered(self, worker_id: str, reason: str) -> None:
        self.events.append(("deregistered", (worker_id, reason)))

    @hookimpl
    def ferroq_restart_requested(self, requested_at: Any) -> None:
        self.events.append(("restart", requested_at))


@covers("ferroq_worker_registered")
@covers("ferroq_worker_deregistered")
def test_a_worker_registers_itself_and_deregisters_at_a_clean_exit(tmp_path: Path) -> None:
    plugin = RegistryEvents()
    with _queue(tmp_path, plugin) as runtime:
        config = WorkerConfig(queues=("q1", "q2"), stop_when_empty=True, sleep=0.05)
        worker = WorkerLoop(runtime, config, handle_signals=False)
        assert worker.run() == 0
    assert plugin.events == [
        ("registered", (worker.worker_id, "worker", ("q1", "q2"))),
        ("deregistered", (worker.worker_id, "stopped")),
    ]


@covers("ferroq_restart_requested")
def test_restart_requested_fires_in_the_asking_process(tmp_path: Path) -> None:
    plugin = RegistryEvents()
    with _queue(tmp_path, plugin) as runtime:
        url = runtime.config.database_url
        result = CliRunner().invoke(make_cli(runtime.pm), ["--database-url", url, "restart"])
        assert result.exit_code == 0, result.output
        assert [kind for kind, _ in plugin.events] == ["restart"]
        assert plugin.events[0][1] == runtime.backend.restart_requested_at()
