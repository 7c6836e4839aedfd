"""A schedule's definition made from a job, as a dispatch makes its row.

A schedule stores a payload, not a dispatch: what a dispatch of its job would decide (the job
type's name, queue, priority and attempts, and the limit key: the key given with
``.with_limit_key()``, else the value of the payload field the type names in ``limit_key``)
is decided once, when the schedule is saved, by the dispatch's own code
(:class:`~ferroq_core.dispatch_requests.RequestBuilder`), and kept in the
:class:`~ferroq_core.schedule_records.ScheduleSpec`. Every tick's job is then stored with that
key (docs/limits.md); a schedule has no tenant, so without a key its jobs have none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.dispatch_requests import RequestBuilder
from ferroq_core.dispatching import PendingDispatch
from ferroq_core.errors import FerroqError, InvalidDispatch, InvalidSchedule, UnknownJobType
from ferroq_core.schedule_records import ScheduleSpec

if TYPE_CHECKING:
    from ferroq_core.cron import Cron
    from ferroq_core.job import Job
    from ferroq_core.runtime import Runtime
    from ferroq_core.schedule_records import CatchUp

__all__ = ["edited_limit_key", "job_and_limit_key", "spec_from_job"]

#: The dispatch options a schedule does not keep: :class:`PendingDispatch` fields and the
#: methods that set them.
_NOT_KEPT = (
    ("queue", ".on_queue()"),
    ("delay_seconds", ".delay()"),
    ("idempotency_key", ".with_idempotency_key()"),
    ("tenant_id", ".for_tenant()"),
    ("priority", ".with_priority()"),
    ("unique", ".with_unique()"),
    ("result_ttl", ".with_stored_result()"),
)


def job_and_limit_key(job: Job | PendingDispatch) -> tuple[Job, str | None]:
    """The job a schedule enqueues, and the limit key given with it (``.with_limit_key()``,
    the one dispatch option a schedule keeps).

    :raises InvalidSchedule: another dispatch option was given.
    """
    if not isinstance(job, PendingDispatch):
        return job, None
    plain = PendingDispatch(job.job)
    given = [method for field, method in _NOT_KEPT if getattr(job, field) != getattr(plain, field)]
    if given:
        raise InvalidSchedule(
            "a schedule keeps no dispatch option but .with_limit_key(), not "
            f"{', '.join(given)}: pass the queue as queue=..., and declare the others on the "
            "job type"
        )
    return job.job, job.limit_key


def spec_from_job(
    runtime: Runtime,
    job: Job,
    limit_key: str | None,
    *,
    name: str,
    queue: str | None,
    cron: Cron,
    catch_up: CatchUp,
    catch_up_window: float,
    source: str,
) -> ScheduleSpec:
    """The definition of schedule ``name`` of ``job``: its type, payload, queue (unless
    ``queue`` is given), priority, attempts and limit key from the row a dispatch of the job
    with ``limit_key`` (None: none given) would write.

    :raises InvalidSchedule: the limit key (given, or the type's field value) is no valid key.
    """
    try:
        row = RequestBuilder(runtime).build(PendingDispatch(job, limit_key=limit_key), None)
    except InvalidDispatch as exc:
        raise InvalidSchedule(f"schedule {name!r}: {exc}") from None
    return ScheduleSpec(
        name=name,
        job_type=row.job_type,
        payload=row.payload,
        queue=queue or row.queue,
        cron=cron.expression,
        timezone=cron.timezone,
        catch_up=catch_up,
        catch_up_window=catch_up_window,
        priority=row.priority,
        max_attempts=row.max_attempts,
        source=source,
        limit_key=row.limit_key,
    )


def edited_limit_key(runtime: Runtime, spec: ScheduleSpec, payload: str) -> str | None:
    """The limit key of ``spec`` once its payload is ``payload`` (encoded): the one a dispatch
    of the new payload gets from its type's ``limit_key`` field, unless the key stored is not
    the one the old payload gave (it was given with ``.with_limit_key()``, and stays). Kept as
    it is when the job type is unknown here or names no field.

    :raises InvalidSchedule: the new payload does not decode into the job type, or its field
        holds no valid key.
    """
    try:
        cls = runtime.registry.get(spec.job_type, runtime.pm)
    except UnknownJobType:
        return spec.limit_key
    if cls.limit_key is None:
        return spec.limit_key
    builder = RequestBuilder(runtime)

    def key_of(text: str) -> str | None:
        job = runtime.serializer.decode(cls, text)
        return builder.build(PendingDispatch(job), None).limit_key

    if spec.limit_key is not None:
        try:
            given = key_of(spec.payload) != spec.limit_key
        except FerroqError:
            given = True  # the old payload no longer decodes: the key may have been given
        if given:
            return spec.limit_key
    try:
        return key_of(payload)
    except FerroqError as exc:
        raise InvalidSchedule(f"schedule {spec.name!r}: {exc}") from None
