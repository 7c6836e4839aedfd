"""Periodic jobs: schedules declared in code, and the API that edits the stored ones.

A schedule is declared on a job type (``schedule = "*/5 * * * *"``, with
``schedule_timezone``, ``schedule_catch_up`` and ``schedule_catch_up_window``) or with
:func:`periodic` (several schedules of one type with different arguments). Declarations are
checked when made (a bad expression or timezone raises :class:`InvalidSchedule` as the module
is imported) and written to the ``ferroq_schedules`` table when a worker starts
(:func:`sync_declared`). At runtime :func:`add_schedule`, :func:`edit_schedule`,
:func:`pause_schedule`, :func:`resume_schedule`, :func:`remove_schedule` and
:func:`run_schedule_now` change the table; every worker sees a change at its next look
(docs/schedules.md).

A schedule keeps the limit key a dispatch of its job would get (the key given with
``.with_limit_key()``, else its type's ``limit_key`` field), computed by the dispatch's own
code when the schedule is saved, and every tick's job is stored with it (docs/limits.md).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.cron import Cron
from ferroq_core.errors import ConfigError, InvalidSchedule, ScheduleNotFound
from ferroq_core.jobmodel import JobId, job_type_name
from ferroq_core.queue import Queue
from ferroq_core.schedule_records import (
    DEFAULT_CATCH_UP_WINDOW,
    CatchUp,
    Schedule,
    ScheduleSpec,
    check_catch_up,
    check_schedule_name,
)
from ferroq_core.schedule_rules import tick_request
from ferroq_core.schedule_specs import edited_limit_key, job_and_limit_key, spec_from_job

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.dispatching import PendingDispatch
    from ferroq_core.job import Job
    from ferroq_core.runtime import Runtime
    from ferroq_core.storage.protocol import Backend
    from ferroq_core.storage.schedules import SaveOutcome

__all__ = [
    "Declared",
    "add_schedule",
    "declare_job_type",
    "declared_schedules",
    "edit_schedule",
    "get_schedule",
    "last_outcome",
    "list_schedules",
    "pause_schedule",
    "periodic",
    "remove_schedule",
    "resume_schedule",
    "run_schedule_now",
    "sync_declared",
]


@attrs.frozen
class Declared:
    """A schedule declared in code, written to the table when a worker starts."""

    name: str
    #: The job type, and the job to enqueue (None: the type built without arguments).
    cls: type[Job]
    job: Job | None
    cron: Cron
    catch_up: CatchUp
    catch_up_window: float
    queue: str | None
    #: The limit key given with the job (``periodic(job.with_limit_key(k), ...)``); None: its
    #: type's ``limit_key`` field decides, as at dispatch.
    limit_key: str | None = None


_declared: dict[str, Declared] = {}
_lock = threading.Lock()


def _declare(entry: Declared) -> Declared:
    with _lock:
        old = _declared.get(entry.name)
        # attrs rebuilds a class it gives slots: the same module and qualname is the same type.
        same_type = old is not None and (old.cls.__module__, old.cls.__qualname__) == (
            entry.cls.__module__,
            entry.cls.__qualname__,
        )
        if old is not None and not same_type:
            raise ConfigError(
                f"two schedules are declared under the name {entry.name!r}: give each a "
                "distinct name (periodic(..., name=...))"
            )
        _declared[entry.name] = entry
    return entry


def declare_job_type(cls: type[Job]) -> Declared | None:
    """Record the schedule a job type declares with its ``schedule`` attribute (called when
    the class is created); None when it declares none.

    :raises InvalidSchedule: a bad expression, timezone or catch-up policy.
    """
    expression = cls.__dict__.get("schedule")
    if expression is None:
        return None
    name = job_type_name(cls)
    where = f"job type {name}: "
    try:
        cron = Cron.parse(expression, getattr(cls, "schedule_timezone", "UTC"))
        policy, window = check_catch_up(
            getattr(cls, "schedule_catch_up", "latest"),
            getattr(cls, "schedule_catch_up_window", DEFAULT_CATCH_UP_WINDOW),
        )
    except InvalidSchedule as exc:
        raise InvalidSchedule(where + str(exc)) from None
    return _declare(Declared(name, cls, None, cron, policy, window, None))


def periodic(
    job: Job | PendingDispatch,
    cron: str,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    catch_up: CatchUp = "latest",
    catch_up_window: float = DEFAULT_CATCH_UP_WINDOW,
    queue: str | None = None,
) -> Declared:
    """Declare a schedule for ``job`` (an instance: its fields are every tick's arguments; or
    ``job.with_limit_key(k)``: every tick's job counts under limit key ``k``).

    Give each of several schedules of one job type its own ``name`` (default: the type's
    name). Checked now; written to the table when a worker starts::

        periodic(Report(kind="daily"), "0 8 * * *", name="report-daily",
                 timezone="Europe/Berlin")
        periodic(Report(kind="weekly"), "0 8 * * MON", name="report-weekly")

    :raises InvalidSchedule: a bad expression, timezone, policy or name, or a dispatch option
        other than ``.with_limit_key()``.
    """
    base, key = job_and_limit_key(job)
    return _declare(_entry(base, key, cron, name, timezone, catch_up, catch_up_window, queue))


def _entry(
    job: Job,
    limit_key: str | None,
    cron: str,
    name: str | None,
    timezone: str,
    catch_up: object,
    catch_up_window: object,
    queue: str | None,
) -> Declared:
    """A checked declaration (:class:`InvalidSchedule` on a bad value)."""
    cls = type(job)
    label = check_schedule_name(name if name is not None else cls.type_name())
    parsed = Cron.parse(cron, timezone)
    policy, window = check_catch_up(catch_up, catch_up_window)
    return Declared(label, cls, job, parsed, policy, window, queue, limit_key)


def declared_schedules() -> list[Declared]:
    """Every schedule declared in this process, by name."""
    with _lock:
        return [_declared[name] for name in sorted(_declared)]


def _runtime(runtime: Runtime | None) -> Runtime:
    return runtime if runtime is not None else Queue.runtime()


def _spec(runtime: Runtime, entry: Declared, job: Job, source: str) -> ScheduleSpec:
    return spec_from_job(
        runtime,
        job,
        entry.limit_key,
        name=entry.name,
        queue=entry.queue,
        cron=entry.cron,
        catch_up=entry.catch_up,
        catch_up_window=entry.catch_up_window,
        source=source,
    )


def _save(backend: Backend, spec: ScheduleSpec, *, replace: bool) -> SaveOutcome:
    """Save ``spec``; an edit that keeps the expression and zone keeps the next run, so no
    tick due meanwhile is lost."""
    now = backend.now()
    existing = backend.get_schedule(spec.name)
    next_run = spec.parsed().next_after(now)
    if (
        existing is not None
        and existing.next_run_at is not None
        and (existing.spec.cron, existing.spec.timezone) == (spec.cron, spec.timezone)
    ):
        next_run = existing.next_run_at
    return backend.save_schedule(spec, next_run, replace=replace)


def sync_declared(runtime: Runtime) -> dict[str, SaveOutcome]:
    """Write this process's declared schedules to the table (a worker does it as it starts):
    a new one is created, a changed one (its limit key included) replaced (its pause kept),
    an equal one left alone.

    :raises InvalidSchedule: a job type that declares a schedule cannot be built without
        arguments (declare it with :func:`periodic` and an instance instead).
    """
    outcomes: dict[str, SaveOutcome] = {}
    for entry in declared_schedules():
        job = entry.job
        if job is None:
            try:
                job = entry.cls()
            except TypeError as exc:
                raise InvalidSchedule(
                    f"job type {entry.name} declares a schedule but cannot be built without "
                    f"arguments ({exc}): declare it with periodic({entry.cls.__name__}(...), "
                    "...) instead"
                ) from None
        spec = _spec(runtime, entry, job, "code")
        outcomes[entry.name] = _save(runtime.backend, spec, replace=True)
    return outcomes


def add_schedule(
    job: Job | PendingDispatch,
    cron: str,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    catch_up: CatchUp = "latest",
    catch_up_window: float = DEFAULT_CATCH_UP_WINDOW,
    queue: str | None = None,
    replace: bool = False,
    runtime: Runtime | None = None,
) -> Schedule:
    """Store a schedule now; every worker enqueues its ticks from the next one on.

    :param job: the job every tick enqueues (its fields are the arguments), or
        ``job.with_limit_key(k)``: its jobs count under limit key ``k`` (else under the one
        its type's ``limit_key`` field gives, as at dispatch).
    :param replace: replace a schedule of that name with another definition (else that is
        an :class:`InvalidSchedule`, nothing written). An equal one is left as it is.
    :raises InvalidSchedule: a bad expression, timezone, policy, name or limit key, or a
        dispatch option other than ``.with_limit_key()``; nothing is stored.
    """
    rt = _runtime(runtime)
    base, key = job_and_limit_key(job)
    entry = _entry(base, key, cron, name, timezone, catch_up, catch_up_window, queue)
    label = entry.name
    spec = _spec(rt, entry, base, "api")
    if _save(rt.backend, spec, replace=replace) == "exists":
        raise InvalidSchedule(
            f"a schedule named {label!r} exists with another definition: replace it "
            "(replace=True, `ferroq schedules add --replace`) or choose another name"
        )
    return _require(rt.backend, label)


def edit_schedule(name: str, *, runtime: Runtime | None = None, **changes: Any) -> Schedule:
    """Change fields of a stored schedule (``cron``, ``timezone``, ``catch_up``,
    ``catch_up_window``, ``queue``, ``payload`` as encoded text, ``limit_key``: a key, or None
    for none); it takes effect at the next tick. A new payload without a new ``limit_key``
    takes its key again from the field its job type names, as a dispatch would, unless the
    schedule's key was given (``.with_limit_key()``), which stays.

    :raises ScheduleNotFound: no such schedule. :raises InvalidSchedule: a bad value; nothing
        is stored.
    """
    rt = _runtime(runtime)
    current = _require(rt.backend, name)
    allowed = {"cron", "timezone", "catch_up", "catch_up_window", "queue", "payload", "limit_key"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidSchedule(f"cannot edit {', '.join(unknown)} of a schedule")
    if "payload" in changes and "limit_key" not in changes:
        changes["limit_key"] = edited_limit_key(rt, current.spec, changes["payload"])
    spec = attrs.evolve(current.spec, **changes)  # validated again as it is built
    _save(rt.backend, spec, replace=True)
    return _require(rt.backend, name)


def get_schedule(name: str, *, runtime: Runtime | None = None) -> Schedule | None:
    """The stored schedule ``name``, or None."""
    return _runtime(runtime).backend.get_schedule(name)


def list_schedules(*, runtime: Runtime | None = None) -> list[Schedule]:
    """Every stored schedule, by name."""
    return _runtime(runtime).backend.list_schedules()


def _require(backend: Backend, name: str) -> Schedule:
    found = backend.get_schedule(name)
    if found is None:
        raise ScheduleNotFound(
            f"no schedule named {name!r}: list them with `ferroq schedules list`"
        )
    return found


def pause_schedule(name: str, *, runtime: Runtime | None = None) -> Schedule:
    """Pause a schedule: no tick is enqueued until it is resumed.

    :raises ScheduleNotFound: no such schedule."""
    backend = _runtime(runtime).backend
    if not backend.pause_schedule(name, paused=True, next_run_at=None):
        _require(backend, name)
    return _require(backend, name)


def resume_schedule(name: str, *, runtime: Runtime | None = None) -> Schedule:
    """Resume a paused schedule from its next tick after now (the ticks of the pause are not
    caught up).

    :raises ScheduleNotFound: no such schedule."""
    backend = _runtime(runtime).backend
    current = _require(backend, name)
    next_run = current.spec.parsed().next_after(backend.now())
    backend.pause_schedule(name, paused=False, next_run_at=next_run)
    return _require(backend, name)


def remove_schedule(name: str, *, runtime: Runtime | None = None) -> None:
    """Delete a schedule (jobs it already enqueued stay).

    :raises ScheduleNotFound: no such schedule."""
    if not _runtime(runtime).backend.remove_schedule(name):
        raise ScheduleNotFound(
            f"no schedule named {name!r}: list them with `ferroq schedules list`"
        )


def run_schedule_now(name: str, *, runtime: Runtime | None = None) -> JobId:
    """Enqueue the schedule's job now, outside its ticks (its tick is now); the next tick
    stays as it was.

    :raises ScheduleNotFound: no such schedule."""
    backend = _runtime(runtime).backend
    current = _require(backend, name)
    at: datetime = backend.now()
    result = backend.record_schedule_run(name, at, tick_request(current.spec, at))
    if result is None:
        _require(backend, name)  # removed meanwhile: raises
        raise AssertionError("unreachable")
    return JobId(result.id, duplicate=result.duplicate)


def last_outcome(schedule: Schedule, *, runtime: Runtime | None = None) -> str | None:
    """How the job of the schedule's last run stands: ``pending``, ``running``,
    ``retrying``, ``failed``, or ``done`` (its row is gone: it succeeded, or was removed);
    None before the first run."""
    if schedule.last_job_id is None:
        return None
    row = _runtime(runtime).backend.get_job(schedule.last_job_id)
    if row is None:
        return "done"
    if row.status == "claimed":
        return "running"
    if row.status == "failed":
        return "failed"
    return "retrying" if row.attempts > 0 else "pending"
