"""Issue 9's targets, checked against one run's medians (a missing figure is "not measured")."""

from __future__ import annotations

from typing import Any

Summary = dict[str, dict[str, dict[str, dict[str, float]]]]


def _get(summary: Summary, backend: str, workload: str, system: str, metric: str) -> float | None:
    value = summary.get(backend, {}).get(workload, {}).get(system, {}).get(metric)
    return None if value is None or value != value else float(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def check(summary: Summary) -> list[dict[str, Any]]:
    """Each target: ``{"target", "measured", "met"}`` (met None when not measured)."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float | None, ok: bool | None, unit: str = "") -> None:
        shown = "not measured" if value is None else f"{value:,.2f}{unit}"
        rows.append({"target": name, "measured": shown, "met": ok if value is not None else None})

    def ge(name: str, value: float | None, bound: float, unit: str = "") -> None:
        add(name, value, value is not None and value >= bound, unit)

    def le(name: str, value: float | None, bound: float, unit: str = "") -> None:
        add(name, value, value is not None and value <= bound, unit)

    for be, peers in (
        ("postgres", (("procrastinate", 10.0), ("pgqueuer", 3.0))),
        ("sqlite", (("huey", 3.0),)),
    ):
        f1 = _get(summary, be, "drain_1p", "ferroq", "jobs_per_s")
        for peer, bound in peers:
            ge(
                f"{be} drain >= {bound:g}x {peer}",
                _ratio(f1, _get(summary, be, "drain_1p", peer, "jobs_per_s")),
                bound,
                "x",
            )
        ge(
            f"{be} drain >= 0.5x raw-SQL bound",
            _ratio(f1, _get(summary, be, "drain_1p", "raw", "jobs_per_s")),
            0.5,
            "x",
        )
        ge(
            f"{be} bulk enqueue >= {'50,000' if be == 'postgres' else '100,000'} jobs/s",
            _get(summary, be, "enqueue_bulk", "ferroq", "jobs_per_s"),
            50_000 if be == "postgres" else 100_000,
            " jobs/s",
        )
        le(
            f"{be} idle latency p50 <= {5 if be == 'postgres' else 10} ms",
            _get(summary, be, "latency_idle", "ferroq", "p50_ms"),
            5 if be == "postgres" else 10,
            " ms",
        )
        if be == "postgres":
            le(
                "postgres idle latency p99 <= 20 ms",
                _get(summary, be, "latency_idle", "ferroq", "p99_ms"),
                20,
                " ms",
            )
            ge(
                "postgres 60 s drain: last 5 s window >= 0.8x first",
                _get(summary, be, "sustained", "ferroq", "last_over_first"),
                0.8,
                "x",
            )
        else:
            ge(
                "sqlite 2 processes >= 0.8x 1 process",
                _ratio(_get(summary, be, "drain_2p", "ferroq", "jobs_per_s"), f1),
                0.8,
                "x",
            )
            lock = _get(summary, be, "drain_2p", "ferroq", "lock_errors")
            add("sqlite 2 processes: zero lock errors", lock, lock == 0)
        ge(
            f"{be} drain with 1,000,000 pending >= 0.8x with 10,000",
            _ratio(
                _get(summary, be, "backlog_1m", "ferroq", "jobs_per_s"),
                _get(summary, be, "backlog_10k", "ferroq", "jobs_per_s"),
            ),
            0.8,
            "x",
        )
        growth = _get(summary, be, "sustained", "ferroq", "rss_growth")
        le(
            f"{be} worker RSS growth < 10% over the sustained run",
            None if growth is None else growth * 100,
            10,
            "%",
        )
        # Issue 22: flow control's cost on the drain (systems run when named), against the
        # same jobs (100 tenants) without limits, ferroq+keyed, when it ran.
        keyed = _get(summary, be, "drain_1p", "ferroq+keyed", "jobs_per_s")
        base = "the same jobs unlimited" if keyed is not None else "unlimited"
        for system, bound, what in (
            ("ferroq+limited", 0.7, "a per-key concurrency limit over 100 keys"),
            ("ferroq+unreached", 0.9, "limits declared but not reached"),
            ("ferroq+elsewhere", 0.97, "a job type limited that the queue does not hold"),
        ):
            ratio = _ratio(
                _get(summary, be, "drain_1p", system, "jobs_per_s"),
                keyed
                if keyed is not None
                else _get(summary, be, "drain_1p", "ferroq", "jobs_per_s"),
            )
            if ratio is not None:
                ge(f"{be} drain with {what} >= {bound:g}x {base}", ratio, bound, "x")
    return rows
