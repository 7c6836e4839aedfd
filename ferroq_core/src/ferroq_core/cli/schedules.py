"""``ferroq schedules``: periodic jobs, listed and edited while workers run (every worker
sees a change at its next look, within a second)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.bounds import check_limit_key
from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.dispatch import _check_fields, _check_types, _read_payload
from ferroq_core.cli.imports import import_app_modules, import_option
from ferroq_core.cli.output import (
    DB_EPILOG,
    checked,
    echo_json,
    fmt_time,
    iso,
    json_option,
    ready_backend,
    render_table,
)
from ferroq_core.schedule_records import CATCH_UP_POLICIES, DEFAULT_CATCH_UP_WINDOW
from ferroq_core.schedules import (
    add_schedule,
    edit_schedule,
    last_outcome,
    list_schedules,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    run_schedule_now,
)

if TYPE_CHECKING:
    from ferroq_core.job import Job
    from ferroq_core.runtime import Runtime
    from ferroq_core.schedule_records import Schedule

__all__ = ["register", "schedule_headers", "schedule_rows", "schedule_to_dict"]


def register(cli: click.Group) -> None:
    cli.add_command(schedules)


def schedule_to_dict(schedule: Schedule, runtime: Runtime) -> dict[str, Any]:
    """A schedule as ``--json`` shows it (docs/cli.md)."""
    spec = schedule.spec
    return {
        "name": spec.name,
        "job_type": spec.job_type,
        "payload": spec.payload,
        "queue": spec.queue,
        "limit_key": spec.limit_key,
        "cron": spec.cron,
        "timezone": spec.timezone,
        "catch_up": spec.catch_up,
        "catch_up_window": spec.catch_up_window,
        "source": spec.source,
        "paused": schedule.paused,
        "next_run_at": iso(schedule.next_run_at),
        "last_run_at": iso(schedule.last_run_at),
        "last_job_id": schedule.last_job_id,
        "last_outcome": last_outcome(schedule, runtime=runtime),
        "revision": schedule.revision,
    }


def _keyed(found: list[Schedule]) -> bool:
    """Whether any of ``found`` has a limit key (the KEY column is shown only then)."""
    return any(s.spec.limit_key is not None for s in found)


def schedule_headers(found: list[Schedule]) -> list[str]:
    """The headers of :func:`schedule_rows` for ``found``."""
    key = ["KEY"] if _keyed(found) else []
    return ["NAME", "TYPE", *key, "CRON", "TIMEZONE", "STATE", "NEXT RUN", "LAST RUN", "LAST"]


def schedule_rows(found: list[Schedule], runtime: Runtime) -> list[list[object]]:
    """The table rows of ``ferroq schedules list`` (also under ``ferroq stats``): the limit
    key (KEY) only when a schedule has one."""
    keyed = _keyed(found)
    return [
        [
            s.name,
            s.spec.job_type,
            *([s.spec.limit_key or "-"] if keyed else []),
            s.spec.cron,
            s.spec.timezone,
            "paused" if s.paused else "active",
            fmt_time(s.next_run_at),
            fmt_time(s.last_run_at),
            last_outcome(s, runtime=runtime) or "-",
        ]
        for s in found
    ]


def _job(runtime: Runtime, job_type: str, payload: str) -> Job:
    """The job a schedule enqueues, decoded and checked as ``ferroq dispatch`` checks it."""
    cls = runtime.registry.get(job_type, runtime.pm)
    text = _read_payload(payload)
    _check_fields(cls, job_type, text)
    job = runtime.serializer.decode(cls, text)
    _check_types(job_type, text, runtime.serializer.encode(job))
    return job


def _show(obj: CliContext, schedule: Schedule, as_json: bool, done: str) -> None:
    if as_json:
        echo_json(schedule_to_dict(schedule, obj.runtime()))
        return
    state = "paused" if schedule.paused else f"next run {fmt_time(schedule.next_run_at)}"
    if schedule.spec.limit_key is not None:
        state += f", limit key {schedule.spec.limit_key}"
    click.echo(f"schedule {schedule.name!r} {done}: {schedule.spec.cron} ({state})")


@click.group(epilog=DB_EPILOG)
def schedules() -> None:
    """Periodic jobs: schedules kept in the database, enqueued by whichever workers run.

    \b
    Examples:
      ferroq schedules add nightly app.jobs:Report "0 3 * * *" --timezone Europe/Berlin
      ferroq schedules list --json
      ferroq schedules edit nightly --cron "30 3 * * *"
      ferroq schedules pause nightly
      ferroq schedules run-now nightly
    """


@schedules.command("add", epilog=DB_EPILOG)
@click.argument("name")
@click.argument("job_type", metavar="TYPE")
@click.argument("cron")
@click.option(
    "--payload",
    "-p",
    default="{}",
    show_default=True,
    help="The job's fields as a JSON object; @FILE reads a file, - reads standard input.",
)
@click.option("--timezone", "-z", default="UTC", show_default=True, help="IANA timezone.")
@click.option(
    "--catch-up",
    type=click.Choice(CATCH_UP_POLICIES),
    default="latest",
    show_default=True,
    help="What to enqueue of ticks missed while no worker ran.",
)
@click.option(
    "--catch-up-window",
    type=float,
    default=DEFAULT_CATCH_UP_WINDOW,
    show_default=True,
    help="Seconds: a tick later than this is never enqueued.",
)
@click.option("--queue", "-q", help="Queue (default: the job type's, else QUEUE_DEFAULT).")
@click.option(
    "--limit-key",
    callback=checked(check_limit_key),
    help="Limit key its jobs' limits count them under (default: the job type's limit_key "
    "field, else none).",
)
@click.option("--replace", is_flag=True, help="Replace a schedule of that name.")
@import_option
@json_option
@pass_context
def add(
    obj: CliContext,
    name: str,
    job_type: str,
    cron: str,
    payload: str,
    timezone: str,
    catch_up: Any,
    catch_up_window: float,
    queue: str | None,
    limit_key: str | None,
    replace: bool,
    imports: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add schedule NAME: enqueue a job of TYPE at every tick of CRON (5 fields, 6 with a
    leading seconds field, or @hourly, @daily, ...). A bad expression, timezone or payload is
    an error and nothing is stored.
    """
    import_app_modules(imports)
    ready_backend(obj)
    runtime = obj.runtime()
    job = _job(runtime, job_type, payload)
    schedule = add_schedule(
        job if limit_key is None else job.with_limit_key(limit_key),
        cron,
        name=name,
        timezone=timezone,
        catch_up=catch_up,
        catch_up_window=catch_up_window,
        queue=queue,
        replace=replace,
        runtime=runtime,
    )
    _show(obj, schedule, as_json, "stored")


