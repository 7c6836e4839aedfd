"""The worker registry, ``ferroq health``'s queue check and ``ferroq restart``, with real
``ferroq worker`` processes on both backends (kill -9, SIGTERM, a ledger of runs)."""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core.cli.health import EXIT_UNSERVED_QUEUE
from tests.cli.conftest import make_invoke
from tests.worker.conftest import wait_for
from tests.worker.jobs import Held, Record, Sleep

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks, WorkerProcess

pytestmark = pytest.mark.slow

#: Short leases and beats so that death and restarts show within seconds.
FAST = ("--visibility-timeout", "4", "--heartbeat-interval", "0.3", "--reaper-interval", "0.5")


def _cli(runtime: Runtime) -> Callable[..., Any]:
    invoke = make_invoke(runtime.config.database_url)

    def run(*args: str) -> Any:
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result

    return run


def _workers(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    result = cli("workers", "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.output)["workers"]
    return found


def _pids(cli: Callable[..., Any]) -> set[int]:
    return {w["pid"] for w in _workers(cli)}


def test_workers_lists_exactly_the_live_ones_after_kill_9(
    runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks, tmp_path: Path
) -> None:
    cli = _cli(runtime)
    procs = [start_worker(*FAST, "--queue", "a,b", "--concurrency", "2") for _ in range(3)]
    wait_for(lambda: _pids(cli) == {p.pid for p in procs}, timeout=30)
    (first, *_) = _workers(cli)
    assert first["role"] == "worker"
    assert (first["queues"], first["concurrency"], first["visibility_timeout"]) == (
        ["a", "b"],
        2,
        4.0,
    )
    # What each runs: a long job shows under the worker that holds it (held until released).
    release = tmp_path / "release"
    job_id = Held(tag="long", release=str(release)).on_queue("b").dispatch()
    wait_for(lambda: marks.count("long", "start") == 1, timeout=30)
    holders = [w for w in _workers(cli) if w["jobs"]]
    assert [(j["id"], j["job_type"]) for w in holders for j in w["jobs"]] == [(job_id, "test.held")]
    holder = next(p for p in procs if p.pid == holders[0]["pid"])
    others = [p for p in procs if p is not holder]
    for proc in (holder, others[0]):
        proc.kill()  # kill -9: no deregistration
    survivor = others[1]
    # The survivor's reaper removes them (their pids are gone from this host) well within
    # the visibility timeout; the listing never shows a worker that is not running.
    wait_for(lambda: _pids(cli) == {survivor.pid}, timeout=4 + 10)
    # The killed worker's job came back and runs on the survivor.
    wait_for(lambda: marks.count("long", "start") == 2, timeout=30)
    (row,) = _workers(cli)
    assert [j["id"] for j in row["jobs"]] == [job_id]
    release.touch()
    wait_for(lambda: marks.count("long", "end") == 1, timeout=30)
    survivor.signal(signal.SIGTERM)
    assert survivor.wait(60) == 0, survivor.output()
    assert _workers(cli) == [], "a clean exit deregisters at once"


def test_a_dead_worker_drops_out_after_its_visibility_timeout_with_no_one_to_reap(
    runtime: Runtime, start_worker: Callable[..., WorkerProcess]
) -> None:
    cli = _cli(runtime)
    proc = start_worker(*FAST)
    wait_for(lambda: _pids(cli) == {proc.pid}, timeout=30)
    proc.kill()
    assert _pids(cli) == {proc.pid}, "shown until its heartbeat is older than its timeout"
    wait_for(lambda: _pids(cli) == set(), timeout=4 + 10)


def test_health_fails_while_no_live_worker_serves_a_queue_with_old_due_jobs(
    runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    cli = _cli(runtime)
    for i in range(4):
        Sleep(tag=f"slow{i}", seconds=20).on_queue("lonely").dispatch()
    health = ("health", "--max-unserved-age", "0.5", "--json")
    wait_for(lambda: cli(*health).exit_code == EXIT_UNSERVED_QUEUE, timeout=10)
    report = json.loads(cli(*health).output)
    assert report["checks"]["queues"]["ok"] is False
    assert [u["queue"] for u in report["checks"]["queues"]["unserved"]] == ["lonely"]
    stats = json.loads(cli("stats", "--json").output)
    assert [(q["queue"], q["served"]) for q in stats["queues"]] == [("lonely", False)]
    assert "NO WORKER" in cli("stats").output

    # A short shutdown timeout: a stopped worker hands its 20 s job back instead of waiting.
    quick_stop = ("--shutdown-timeout", "0.5")
    other = start_worker(*FAST, *quick_stop, "--queue", "other")
    wait_for(lambda: _pids(cli) == {other.pid}, timeout=30)
    assert cli(*health).exit_code == EXIT_UNSERVED_QUEUE, "a worker of another queue"

    # One slot: three of the four jobs stay due while it serves the queue.
    server = start_worker(*FAST, *quick_stop, "--queue", "lonely", "--concurrency", "1")
    wait_for(lambda: marks.count("slow0", "start") == 1, timeout=30)
    result = cli(*health)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["checks"]["queues"]["ok"] is True
    stats = json.loads(cli("stats", "--json").output)
    assert [(q["queue"], q["served"]) for q in stats["queues"]] == [("lonely", True)]
    for proc in (other, server):
        proc.signal(signal.SIGTERM)
    for proc in (other, server):
        proc.wait(60)
    assert cli(*health).exit_code == EXIT_UNSERVED_QUEUE


def _ledger(marks: Marks, tags: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    starts = {t: marks.count(t, "start") for t in tags}
    ends = {t: marks.count(t, "end") for t in tags}
    return starts, ends


def test_restart_under_load_every_worker_finishes_its_jobs_and_exits_0(
    runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    cli = _cli(runtime)
    tags = [f"j{i}" for i in range(120)]
    for tag in tags:
        Sleep(tag=tag, seconds=0.3).dispatch()
    procs = [start_worker(*FAST, "--concurrency", "2") for _ in range(4)]
    wait_for(lambda: _pids(cli) == {p.pid for p in procs}, timeout=30)
    wait_for(lambda: sum(marks.count(t, "end") for t in tags) >= 8, timeout=30)
    # Listed before: a worker may read the restart request and exit before a listing after.
    live = {w["id"] for w in _workers(cli)}
    result = cli("restart", "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)["workers"]) == live
    for proc in procs:
        assert proc.wait(60) == 0, proc.output()
        assert "restart requested" in proc.output()
    starts, ends = _ledger(marks, tags)
    assert starts == ends, "every job a worker started before it exited was finished"
    assert set(starts.values()) <= {0, 1}
    assert 0 in starts.values(), "the workers exited under load, not after draining"
    assert _workers(cli) == []
    # A worker started after the restart is not affected, and drains the rest: each job ran
    # exactly once in all.
    fresh = start_worker(*FAST, "--concurrency", "16", "--stop-when-empty")
    assert fresh.wait(120) == 0, fresh.output()
    starts, ends = _ledger(marks, tags)
    assert starts == ends == dict.fromkeys(tags, 1)
    assert runtime.backend.get_stats().total == 0


def test_a_supervisor_restarts_its_children_in_turn_and_keeps_running(
    runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    cli = _cli(runtime)
    for i in range(40):
        Record(tag=f"r{i}").dispatch()
    supervisor = start_worker(*FAST, "--processes", "2", "--concurrency", "1")

    def children() -> set[int]:
        return {w["pid"] for w in _workers(cli) if w["role"] == "child"}

    wait_for(lambda: len(children()) == 2, timeout=30)
    found = _workers(cli)
    (sup,) = [w for w in found if w["role"] == "supervisor"]
    assert sup["pid"] == supervisor.pid
    assert {w["supervisor"] for w in found if w["role"] == "child"} == {sup["id"]}
    before = children()
    assert cli("restart").exit_code == 0
    wait_for(lambda: len(children()) == 2 and not children() & before, timeout=60)
    wait_for(lambda: supervisor.output().count("restarted (pid") == 2, timeout=30)
    lines = supervisor.output().splitlines()
    events = [
        (kind, int(line.rsplit("pid ", 1)[1].rstrip(")")))
        for line in lines
        for kind in ("stopping it for the restart", "restarted (pid")
        if kind in line
    ]
    steps = [kind for kind, _ in events]
    # In turn: the second child is stopped only once the first one's replacement is ready.
    assert steps == ["stopping it for the restart", "restarted (pid"] * 2, lines
    (old1, new1), (old2, new2) = ((events[i][1], events[i + 1][1]) for i in (0, 2))
    assert {old1, old2} == before
    assert {new1, new2} == children()
    assert not {new1, new2} & before
    assert supervisor.proc.poll() is None, "the supervisor keeps running"
    assert [w["id"] for w in _workers(cli) if w["role"] == "supervisor"] == [sup["id"]]
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(60) == 0, supervisor.output()
    assert _workers(cli) == []
    assert sorted(marks.order()) == sorted(f"r{i}" for i in range(40))
