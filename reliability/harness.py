"""The scenario bench: a fresh database with the audit installed, worker processes started
with the real ``ferroq worker`` command, fault injection and the checker's inputs.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from ferroq_core import Job, QueueConfig, Runtime, make_plugin_manager
from ferroq_core.dispatching import PendingDispatch, dispatch_many
from reliability.audit import Transition, install_audit, read_audit
from reliability.checker import Fault, Report, check
from reliability.ledger import FSYNC_ENV, LEDGER_ENV, Effect, read_ledger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["Bench", "ScenarioResult", "WorkerProc", "ferroq_command", "wait_for"]

REPO = Path(__file__).resolve().parent.parent
#: The real executable, started the way a user starts it (``ferroq`` is this entry point).
FERROQ = (sys.executable, "-c", "from ferroq_core.cli import main; main()")


def ferroq_command(*args: str) -> list[str]:
    return [*FERROQ, *args]


@functools.cache
def worker_flags() -> frozenset[str]:
    """The options ``ferroq worker --help`` lists (optional ones are only passed if known)."""
    out = subprocess.run(
        ferroq_command("worker", "--help"), capture_output=True, text=True, check=False
    )
    return frozenset(w.strip(",") for w in out.stdout.split() if w.startswith("--"))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@attrs.define
class WorkerProc:
    """A ``ferroq worker`` process the bench started (its own session, for clean-up)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@attrs.define
class ScenarioResult:
    """One scenario on one backend."""

    scenario: str
    backend: str
    #: Headline figures for the results table.
    figures: dict[str, Any]
    #: Broken guarantees (empty: passed).
    problems: list[str]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@attrs.define
class Bench:
    """Everything one scenario run needs; build it with :meth:`open`."""

    backend: str
    url: str
    workdir: Path
    runtime: Runtime
    faults: list[Fault] = attrs.field(factory=list)
    procs: list[WorkerProc] = attrs.field(factory=list)
    #: job id -> token, and token -> expected success, for every job dispatched.
    tokens: dict[int, int] = attrs.field(factory=dict)
    expect_ok: dict[int, bool] = attrs.field(factory=dict)
    #: Extra environment for the workers.
    extra_env: dict[str, str] = attrs.field(factory=dict)

    @property
    def ledger_dir(self) -> Path:
        return self.workdir / "ledger"

    @property
    def engine(self) -> sa.engine.Engine:
        engine: sa.engine.Engine = self.runtime.backend.engine  # type: ignore[attr-defined]
        return engine

    @classmethod
    @contextmanager
    def open(cls, backend: str, workdir: Path, server_url: str | None = None) -> Iterator[Bench]:
        """A fresh database: a SQLite file in ``workdir``, or a new database on the Postgres
        server ``server_url`` (dropped afterwards)."""
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "ledger").mkdir(exist_ok=True)
        drop: Callable[[], None] | None = None
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'jobs.db'}"
        else:
            if not server_url:
                raise ValueError("the postgres backend needs a server URL")
            url, drop = _create_pg_database(server_url)
        runtime = Runtime.build(
            url, QueueConfig(connection="db", database_url=url), make_plugin_manager()
        )
        bench = cls(backend=backend, url=url, workdir=workdir, runtime=runtime)
        try:
            runtime.backend.migrate()
            install_audit(bench.engine)
            yield bench
        finally:
            bench.stop_all()
            runtime.close()
            if drop is not None:
                drop()

    # -- workers -----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        env[LEDGER_ENV] = str(self.ledger_dir)
        env.setdefault(FSYNC_ENV, "1")
        env["FERROQ_DATABASE_URL"] = self.url
        env["QUEUE_CONNECTION"] = "db"
        env.update(self.extra_env)
        return env

    def start_worker(
        self,
        name: str,
        *,
        queues: str = "default",
        concurrency: int = 4,
        visibility: float = 2.0,
        heartbeat: float = 0.5,
        reaper: float = 0.5,
        shutdown: float = 5.0,
        processes: int | None = None,
        timeout: float | None = None,
        extra: Sequence[str] = (),
        url: str | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> WorkerProc:
        """Start ``ferroq worker``; ``url`` overrides the database URL, ``wrap`` the command
        line (a network namespace: ``ip netns exec NS ...`` keeps the pid)."""
        args = [
            "-v",
            "worker",
            "--import",
            "reliability.jobs",
            "--queue",
            queues,
            "--concurrency",
            str(concurrency),
            "--visibility-timeout",
            str(visibility),
            "--heartbeat-interval",
            str(heartbeat),
            "--shutdown-timeout",
            str(shutdown),
        ]
        if "--reaper-interval" in worker_flags():
            args += ["--reaper-interval", str(reaper)]
        if "--sleep" in worker_flags():
            args += ["--sleep", "0.2"]
        if processes is not None:
            args += ["--processes", str(processes)]
        if timeout is not None:
            args += ["--timeout", str(timeout)]
        args += list(extra)
        log = self.workdir / f"worker-{name}.log"
        env = self.env()
        if url is not None:
            env["FERROQ_DATABASE_URL"] = url
        command = ferroq_command(*args)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command if wrap is None else wrap(command),
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = WorkerProc(name=name, popen=popen, log=log, started=time.time())
        self.procs.append(proc)
        return proc

    def signal(self, proc: WorkerProc, sig: int, kind: str) -> float:
        """Send ``sig`` to ``proc`` and log the fault; returns when it was sent."""
        at = time.time()
        self.faults.append(Fault(kind=kind, pid=proc.pid, at=at))
        os.kill(proc.pid, sig)
        return at

    def stop_all(self) -> None:
        """Kill every process group the bench started (SIGCONT first: a stopped one too),
        and the children a supervisor started in sessions of their own."""
        for proc in self.procs:
            if proc.alive():
                groups = [proc.pid, *children_of(proc.pid)]
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    for group in groups:
                        with suppress(ProcessLookupError, PermissionError):
                            os.killpg(group, sig)
                with suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=10)

    # -- jobs --------------------------------------------------------------------------------
    def dispatch(
        self, jobs: Sequence[tuple[int, Job | PendingDispatch, bool]], chunk: int = 1000
    ) -> None:
        """Dispatch ``(token, job, expect_ok)`` triples in bulk and remember their ids."""
        for start in range(0, len(jobs), chunk):
            part = jobs[start : start + chunk]
            ids = dispatch_many([job for _, job, _ in part], runtime=self.runtime)
            for job_id, (token, _, ok) in zip(ids, part, strict=False):
                self.tokens[int(job_id)] = token
                self.expect_ok[token] = ok

    def open_jobs(self) -> int:
        stats = self.runtime.backend.get_stats()
        return stats.pending + stats.delayed + stats.claimed

    def wait_drained(self, timeout: float) -> None:
        wait_for(lambda: self.open_jobs() == 0, timeout, "the queue to drain", interval=0.25)

    def effects(self) -> list[Effect]:
        return read_ledger(self.ledger_dir)

    def audit(self) -> list[Transition]:
        return read_audit(self.engine)

    def report(self) -> Report:
        remaining = self.runtime.backend.list_jobs(limit=10_000_000)
        return check(
            self.tokens, self.expect_ok, self.effects(), self.audit(), remaining, self.faults
        )


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _create_pg_database(server_url: str) -> tuple[str, Callable[[], None]]:
    admin_url = sa.engine.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"ferroq_chaos_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # generated name, never input

    def drop() -> None:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()

    url = admin_url.set(database=name).render_as_string(hide_password=False)
    return url, drop
