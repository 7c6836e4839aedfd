"""``ferroq worker``: run a worker, or ``--processes N`` of them under a supervisor."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import TYPE_CHECKING, Any

import click

from ferroq_core.bounds import queue_name_problem
from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.imports import APP_ENV, app_modules, import_app_modules
from ferroq_core.config import WorkerConfig
from ferroq_core.errors import ConfigError
from ferroq_core.registry import default_registry
from ferroq_core.worker import WorkerLoop
from ferroq_core.worker.identity import new_worker_id
from ferroq_core.worker.presence import supervisor_presence
from ferroq_core.worker.report import SUPERVISOR_FD_ENV, SUPERVISOR_ID_ENV, Reporter
from ferroq_core.worker.supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pluggy

__all__ = ["add_plugin_options", "register", "worker_argv"]


log = logging.getLogger("ferroq.worker")


def register(cli: click.Group) -> None:
    cli.add_command(worker)


def add_plugin_options(cli: click.Group, pm: pluggy.PluginManager) -> None:
    """Add every plugin's ``ferroq_worker_options`` to this command line's worker command.

    The command is copied first: ``worker`` is one object shared by every command line built
    in the process, and each has its own plugins.
    """
    extra = [option for batch in pm.hook.ferroq_worker_options() for option in batch]
    if not extra or "worker" not in cli.commands:
        return
    base = cli.commands["worker"]
    command = click.Command(
        name=base.name,
        context_settings=base.context_settings,
        callback=base.callback,
        params=[*base.params, *extra],
        help=base.help,
        epilog=base.epilog,
        short_help=base.short_help,
    )
    cli.add_command(command)


def _plugin_argv(command: click.Command | None, options: Mapping[str, Any]) -> list[str]:
    """Plugin options with their values as a child's command line takes them."""
    argv: list[str] = []
    for param in command.params if command is not None else ():
        if not isinstance(param, click.Option) or param.name not in options:
            continue
        value = options[param.name]
        flag = param.opts[0]
        if param.is_flag:
            if value:
                argv.append(flag)
        elif param.multiple:
            for item in value or ():
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def _split_queues(value: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for item in value:
        names.extend(part.strip() for part in item.split(","))
    for name in filter(None, names):  # WorkerConfig names an empty entry itself
        problem = queue_name_problem(name)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="'--queue'")
    return tuple(names)


def worker_argv(
    config: WorkerConfig,
    imports: list[str],
    verbose: int,
    plugin_options: Mapping[str, Any] | None = None,
    command: click.Command | None = None,
) -> list[str]:
    """The command line of one supervised child: the same worker, without ``--processes``,
    with the plugins' worker options (``plugin_options``, as ``command`` declares them).

    The database URL is not on it (it may hold a password, and command lines are visible to
    every user of the host): the supervisor passes it in ``FERROQ_DATABASE_URL``.
    """
    argv = ["-v"] * verbose
    argv += ["worker", "--queue", ",".join(config.queues)]
    argv += ["--concurrency", str(config.concurrency), "--sleep", repr(config.sleep)]
    argv += ["--visibility-timeout", repr(config.visibility_timeout)]
    argv += ["--shutdown-timeout", repr(config.shutdown_timeout)]
    optional: list[tuple[str, Any]] = [
        ("--timeout", config.timeout),
        ("--heartbeat-interval", config.heartbeat_interval),
        ("--reaper-interval", config.reaper_interval),
        ("--max-jobs", config.max_jobs),
        ("--max-time", config.max_time),
        ("--memory", config.memory_limit_mb),
    ]
    for flag, value in optional:
        if value is not None:
            argv += [flag, repr(value)]
    if config.stop_when_empty:
        argv.append("--stop-when-empty")
    if config.once:
        argv.append("--once")
    for module in imports:
        argv += ["--import", module]
    return argv + _plugin_argv(command, plugin_options or {})


