"""Flow-control declarations: concurrency limits, rate limits and fair queues, as records.

A job type declares its limits with class attributes (checked when the class is created, so
a bad one fails at import)::

    @attrs.define
    class SyncAccount(Job):
        concurrency_limit = 2          # at most 2 running at once ...
        rate_limit = (10, 60)          # ... and at most 10 starts a minute ...
        limit_per_tenant = True        # ... per tenant (the job's tenant id)

A queue's limits (and whether its tenants take turns) are set by an operator (``ferroq limits
set``) or :meth:`~ferroq_core.storage.flow.FlowStore.set_limit`. Both are rows of
``ferroq_limits`` (:class:`LimitRule`), which every worker's claim reads.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

import attrs

from ferroq_core.errors import InvalidLimit

__all__ = [
    "LimitRule",
    "LimitScope",
    "LimitUsage",
    "check_concurrency",
    "check_rate",
    "type_rule",
]

LimitScope = Literal["type", "queue"]


def check_concurrency(value: object, where: str) -> int | None:
    """``value`` as a concurrency limit (None: none); :class:`InvalidLimit` unless an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidLimit(f"{where}: the concurrency limit must be an int >= 1, got {value!r}")
    return value


def check_rate(value: object, where: str) -> tuple[int, float] | None:
    """``value`` as ``(n, seconds)`` (None: none); :class:`InvalidLimit` unless ``n`` is an
    int >= 1 and the window (seconds or a ``timedelta``) is positive and finite."""
    if value is None:
        return None
    if not isinstance(value, tuple) or len(value) != 2:
        raise InvalidLimit(f"{where}: the rate limit must be (n, per), got {value!r}")
    n, per = value
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidLimit(f"{where}: the rate limit's n must be an int >= 1, got {n!r}")
    seconds = per.total_seconds() if isinstance(per, timedelta) else per
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidLimit(f"{where}: the rate limit's window must be seconds or a timedelta")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise InvalidLimit(f"{where}: the rate limit's window must be > 0 seconds, got {per!r}")
    return n, float(seconds)


@attrs.frozen
class LimitRule:
    """One row of ``ferroq_limits``: the limits of a job type or of a queue."""

    #: ``type`` (``name`` is a job type name) or ``queue`` (``name`` is a queue).
    scope: LimitScope
    #: The job type's stable name, or the queue's name.
    name: str
    #: At most this many of its jobs claimed (running) at once; None: no limit.
    concurrency: int | None = None
    #: At most ``rate[0]`` starts (claims) in any ``rate[1]`` seconds; None: no limit.
    rate: tuple[int, float] | None = None
    #: Count per tenant (each tenant has the limits) rather than over the whole scope.
    per_tenant: bool = False
    #: Queues only: within a priority level, tenants with due jobs take turns.
    fair: bool = False

    def __attrs_post_init__(self) -> None:
        where = f"{self.scope} {self.name!r}"
        if self.scope not in ("type", "queue"):
            raise InvalidLimit(f"limit scope must be 'type' or 'queue', got {self.scope!r}")
        check_concurrency(self.concurrency, where)
        check_rate(self.rate, where)
        if self.fair and self.scope != "queue":
            raise InvalidLimit(f"{where}: only a queue can be fair")

    @property
    def limits(self) -> bool:
        """Whether it limits anything (a fair queue without limits only orders)."""
        return self.concurrency is not None or self.rate is not None


@attrs.frozen
class LimitUsage:
    """Where one limit stands for one key (``ferroq limits``)."""

    #: The limit.
    rule: LimitRule
    #: The tenant for a per-tenant limit, '' otherwise.
    key: str
    #: Jobs claimed (running) now under this key.
    running: int
    #: Starts within the current rate window (0 without a rate limit).
    started: int
    #: Due pending jobs under this key (waiting for their turn or for room).
    waiting: int


def type_rule(cls: type, name: str) -> LimitRule | None:
    """The limits a job type declares with ``concurrency_limit``, ``rate_limit`` and
    ``limit_per_tenant``, or None; :class:`InvalidLimit` for a bad declaration."""
    where = f"job type {name}"
    concurrency = check_concurrency(getattr(cls, "concurrency_limit", None), where)
    rate = check_rate(getattr(cls, "rate_limit", None), where)
    per_tenant = getattr(cls, "limit_per_tenant", False)
    if not isinstance(per_tenant, bool):
        raise InvalidLimit(f"{where}: limit_per_tenant must be True or False")
    if concurrency is None and rate is None:
        return None
    return LimitRule("type", name, concurrency=concurrency, rate=rate, per_tenant=per_tenant)
