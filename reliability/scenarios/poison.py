"""Scenario 5, poison input: bad jobs mixed into good ones under ``--processes 2``.

Rows written straight through the storage contract (bypassing the serializer) carry invalid
JSON, wrong field types, unknown job types, huge and deeply nested payloads, NaN and NUL bytes;
dispatched jobs have unknown tenants or handlers that raise ``SystemExit``,
``KeyboardInterrupt`` or ``MemoryError``, hang past their timeout (sync and async) or call
``os._exit``. The supervisor must never die, each bad job must end failed with a clear,
size-capped error, every good job must succeed. Dispatch-side limits are checked too: the
payload size limit (default and ``FERROQ_MAX_PAYLOAD_BYTES``) and NaN.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from ferroq_core import (
    EnqueueRequest,
    FerroqError,
    PayloadTooLarge,
    QueueConfig,
    Runtime,
    SerializationError,
)
from ferroq_core.dispatch_requests import build_request
from ferroq_core.dispatching import dispatch
from ferroq_core.storage.rules import is_orphaned
from reliability.checker import Fault
from reliability.harness import Bench, ScenarioResult, wait_for
from reliability.jobs import AsyncHang, Carry, Misbehave, Work
from reliability.scenarios.base import Context, Timer, report_figures

__all__ = ["run"]

#: Largest error text a failed job may carry (the storage cap plus its cut marker).
ERROR_CAP = 16_000 + 200
MIB = 1024 * 1024

#: Raw rows of type chaos.work that must fail to decode: kind -> payload.
RAW: dict[str, str] = {
    "invalid_json": '{"token": 1,',
    "wrong_types": '{"token": [1, 2], "duration": "slow"}',
    "not_an_object": "[1, 2, 3]",
    "huge": '{"token": "' + "x" * (2 * MIB) + '"}',
    "deep": '{"token": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "nan": '{"token": NaN}',
    "nul_escaped": '{"token": "\\u0000"}',
    "nul_raw": '{"token": 1, "note": "a\x00b"}',
}
#: What the error of each bad kind must mention.
REASON: dict[str, str] = {
    **{kind: "JobDecodeError" for kind in RAW},
    "unknown_type": "chaos.no_such_type",
    "system_exit": "SystemExit",
    "keyboard_interrupt": "KeyboardInterrupt",
    "memory_error": "MemoryError",
    "hang": "JobTimeout",
    "async_hang": "JobTimeout",
    # Taken back from its dead process at a restart on the host, or by the reaper.
    "os_exit": "orphaned: ",
    "unknown_tenant": "TenantNotFound",
}
#: Kinds that take their worker process down; few, because the supervisor rate-limits
#: restarts (5 per slot per minute).
PROCESS_KILLERS = ("os_exit", "hang")


def _tenancy_installed() -> bool:
    try:
        import ferroq_tenancy  # noqa: F401
    except ImportError:
        return False
    return True


def _bad_request(kind: str, token: int, runtime: Runtime) -> EnqueueRequest:
    if kind in RAW:
        return EnqueueRequest("default", "chaos.work", RAW[kind], max_attempts=1)
    if kind == "unknown_type":
        return EnqueueRequest("default", "chaos.no_such_type", "{}", max_attempts=1)
    if kind == "async_hang":
        return build_request(AsyncHang(token).pending(), runtime)
    if kind == "unknown_tenant":
        return build_request(Misbehave(token, "never").for_tenant("ghost"), runtime)
    if kind == "hang":
        # Later than the os._exit jobs, so a hang meets a process of its own (not one that an
        # os._exit is about to end) and the supervisor's hard timeout really fires.
        return build_request(Misbehave(token, kind).delay(3.0), runtime)
    return build_request(Misbehave(token, kind).pending(), runtime)


def _tokens_of(bench: Bench, kind_of: dict[int, str], kind: str) -> set[int]:
    return {bench.tokens[i] for i, k in kind_of.items() if k == kind}


def _dispatch_checks(bench: Bench, problems: list[str]) -> None:
    """What dispatch must refuse, with nothing written."""
    before = bench.runtime.backend.get_stats().total
    try:
        dispatch(Carry(data="x" * (MIB + 1)), runtime=bench.runtime)
        problems.append("a payload over the default 1 MiB limit was accepted")
    except PayloadTooLarge as exc:
        if "FERROQ_MAX_PAYLOAD_BYTES" not in str(exc):
            problems.append(f"PayloadTooLarge does not say how to raise the limit: {exc}")
    env = {"QUEUE_CONNECTION": "db", "FERROQ_MAX_PAYLOAD_BYTES": "600"}
    small = attrs.evolve(bench.runtime, config=QueueConfig.from_env(env))
    fits = Carry(data="x" * 500)
    if len(small.serializer.encode(fits).encode()) > 600:
        problems.append("test bug: the fitting payload is over 600 bytes")
    dispatch(fits, runtime=small)
    try:
        dispatch(Carry(data="x" * 700), runtime=small)
        problems.append("FERROQ_MAX_PAYLOAD_BYTES=600 let a 700-byte payload through")
    except PayloadTooLarge:
        pass
    try:
        dispatch(Carry(value=float("nan")), runtime=bench.runtime)
        problems.append("a NaN field was accepted at dispatch")
    except SerializationError:
        pass
    if bench.backend == "postgres":
        # Postgres text cannot hold NUL: the driver's error must come out as a FerroqError.
        try:
            bench.runtime.backend.enqueue([EnqueueRequest("default", "chaos.work", RAW["nul_raw"])])
            problems.append("Postgres stored a payload with a raw NUL byte")
        except FerroqError:
            pass
        except Exception as exc:
            problems.append(f"a raw NUL payload raised a driver error: {exc!r}")
    after = bench.runtime.backend.get_stats().total
    if after != before + 1:
        problems.append(f"refused dispatches wrote rows ({after - before - 1} extra)")
    bench.runtime.backend.clear_queue("default")


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    rng = random.Random(5)
    n_good, per_kind, killers = (400, 4, 2) if ctx.quick else (10_000, 80, 6)
    kinds = [k for k in REASON if k not in PROCESS_KILLERS]
    if ctx.backend == "postgres":
        kinds.remove("nul_raw")
    if not _tenancy_installed():
        kinds.remove("unknown_tenant")
    problems: list[str] = []
    with ctx.bench("poison") as bench:
        bench.extra_env["FERROQ_TENANT_PROVIDER"] = "reliability.jobs:KnownTenants"
        _dispatch_checks(bench, problems)
        items: list[tuple[int, EnqueueRequest, bool, str]] = []
        token = 0
        for _ in range(n_good):
            token += 1
            items.append((token, build_request(Work(token).pending(), bench.runtime), True, ""))
        for kind in kinds + list(PROCESS_KILLERS):
            for _ in range(killers if kind in PROCESS_KILLERS else per_kind):
                token += 1
                items.append((token, _bad_request(kind, token, bench.runtime), False, kind))
        rng.shuffle(items)
        kind_of: dict[int, str] = {}
        for start in range(0, len(items), 500):
            part = items[start : start + 500]
            results = bench.runtime.backend.enqueue([req for _, req, _, _ in part])
            for res, (tok, _, ok, kind) in zip(results, part, strict=True):
                bench.tokens[res.id] = tok
                bench.expect_ok[tok] = ok
                kind_of[res.id] = kind
        supervisor = bench.start_worker(
            "supervisor", processes=2, concurrency=4, visibility=2.0, heartbeat=0.4,
            reaper=0.5, extra=["--hard-timeout-grace", "1.0"],
        )  # fmt: skip
        try:
            bench.wait_drained(120 if ctx.quick else 1800)
        except TimeoutError as exc:
            problems.append(str(exc))
        # Each process that ran a hanging sync job must be killed by the supervisor once the
        # job overran its timeout by the grace period.
        hung = {
            e.pid
            for e in bench.effects()
            if e.kind == "start" and e.token in _tokens_of(bench, kind_of, "hang")
        }
        try:
            wait_for(
                lambda: supervisor.log_text().count("overran its timeout") >= len(hung),
                10,
                "the supervisor's hard-timeout kills",
            )
        except TimeoutError as exc:
            problems.append(str(exc))
        if not supervisor.alive():
            problems.append(f"the supervisor died (exit code {supervisor.popen.returncode})")
        # A process-killing job explains re-runs of what its process was running.
        killer_tokens = {
            bench.tokens[i]: kind_of[i] for i in kind_of if kind_of[i] in PROCESS_KILLERS
        }
        for e in bench.effects():
            if e.kind == "start" and e.token in killer_tokens:
                kind = killer_tokens[e.token]
                # When the process ended, between two bounds: os._exit a moment after its
                # job started (other threads may log a finished run meanwhile); a hang when
                # the supervisor's hard timeout fires (after the job's 1 s timeout, before
                # that plus the 1 s grace, the supervisor's 0.2 s poll and some slack).
                if kind == "hang":
                    bench.faults.append(Fault(kind, e.pid, e.ts + 1.0, e.ts + 2.5))
                else:
                    bench.faults.append(Fault(kind, e.pid, e.ts, e.ts + 0.5))
        report = bench.report()
        problems += report.problems
        failed = {r.id: r for r in bench.runtime.backend.list_jobs(limit=1_000_000)}
        killer_pids = {f.pid for f in bench.faults}
        ran_on: dict[int, set[int]] = {}
        for e in bench.effects():
            ran_on.setdefault(e.token, set()).add(e.pid)
        longest = collateral = 0
        for job_id, kind in kind_of.items():
            if not kind or job_id not in failed:
                continue
            error = failed[job_id].error or ""
            longest = max(longest, len(error))
            if len(error) > ERROR_CAP:
                problems.append(f"{kind}: error of {len(error)} characters (cap {ERROR_CAP})")
            if REASON[kind] in error:
                continue
            # A job that a process-killing neighbour took down gets the attempt back and runs
            # again alone: it must end with its own reason, never as the collateral.
            pids = ran_on.get(bench.tokens[job_id], set())
            if is_orphaned(error) and (not pids or pids & killer_pids):
                collateral += 1
            problems.append(f"{kind}: error does not mention {REASON[kind]!r}: {error[:200]!r}")
        pids = {e.pid for e in bench.effects()}
        figures: dict[str, Any] = report_figures(report)
        figures.update(
            bad=len(kind_of) - n_good,
            good=n_good,
            kinds=len(kinds) + len(PROCESS_KILLERS),
            worker_processes=len(pids),
            longest_error=longest,
            collateral=collateral,
            hard_timeout_kills=supervisor.log_text().count("overran its timeout"),
        )
    return ScenarioResult("poison", ctx.backend, figures, problems, timer.seconds)
