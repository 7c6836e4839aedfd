# Hookspecs are documentation-only bodies; pluggy never calls them.
# mypy: disable-error-code="empty-body"
"""Operations hookspecs: the command line, worker processes and the operators' controls.

Commands and worker options added to ``ferroq``, the scope around a worker process, pauses
and cancellations, and the worker registry and restarts. Import the hooks from
:mod:`ferroq_core.hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.markers import hookspec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    import click

    from ferroq_core.control_records import Pause
    from ferroq_core.fleet import WorkerRegistration
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime

__all__ = [
    "ferroq_job_cancelled",
    "ferroq_paused",
    "ferroq_register_commands",
    "ferroq_restart_requested",
    "ferroq_resumed",
    "ferroq_worker_deregistered",
    "ferroq_worker_options",
    "ferroq_worker_registered",
    "ferroq_worker_scope",
]

# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_register_commands(cli: click.Group) -> None:
    """Add commands to the ``ferroq`` command line.

    Called once per command line built (:func:`ferroq_core.cli.make_cli`), after core's own
    commands are added; every plugin's implementation is called. A command's ``click.pass_obj``
    object is the command line's context: ``.pm`` (the plugin manager) and ``.runtime()``
    (the queue for ``--database-url``). Give commands names core does not use: a command
    added under a taken name replaces the other one.

    :param cli: the top-level click group; call ``cli.add_command(...)`` or decorate with
        ``@cli.command()``.
    :return: nothing; the commands are added to ``cli``.

    Example::

        @hookimpl
        def ferroq_register_commands(cli):
            @cli.command(help="List the tenants that have pending jobs.")
            @click.pass_obj
            def tenants(obj):
                click.echo(", ".join(list_tenants(obj.runtime())))
    """


@hookspec
def ferroq_worker_options() -> Sequence[click.Option]:
    """Options this plugin adds to ``ferroq worker``.

    Called once per command line built, after :func:`ferroq_register_commands`. Their values
    reach :func:`ferroq_worker_scope` as ``options`` (keyed by each option's parameter name),
    and under ``--processes`` they are passed on, unchanged, to every child. Give options names
    core does not use.

    :return: a sequence of ``click.Option`` (empty when none).

    Example::

        @hookimpl
        def ferroq_worker_options():
            return [click.Option(["--metrics-port"], type=int, default=None,
                                 help="Serve Prometheus metrics on this port.")]
    """


@hookspec
def ferroq_worker_scope(
    runtime: Runtime, options: Mapping[str, Any], role: str
) -> AbstractContextManager[Any] | None:
    """A context manager to enter around the run of one ``ferroq worker`` process.

    Entered after the application's modules are imported (``--import``) and before the first
    claim, left when the process stops (in the reverse order). ``role`` says which process
    this is: ``worker`` (a worker without ``--processes``), ``supervisor`` (the parent under
    ``--processes``: it runs no jobs; environment variables it sets while entered reach the
    children it starts) or ``child`` (a worker started by a supervisor). An error raised while
    entering stops the process before it claims anything (a start-up error, such as a port in
    use).

    :param runtime: the queue the process serves.
    :param options: the values of every plugin's :func:`ferroq_worker_options`.
    :param role: ``worker``, ``supervisor`` or ``child``.
    :return: a context manager, or None to add nothing.

    Example::

        @hookimpl
        def ferroq_worker_scope(runtime, options, role):
            if options.get("metrics_port") and role != "child":
                return serve_metrics(options["metrics_port"])
            return None
    """


# ---------------------------------------------------------------------------------------------
# control plane (pauses and cancellations; exceptions raised here are logged and ignored)
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_paused(pause: Pause) -> None:
    """A pause was recorded (``Queue.pause()``, ``ferroq pause``).

    From now on no worker, on any host, claims a job it covers; running jobs go on. Fired in
    the process that paused, after the commit; not for a pause already in force.

    :param pause: what was paused (``scope``: queue, job type or tenant; ``name``; ``reason``).

    Example::

        @hookimpl
        def ferroq_paused(pause):
            audit.log("paused %s %s: %s", pause.scope.value, pause.name, pause.reason)
    """


@hookspec
def ferroq_resumed(pause: Pause) -> None:
    """A pause was removed (``Queue.resume()``, ``ferroq resume``).

    Workers claim its jobs again (idle ones are woken).

    :param pause: the pause removed, as it was recorded.

    Example::

        @hookimpl
        def ferroq_resumed(pause):
            audit.log("resumed %s %s", pause.scope.value, pause.name)
    """


@hookspec
def ferroq_job_cancelled(row: JobRow, running: bool) -> None:
    """A job was cancelled and removed.

    It is not retried, and ``failed()`` is not called (``cancelled()`` is). Fired where the
    removal happened: by the process that cancelled a pending or delayed job
    (``Queue.cancel()``, ``ferroq cancel``), by the worker that stopped a running one, or by
    the worker that removed one whose own worker died before it could stop it.

    :param row: the job's row as it was removed.
    :param running: True when it was running (claimed) and stopped, False when it was removed
        before it ran.

    Example::

        @hookimpl
        def ferroq_job_cancelled(row, running):
            history.record(row.id, "cancelled", while_running=running)
    """


# ---------------------------------------------------------------------------------------------
# worker registry and restart (exceptions raised here are logged and ignored)
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_worker_registered(worker: WorkerRegistration) -> None:
    """A worker, supervised child or supervisor registered itself (``ferroq workers``).

    Called in its own process, before it claims anything.

    :param worker: what it registered: id, role (``worker``, ``child``, ``supervisor``),
        host, pid, queues, concurrency, visibility timeout, version, supervisor, and
        ``started_at`` on the backend's clock.

    Example::

        @hookimpl
        def ferroq_worker_registered(worker):
            log.info("worker %s up on %s serving %s", worker.id, worker.host, worker.queues)
    """


@hookspec
def ferroq_worker_deregistered(worker_id: str, reason: str) -> None:
    """A worker's row left the registry.

    Called in the worker's own process when it exits cleanly (``reason`` ``stopped``, or
    ``restart`` after ``ferroq restart``), and in the process of the worker whose reaper pass
    removed a dead one (``reason`` ``dead``: silent past its visibility timeout, or its
    process gone from this host). A worker killed with ``kill -9`` is only ever ``dead``.

    :param worker_id: the worker's id (``host:pid:uuid``).
    :param reason: ``stopped``, ``restart`` or ``dead``.

    Example::

        @hookimpl
        def ferroq_worker_deregistered(worker_id, reason):
            if reason == "dead":
                alert(f"worker {worker_id} died")
    """


@hookspec
def ferroq_restart_requested(requested_at: datetime) -> None:
    """``ferroq restart`` (``Queue.restart_workers()``) was stored.

    Called in the process that asked for it.

    Every worker started before ``requested_at`` sees it at its next heartbeat, stops
    claiming, finishes its running jobs and exits 0; supervisors restart their children one
    at a time.

    :param requested_at: the restart's time on the backend's clock.

    Example::

        @hookimpl
        def ferroq_restart_requested(requested_at):
            deploy_log.write(f"workers asked to restart at {requested_at}")
    """
