"""What a dispatch may store (ferroq_core.bounds): one queue-name grammar for every entry
point, size limits on every stored text, delays bounded, and nothing inserted on a refusal.
Runs on both backends."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pytest

from ferroq_core import (
    ConfigError,
    EnqueueRequest,
    FerroqError,
    InvalidDispatch,
    Job,
    QueueConfig,
    SerializationError,
    WorkerConfig,
    dispatch,
    dispatch_later,
    dispatch_many,
    dispatch_to,
)
from ferroq_core.bounds import (
    MAX_DELAY_SECONDS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JOB_TYPE_CHARS,
    MAX_QUEUE_NAME_CHARS,
    MAX_TENANT_ID_CHARS,
    queue_name_problem,
)

if TYPE_CHECKING:
    from ferroq_core import Runtime


@attrs.define
class Note(Job):
    job_name = "tests.bounds-note"

    text: str = "hi"

    def handle(self) -> None:
        pass


BAD_QUEUES = [
    "",
    "a,b",
    " high",
    "high ",
    "tab\tbed",
    "esc\x1b[31m",
    "nul\x00",
    "c1\x85",
    "q" * (MAX_QUEUE_NAME_CHARS + 1),
]


@pytest.mark.parametrize("name", ["default", "high-priority", "e-mails.v2", "ü", "a b"])
def test_good_queue_names_pass(name: str) -> None:
    assert queue_name_problem(name) is None


@pytest.mark.parametrize("name", BAD_QUEUES)
def test_bad_queue_names_are_refused_by_every_entry_point(runtime: Runtime, name: str) -> None:
    assert queue_name_problem(name)
    entry_points: list[Any] = [
        lambda: Note().on_queue(name),
        lambda: Note().pending().on_queue(name),
        lambda: dispatch_to(Note(), name),
        lambda: dispatch_many([Note(), Note().pending().on_queue(name)]),
        lambda: runtime.backend.enqueue([EnqueueRequest(name, "t", "{}")]),
    ]
    if name:  # a job type whose queue is empty or None goes to the default queue
        entry_points.append(lambda: dispatch_many([Note(), _with_class_queue(name)()]))
    for call in entry_points:
        with pytest.raises(InvalidDispatch) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="queue"):
        WorkerConfig(queues=("default", name))
    with pytest.raises(ConfigError, match="QUEUE_DEFAULT"):
        QueueConfig(default_queue=name)
    assert runtime.backend.list_jobs() == []


def _with_class_queue(name: str) -> type[Job]:
    @attrs.define
    class Queued(Job):
        job_name = "tests.bounds-queued"
        queue: ClassVar[str | None] = name

        def handle(self) -> None:
            pass

    return Queued


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda: Note().for_tenant("t" * (MAX_TENANT_ID_CHARS + 1)).dispatch(), "tenant id"),
        (
            lambda: Note().with_idempotency_key("k" * (MAX_IDEMPOTENCY_KEY_CHARS + 1)).dispatch(),
            "idempotency key",
        ),
        (lambda: EnqueueRequest("q", "j" * (MAX_JOB_TYPE_CHARS + 1), "{}"), "job type name"),
    ],
)
def test_stored_texts_have_a_size_limit(runtime: Runtime, call: Any, what: str) -> None:
    with pytest.raises(InvalidDispatch, match=what):
        call()
    assert runtime.backend.list_jobs() == []


def test_an_idempotency_key_method_past_the_limit_is_refused(runtime: Runtime) -> None:
    @attrs.define
    class Keyed(Job):
        job_name = "tests.bounds-keyed"

        def idempotency_key(self) -> str:
            return "k" * 20_000_000

        def handle(self) -> None:
            pass

    with pytest.raises(InvalidDispatch, match="idempotency key is 20000000 characters"):
        dispatch_many([Note(), Keyed()])
    assert runtime.backend.list_jobs() == []


def test_texts_at_the_limits_are_stored_whole(runtime: Runtime) -> None:
    queue = "q" * MAX_QUEUE_NAME_CHARS
    tenant = "t" * MAX_TENANT_ID_CHARS
    key = "k" * MAX_IDEMPOTENCY_KEY_CHARS
    job_id = Note().on_queue(queue).for_tenant(tenant).with_idempotency_key(key).dispatch()
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert (row.queue, row.tenant_id, row.idempotency_key) == (queue, tenant, key)


@pytest.mark.parametrize(
    "delay",
    [
        math.nan,
        math.inf,
        -math.inf,
        -1.0,
        1e12,
        10**400,
        MAX_DELAY_SECONDS + 1,
        timedelta(days=40_000),
    ],
)
def test_delays_out_of_bounds_insert_nothing(runtime: Runtime, delay: Any) -> None:
    for call in (
        lambda: Note().delay(delay),
        lambda: dispatch_later(Note(), delay),
        lambda: dispatch_many([Note(), Note().pending().delay(delay)]),
        lambda: runtime.backend.enqueue([EnqueueRequest("q", "t", "{}", delay=(
            delay.total_seconds() if isinstance(delay, timedelta) else delay
        ))]),
    ):  # fmt: skip
        with pytest.raises(InvalidDispatch, match="delay"):
            call()
    assert runtime.backend.list_jobs() == []


def test_the_longest_delay_is_stored_and_listed(runtime: Runtime) -> None:
    job_id = dispatch_later(Note(), MAX_DELAY_SECONDS)
    row = runtime.backend.get_job(job_id)
    assert row is not None
    years = (row.available_at - row.created_at).days / 365.25
    assert 99.9 < years <= 100.0
    assert [r.id for r in runtime.backend.list_jobs()] == [job_id]


def test_a_lone_surrogate_is_a_serialization_error(runtime: Runtime) -> None:
    with pytest.raises(SerializationError, match="lone surrogate") as info:
        dispatch(Note(text="broken \ud800 text"))
    assert "\ud800" not in str(info.value)
    assert runtime.backend.list_jobs() == []


def test_a_deeply_nested_payload_is_a_serialization_error(runtime: Runtime) -> None:
    @attrs.define
    class Deep(Job):
        job_name = "tests.bounds-deep"

        data: Any = None

        def handle(self) -> None:
            pass

    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(FerroqError):
        dispatch(Deep(data=nested))
    assert runtime.backend.list_jobs() == []
