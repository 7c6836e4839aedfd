"""Flow-control declarations: concurrency limits, rate limits and fair queues, as records.

A job type declares its limits with class attributes (checked when the class is created, so
a bad one fails at import)::

    @attrs.define
    class SyncAccount(Job):
        concurrency_limit = 2          # at most 2 running at once ...
        rate_limit = (10, 60)          # ... and at most 10 starts a minute ...
        limit_key = "account_id"       # ... per account (so per key: limit_per_key = True)

        account_id: str

A job's *limit key* is the key given at dispatch (``.with_limit_key(k)``), else the value of
the payload field its type names in ``limit_key``, else its tenant id, else none; it is
stored with the job (``ferroq_jobs.limit_key``). A rule counted per key gives each key the
limits of its own; a fair queue's keys take turns.

A queue's limits (and whether its limit keys take turns) are set by an operator (``ferroq limits
set``) or :meth:`~ferroq_core.storage.flow.FlowStore.set_limit`. Both are rows of
``ferroq_limits`` (:class:`LimitRule`), which every worker's claim reads.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import attrs

from ferroq_core.errors import InvalidLimit

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "LimitRule",
    "LimitScope",
    "LimitUsage",
    "check_concurrency",
    "check_limit_key_field",
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


@attrs.frozen(init=False)
class LimitRule:
    """One row of ``ferroq_limits``: the limits of a job type or of a queue.

    ``per_tenant=`` is accepted as the old name of ``per_key`` (the key is the tenant when
    a job was given no other)."""

    #: ``type`` (``name`` is a job type name) or ``queue`` (``name`` is a queue).
    scope: LimitScope
    #: The job type's stable name, or the queue's name.
    name: str
    #: At most this many of its jobs claimed (running) at once; None: no limit.
    concurrency: int | None = None
    #: At most ``rate[0]`` starts (claims) in any ``rate[1]`` seconds; None: no limit.
    rate: tuple[int, float] | None = None
    #: Count per limit key (each key has the limits) rather than over the whole scope.
    per_key: bool = False
    #: Queues only: within a priority level, limit keys with due jobs take turns.
    fair: bool = False

    def __init__(
        self,
        scope: LimitScope,
        name: str,
        concurrency: int | None = None,
        rate: tuple[int, float] | None = None,
        per_key: bool = False,
        fair: bool = False,
        *,
        per_tenant: bool | None = None,
    ) -> None:
        if per_tenant is not None:
            per_key = per_key or per_tenant
        self.__attrs_init__(scope, name, concurrency, rate, per_key, fair)

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

    @property
    def per_tenant(self) -> bool:
        """The old name of :attr:`per_key`."""
        return self.per_key


@attrs.frozen
class LimitUsage:
    """Where one limit stands for one key (``ferroq limits``)."""

    #: The limit.
    rule: LimitRule
    #: The limit key for a per-key limit ('' for jobs without one), '' otherwise.
    key: str
    #: Jobs claimed (running) now under this key.
    running: int
    #: Starts within the current rate window (0 without a rate limit).
    started: int
    #: Due pending jobs under this key (waiting for their turn or for room).
    waiting: int


def check_limit_key_field(type_name: str, field: str | None, fields: Iterable[str]) -> None:
    """Raise :class:`InvalidLimit` unless ``field`` (a type's ``limit_key``) is None or one
    of ``fields`` (the type's payload fields)."""
    if field is None:
        return
    known = set(fields)
    if field not in known:
        raise InvalidLimit(
            f"job type {type_name}: limit_key {field!r} is not a field of its payload "
            f"({', '.join(sorted(known)) or 'none'})"
        )


def _declared_key(cls: type, where: str) -> str | None:
    field = getattr(cls, "limit_key", None)
    if field is not None and (not isinstance(field, str) or not field):
        raise InvalidLimit(
            f"{where}: limit_key must be the name of a payload field (a str), got {field!r}"
        )
    return field


def _per_key(cls: type, where: str, field: str | None) -> bool:
    """``limit_per_key`` (or its old name ``limit_per_tenant``); unset: whether the type
    names a ``limit_key`` field."""
    found: dict[str, bool] = {}
    for attr in ("limit_per_key", "limit_per_tenant"):
        value = getattr(cls, attr, None)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise InvalidLimit(f"{where}: {attr} must be True or False")
        found[attr] = value
    if len(set(found.values())) > 1:
        raise InvalidLimit(
            f"{where}: limit_per_tenant is the old name of limit_per_key: set only limit_per_key"
        )
    if found:
        return next(iter(found.values()))
    return field is not None


def type_rule(cls: type, name: str) -> LimitRule | None:
    """The limits a job type declares with ``concurrency_limit``, ``rate_limit``,
    ``limit_key`` and ``limit_per_key`` (or ``limit_per_tenant``), or None;
    :class:`InvalidLimit` for a bad declaration."""
    where = f"job type {name}"
    concurrency = check_concurrency(getattr(cls, "concurrency_limit", None), where)
    rate = check_rate(getattr(cls, "rate_limit", None), where)
    per_key = _per_key(cls, where, _declared_key(cls, where))
    if concurrency is None and rate is None:
        return None
    return LimitRule("type", name, concurrency=concurrency, rate=rate, per_key=per_key)