@click.command()
@click.option(
    "-q",
    "--queue",
    "queues",
    multiple=True,
    metavar="NAMES",
    help="Queues to serve in strict priority order, comma-separated (repeatable). "
    "[default: $QUEUE_DEFAULT or 'default']",
)
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=10,
    show_default=True,
    envvar="QUEUE_MAX_CONCURRENT",
    show_envvar=True,
    help="Jobs run at once (sync handlers on threads, async ones on one event loop).",
)
@click.option(
    "--sleep",
    type=float,
    default=1.0,
    show_default=True,
    help="Longest idle wait between polls when no wake-up arrives, in seconds.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Default per-job timeout in seconds (a job type's `timeout` wins). [default: none]",
)
@click.option(
    "--visibility-timeout",
    type=float,
    default=300.0,
    show_default=True,
    envvar="QUEUE_VISIBILITY_TIMEOUT_SECS",
    show_envvar=True,
    help="Seconds without a heartbeat after which a claimed job is returned to pending.",
)
@click.option(
    "--heartbeat-interval",
    type=float,
    default=None,
    help="Seconds between lease heartbeats. [default: visibility timeout / 3]",
)
@click.option(
    "--reaper-interval",
    type=float,
    default=None,
    help="Seconds between reaper passes. [default: visibility timeout / 2, at most 60]",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="On SIGTERM/SIGINT, seconds to let running jobs finish before returning them.",
)
@click.option("--max-jobs", type=int, default=None, help="Exit after this many jobs.")
@click.option("--max-time", type=float, default=None, help="Exit after this many seconds.")
@click.option(
    "--memory",
    "memory_mb",
    type=float,
    default=None,
    metavar="MB",
    help="Finish current work and exit once resident memory exceeds MB.",
)
@click.option("--stop-when-empty", is_flag=True, help="Exit when the queues are empty.")
@click.option("--once", is_flag=True, help="Run at most one job, then exit.")
@click.option(
    "--processes",
    type=int,
    default=None,
    help="Run N worker processes under a supervisor that restarts dead ones and enforces hard "
    "timeouts (--processes 1: one supervised process). [default: no supervisor]",
)
@click.option(
    "--hard-timeout-grace",
    type=float,
    default=5.0,
    show_default=True,
    help="With --processes: kill a child whose job overran its timeout by this many seconds.",
)
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help=f"Import MODULE first to register its job types (repeatable; also ${APP_ENV}, "
    "comma-separated).",
)
@pass_context
@click.pass_context
def worker(
    ctx: click.Context,
    obj: CliContext,
    /,
    queues: tuple[str, ...],
    concurrency: int,
    sleep: float,
    timeout: float | None,
    visibility_timeout: float,
    heartbeat_interval: float | None,
    reaper_interval: float | None,
    shutdown_timeout: float,
    max_jobs: int | None,
    max_time: float | None,
    memory_mb: float | None,
    stop_when_empty: bool,
    once: bool,
    processes: int | None,
    hard_timeout_grace: float,
    imports: tuple[str, ...],
    **plugin_options: Any,
) -> None:
    """Run a worker: claim jobs from the queues, run them, retry or park failures.

    SIGTERM or SIGINT stops claiming and lets running jobs finish for up to
    --shutdown-timeout; a second signal returns what it can and exits at once.

    \b
    Examples:
      ferroq worker --queue high,default,low --concurrency 20
      ferroq worker --import myapp.jobs --stop-when-empty
      ferroq worker --processes 4 --timeout 60
      ferroq -q worker                    no line per job, warnings and errors only
    """
    names = _split_queues(queues) if queues else (os.environ.get("QUEUE_DEFAULT") or "default",)
    config = WorkerConfig(
        queues=names,
        concurrency=concurrency,
        sleep=sleep,
        timeout=timeout,
        visibility_timeout=visibility_timeout,
        heartbeat_interval=heartbeat_interval,
        reaper_interval=reaper_interval,
        shutdown_timeout=shutdown_timeout,
        max_jobs=max_jobs,
        max_time=max_time,
        memory_limit_mb=memory_mb,
        stop_when_empty=stop_when_empty,
        once=once,
    )
    if processes is not None and processes < 1:
        raise ConfigError(f"--processes must be at least 1, got {processes}")
    if hard_timeout_grace < 0:
        raise ConfigError(f"--hard-timeout-grace must not be negative, got {hard_timeout_grace}")
    modules = app_modules(imports)
    verbose = int(ctx.find_root().params.get("verbose") or 0)
    env = {"FERROQ_DATABASE_URL": obj.database_url}
    if obj.log_level is None:
        # A worker's job log (one line per state change) is its main output: INFO by default.
        logging.getLogger("ferroq").setLevel(logging.INFO)
    else:
        env["FERROQ_LOG_LEVEL"] = logging.getLevelName(obj.log_level)  # the children's too
    # Before the reporter takes the supervisor's variable out of the environment.
    role = "child" if os.environ.get(SUPERVISOR_FD_ENV) else "worker"
    reporter = Reporter.from_env()
    if processes is not None:
        if not modules:  # else each child imports them, and warns if they register nothing
            _warn_without_job_types(obj)
        argv = worker_argv(config, modules, verbose, plugin_options, ctx.command)
        supervisor_id = new_worker_id()
        env[SUPERVISOR_ID_ENV] = supervisor_id  # its children's rows name it
        supervisor = Supervisor(
            argv,
            processes,
            hard_timeout_grace=hard_timeout_grace,
            env=env,
            # Children that stop on purpose when the queues are empty are not restarted;
            # those recycled by --max-jobs, --max-time or --memory are.
            restart_clean_exits=not (config.stop_when_empty or config.once),
        )
        presence = supervisor_presence(
            obj.runtime(), supervisor_id, config, supervisor.request_restart
        )
        with _worker_scopes(obj, plugin_options, "supervisor"), presence:
            code = supervisor.run()
        ctx.exit(code)
    import_app_modules(modules)
    if reporter is None or modules:  # a supervisor warned for children without --import
        _warn_without_job_types(obj)
    with _worker_scopes(obj, plugin_options, role):
        loop = WorkerLoop(obj.runtime(), config, reporter=reporter, hard_exit=True)
        code = loop.run()
    ctx.exit(code)


def _worker_scopes(
    obj: CliContext, options: Mapping[str, Any], role: str
) -> AbstractContextManager[Any]:
    """The plugins' ``ferroq_worker_scope`` scopes as one; their errors stop the process."""
    hook = obj.pm.hook.ferroq_worker_scope
    if not hook.get_hookimpls():
        return nullcontext()
    stack = ExitStack()
    with stack:
        for scope in hook(runtime=obj.runtime(), options=dict(options), role=role):
            if scope is not None:
                stack.enter_context(scope)
        return stack.pop_all()
    raise AssertionError("unreachable")  # pragma: no cover


def _warn_without_job_types(obj: CliContext) -> None:
    """One line at start when the worker knows no job type: every job would fail as unknown
    (and be retried), which is almost always a missing ``--import``."""
    if not default_registry().has_types(obj.pm):
        log.warning(
            "no job types are registered (no --import, no `ferroq.jobs` entry points): every "
            "job will fail as an unknown type and be retried; pass --import MODULE (or set %s)",
            APP_ENV,
        )
