# Hookspecs are documentation-only bodies; pluggy never calls them.
# mypy: disable-error-code="empty-body"
"""Hook specifications for ferroq plugins.

A plugin is a module or object with functions marked ``@ferroq_core.hookimpl`` whose names
are those below. Installed plugins are found through the ``ferroq`` entry-point group::

    [project.entry-points.ferroq]
    mything = "mything.plugin"

Core's own defaults (the JSON serializer and full-jitter backoff) are registered through
these same hooks, so a plugin can replace any of them.
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
    from ferroq_core.job import Job
    from ferroq_core.plugin_records import BackendSpec, BackoffPolicy
    from ferroq_core.records import EnqueueRequest, EnqueueResult, JobRow
    from ferroq_core.runtime import Runtime
    from ferroq_core.serialization import Serializer

__all__ = [
    "ferroq_backends",
    "ferroq_backoff_policies",
    "ferroq_capture_tenants",
    "ferroq_dispatch_requests",
    "ferroq_dispatch_scope",
    "ferroq_job_cancelled",
    "ferroq_job_enqueued",
    "ferroq_job_failed",
    "ferroq_job_retrying",
    "ferroq_job_scope",
    "ferroq_job_started",
    "ferroq_job_succeeded",
    "ferroq_job_types",
    "ferroq_jobs_claimed",
    "ferroq_jobs_enqueued",
    "ferroq_jobs_succeeded",
    "ferroq_paused",
    "ferroq_register_commands",
    "ferroq_restart_requested",
    "ferroq_resumed",
    "ferroq_serializers",
    "ferroq_tenant_scope",
    "ferroq_worker_deregistered",
    "ferroq_worker_options",
    "ferroq_worker_registered",
    "ferroq_worker_scope",
    "hookspec",
]

# ---------------------------------------------------------------------------------------------
# registries: plugins contribute typed records
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_backends() -> Sequence[BackendSpec]:
    """Storage backends this plugin provides.

    Each :class:`~ferroq_core.plugin_records.BackendSpec` names the URL schemes it serves
    (``sqlite``, ``postgresql``...) and a factory that builds the backend from a URL or a
    SQLAlchemy engine. When two plugins serve one scheme, the later-registered wins.

    :return: a sequence of ``BackendSpec`` records (empty when none).

    Example::

        @hookimpl
        def ferroq_backends():
            return [BackendSpec(name="sqlite", schemes=("sqlite",), factory=make_backend,
                                distribution="ferroq-sqlite")]
    """


@hookspec
def ferroq_serializers() -> Sequence[Serializer]:
    """Payload serializers this plugin provides.

    The queue uses the serializer whose ``name`` matches ``FERROQ_SERIALIZER`` (default
    ``json``). Never provide one that can execute code on decode (such as pickle).

    :return: a sequence of :class:`~ferroq_core.serialization.Serializer` instances.

    Example::

        @hookimpl
        def ferroq_serializers():
            return [MsgpackSerializer()]
    """


@hookspec
def ferroq_backoff_policies() -> Sequence[BackoffPolicy]:
    """Retry-delay policies this plugin provides.

    The worker uses the policy whose ``name`` matches ``FERROQ_BACKOFF`` (default
    ``full-jitter``) for jobs whose ``retry_delay()`` returns None.

    :return: a sequence of :class:`~ferroq_core.plugin_records.BackoffPolicy` records.

    Example::

        @hookimpl
        def ferroq_backoff_policies():
            return [BackoffPolicy(name="fixed-10s", delay=lambda job, attempt: 10.0)]
    """


@hookspec
def ferroq_job_types() -> Sequence[type[Job]]:
    """Job types this plugin registers (besides the ``ferroq.jobs`` entry points).

    Called when the worker meets a job type name it does not know yet; every type returned
    is registered under its stable name (:meth:`~ferroq_core.Job.type_name`).

    :return: a sequence of ``Job`` subclasses.

    Example::

        @hookimpl
        def ferroq_job_types():
            return [SendEmail, ResizeImage]
    """


# ---------------------------------------------------------------------------------------------
# tenancy and scope
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_capture_tenants(jobs: Sequence[Job]) -> Sequence[str | None] | None:
    """The tenants to store with ``jobs`` when they are dispatched.

    ``jobs`` are the jobs of one dispatch call that have no ``for_tenant()``. Called once per
    ``dispatch()`` or ``dispatch_many()`` call (not once per job), so a bulk dispatch pays one
    hook call. For each job the first non-None entry among the plugins' results (in pluggy's
    call order) is stored; a job for which every plugin gives None has no tenant.

    :param jobs: the job instances being dispatched, in dispatch order (never empty).
    :return: one entry per job, in the same order: its tenant id as text, or None; or None
        for no opinion on any of them.

    Example::

        @hookimpl
        def ferroq_capture_tenants(jobs):
            tenant = flask.g.get("tenant_id")
            return [tenant] * len(jobs)
    """


@hookspec
def ferroq_job_scope(job: Job, row: JobRow | None) -> AbstractContextManager[Any] | None:
    """A context manager to enter around one execution of ``job``.

    Every non-None result is entered before ``handle()`` runs (in the order pluggy calls the
    plugins: the most recently registered first) and exited after it, on the thread or event
    loop that runs the job. An exception raised while entering fails that attempt (the handler
    does not run).

    :param job: the decoded job instance.
    :param row: the stored row, or None in sync mode (where no row is written).
    :return: a context manager, or None to add nothing.

    Example::

        @hookimpl
        def ferroq_job_scope(job, row):
            return sentry_sdk.new_scope()
    """


@hookspec(firstresult=True)
def ferroq_tenant_scope(tenant_id: str) -> AbstractContextManager[Any] | None:
    """The context manager that makes ``tenant_id`` current around a job's execution.

    Stops at the first non-None result. Called by the worker and by sync mode for every job
    that carries a tenant; raising :class:`~ferroq_core.errors.TenantNotFound` (or any error)
    fails that attempt and the handler never runs outside its tenant.

    :param tenant_id: the tenant stored with the job.
    :return: a context manager, or None when this plugin does not handle tenants.

    Example::

        @hookimpl
        def ferroq_tenant_scope(tenant_id):
            return my_app.tenant_context(tenant_id)
    """


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
# dispatch (called once per dispatch call in db mode; errors are logged and ignored)
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_dispatch_scope(requests: Sequence[EnqueueRequest]) -> AbstractContextManager[Any] | None:
    """A context manager to enter around writing the rows of one dispatch call.

    Called once per ``dispatch()`` or ``dispatch_many()`` call that writes to the database
    (not in sync mode), on the dispatching thread; every non-None result is entered before the
    insert and left after it, seeing the insert's exception if it raised. Errors a scope raises
    while entering or leaving are logged and ignored: the dispatch goes on without it.

    :param requests: the rows about to be written, in dispatch order (never empty).
    :return: a context manager, or None to add nothing.

    Example::

        @hookimpl
        def ferroq_dispatch_scope(requests):
            return tracer.start_as_current_span("ferroq dispatch")
    """


@hookspec(firstresult=True)
def ferroq_dispatch_requests(
    requests: Sequence[EnqueueRequest],
) -> Sequence[EnqueueRequest] | None:
    """Rows to write instead of ``requests`` (to carry metadata in the payload, for instance).

    Called once per dispatch call that writes to the database, inside the
    :func:`ferroq_dispatch_scope` scopes; stops at the first non-None result. The result must
    have one request per request given, in the same order; a result of another length, or an
    error, is logged and the rows are written as they were.

    :param requests: the rows about to be written, in dispatch order (never empty).
    :return: the rows to write, or None to leave them as they are.

    Example::

        @hookimpl
        def ferroq_dispatch_requests(requests):
            return [attrs.evolve(r, payload=add_header(r.payload)) for r in requests]
    """


# ---------------------------------------------------------------------------------------------
# lifecycle events (for logging and metrics; exceptions raised here are logged and ignored)
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_job_enqueued(job_id: int, request: EnqueueRequest, duplicate: bool) -> None:
    """A job was written to the database (db mode).

    Called after the insert; when the caller owns the transaction (``dispatch(connection=)``)
    that is before it commits, so the job may still be rolled back.

    :param job_id: the stored id (the existing job's id when ``duplicate``).
    :param request: what was inserted (queue, type, payload, delay, key, tenant).
    :param duplicate: True when an equal idempotency key was already active.

    Example::

        @hookimpl
        def ferroq_job_enqueued(job_id, request, duplicate):
            metrics.incr("jobs.enqueued", tags={"queue": request.queue})
    """


@hookspec
def ferroq_job_started(row: JobRow, worker_id: str) -> None:
    """A worker is about to run one attempt of a job.

    :param row: the claimed row (``attempts`` counts this attempt).
    :param worker_id: the running worker's id (``host:pid:uuid``).

    Example::

        @hookimpl
        def ferroq_job_started(row, worker_id):
            log.info("start %s #%d", row.job_type, row.attempts)
    """


@hookspec
def ferroq_job_succeeded(row: JobRow, duration: float) -> None:
    """An attempt finished without error and the job was deleted.

    :param row: the claimed row.
    :param duration: seconds the handler ran.

    Example::

        @hookimpl
        def ferroq_job_succeeded(row, duration):
            metrics.timing("jobs.duration", duration)
    """


@hookspec
def ferroq_job_retrying(row: JobRow, error: BaseException, delay: float) -> None:
    """An attempt failed and the job was released for another attempt.

    :param row: the claimed row.
    :param error: what the attempt raised.
    :param delay: seconds until the next attempt may start.

    Example::

        @hookimpl
        def ferroq_job_retrying(row, error, delay):
            log.warning("retry %s in %.1fs: %s", row.id, delay, error)
    """


@hookspec
def ferroq_job_failed(row: JobRow, error: BaseException) -> None:
    """A job was parked as failed (attempts spent, or an error that is never retried).

    :param row: the claimed row.
    :param error: what the last attempt raised.

    Example::

        @hookimpl
        def ferroq_job_failed(row, error):
            sentry_sdk.capture_exception(error)
    """


@hookspec
def ferroq_jobs_enqueued(
    requests: Sequence[EnqueueRequest], results: Sequence[EnqueueResult]
) -> None:
    """The rows of one dispatch call were written (db mode): one call per dispatch call.

    The batch form of :func:`ferroq_job_enqueued` (which still fires per job), for metrics:
    a bulk dispatch pays one hook call. Called after the insert; when the caller owns the
    transaction that is before it commits.

    :param requests: what was inserted, in dispatch order (never empty).
    :param results: the stored id of each, and whether it was an idempotent duplicate.

    Example::

        @hookimpl
        def ferroq_jobs_enqueued(requests, results):
            metrics.incr("jobs.enqueued", sum(not r.duplicate for r in results))
    """


@hookspec
def ferroq_jobs_claimed(rows: Sequence[JobRow], worker_id: str) -> None:
    """A worker claimed ``rows`` and is about to start them: one call per claim, not per job.

    The batch form of :func:`ferroq_job_started` for metrics, which pays one hook call per
    claim (``claimed_at - available_at`` of each row is how long it waited once due).

    :param rows: the claimed rows that will run (``attempts`` counts this attempt; never
        empty). A row whose attempts were already spent (its last attempt killed its worker)
        is parked as failed without running and is not among them.
    :param worker_id: the claiming worker's id (``host:pid:uuid``).

    Example::

        @hookimpl
        def ferroq_jobs_claimed(rows, worker_id):
            metrics.incr("jobs.started", len(rows))
    """


@hookspec
def ferroq_jobs_succeeded(rows: Sequence[JobRow], durations: Sequence[float]) -> None:
    """Attempts finished without error and their jobs were deleted: one call per write-back.

    The batch form of :func:`ferroq_job_succeeded` (which still fires per job), for metrics.

    :param rows: the claimed rows whose completion was written (never empty).
    :param durations: seconds each handler ran, in the order of ``rows``.

    Example::

        @hookimpl
        def ferroq_jobs_succeeded(rows, durations):
            metrics.incr("jobs.succeeded", len(rows))
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