@schedules.command("edit", epilog=DB_EPILOG)
@click.argument("name")
@click.option("--cron", help="A new cron expression.")
@click.option("--timezone", "-z", help="A new IANA timezone.")
@click.option("--catch-up", type=click.Choice(CATCH_UP_POLICIES), help="A new catch-up policy.")
@click.option("--catch-up-window", type=float, help="A new catch-up window (seconds).")
@click.option("--queue", "-q", help="A new queue.")
@click.option("--payload", "-p", help="New job fields (JSON; needs the job type: --import).")
@click.option(
    "--limit-key",
    callback=checked(check_limit_key),
    help="A new limit key (a new payload without it takes its key from the type's limit_key "
    "field, unless the key was given).",
)
@import_option
@json_option
@pass_context
def edit(
    obj: CliContext,
    name: str,
    cron: str | None,
    timezone: str | None,
    catch_up: str | None,
    catch_up_window: float | None,
    queue: str | None,
    payload: str | None,
    limit_key: str | None,
    imports: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change schedule NAME; it takes effect at its next tick."""
    import_app_modules(imports)
    ready_backend(obj)
    runtime = obj.runtime()
    changes: dict[str, Any] = {
        "cron": cron,
        "timezone": timezone,
        "catch_up": catch_up,
        "catch_up_window": catch_up_window,
        "queue": queue,
        "payload": payload,
        "limit_key": limit_key,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    if not given:
        raise click.UsageError("nothing to change: give --cron, --timezone, --catch-up, ...")
    if "payload" in given:
        current = runtime.backend.get_schedule(name)
        if current is not None:
            job = _job(runtime, current.spec.job_type, given["payload"])
            given["payload"] = runtime.serializer.encode(job)
    _show(obj, edit_schedule(name, runtime=runtime, **given), as_json, "changed")


@schedules.command("list", epilog=DB_EPILOG)
@json_option
@pass_context
def list_(obj: CliContext, as_json: bool) -> None:
    """Every schedule with its next run, last run and the last run's outcome (pending,
    running, retrying, failed, or done: its job is gone, as a succeeded job is)."""
    ready_backend(obj)
    runtime = obj.runtime()
    found = list_schedules(runtime=runtime)
    if as_json:
        echo_json([schedule_to_dict(s, runtime) for s in found])
        return
    if not found:
        click.echo("no schedules")
        return
    render_table(schedule_headers(found), schedule_rows(found, runtime))


def _action(verb: str, done: str, help_text: str) -> click.Command:
    actions = {"pause": pause_schedule, "resume": resume_schedule}

    @click.command(verb, epilog=DB_EPILOG, help=help_text)
    @click.argument("name")
    @json_option
    @pass_context
    def command(obj: CliContext, name: str, as_json: bool) -> None:
        ready_backend(obj)
        _show(obj, actions[verb](name, runtime=obj.runtime()), as_json, done)

    return command


schedules.add_command(_action("pause", "paused", "Pause schedule NAME: no tick is enqueued."))
schedules.add_command(
    _action(
        "resume",
        "resumed",
        "Resume schedule NAME from its next tick (the ticks of the pause are not caught up).",
    )
)


@schedules.command("remove", epilog=DB_EPILOG)
@click.argument("name")
@json_option
@pass_context
def remove(obj: CliContext, name: str, as_json: bool) -> None:
    """Delete schedule NAME (jobs it already enqueued stay). A schedule declared in code comes
    back when a worker with that code starts: remove it from the code too."""
    ready_backend(obj)
    remove_schedule(name, runtime=obj.runtime())
    if as_json:
        echo_json({"name": name, "removed": True})
    else:
        click.echo(f"schedule {name!r} removed")


@schedules.command("run-now", epilog=DB_EPILOG)
@click.argument("name")
@json_option
@pass_context
def run_now(obj: CliContext, name: str, as_json: bool) -> None:
    """Enqueue schedule NAME's job now, besides its ticks (its tick is now)."""
    ready_backend(obj)
    job_id = run_schedule_now(name, runtime=obj.runtime())
    if as_json:
        echo_json({"name": name, "id": int(job_id), "duplicate": job_id.duplicate})
    else:
        click.echo(f"schedule {name!r}: enqueued job {int(job_id)}")
