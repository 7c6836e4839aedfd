"""Unique jobs: :class:`Unique`, how long a job's key keeps equal dispatches out
(:class:`UniqueMode`), what a conflicting dispatch does (:class:`OnConflict`), and the key
made from chosen payload fields (:func:`fields_key`).

A job type declares ``unique = Unique(...)``; a dispatch may choose another with
``.with_unique(Unique(...))``. The database enforces it (unique indexes on both backends):
see docs/unique-jobs.md for what each mode holds and when.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import attrs

from ferroq_core.bounds import MAX_DELAY_SECONDS
from ferroq_core.errors import InvalidDispatch

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "OnConflict",
    "Unique",
    "UniqueKey",
    "UniqueMode",
    "check_unique_fields",
    "fields_key",
]


class UniqueMode(str, enum.Enum):
    """How long a job holds its key: while a dispatch with an equal key is a conflict."""

    #: While the job is pending: waiting for its first run or for a retry. Running, it holds
    #: nothing (an equal dispatch then enqueues a new job).
    WHILE_QUEUED = "while_queued"
    #: From dispatch until its first claim; the key is free from then on, retries included.
    UNTIL_STARTED = "until_started"
    #: While the job is pending or running (until it succeeds or fails for good): the
    #: idempotency key's behaviour, and the default.
    UNTIL_FINISHED = "until_finished"
    #: For :attr:`Unique.period` from the dispatch that took the key, whatever becomes of the
    #: job (also after it finished).
    FOR_PERIOD = "for_period"


class OnConflict(str, enum.Enum):
    """What a dispatch does when its key is held."""

    #: Insert nothing; return the holder's id with ``duplicate`` set.
    SKIP = "skip"
    #: Debounce: a pending holder takes the new payload and run time (``replaced`` set). A
    #: running one is never changed: in ``while_queued`` and ``until_started`` it holds
    #: nothing and the dispatch is inserted; otherwise it is a ``skip``.
    REPLACE = "replace"
    #: Raise :class:`~ferroq_core.errors.DuplicateJob`; nothing of the dispatch is stored.
    RAISE = "raise"


def _mode(value: UniqueMode | str | None) -> UniqueMode | None:
    if value is None:
        return None
    try:
        return UniqueMode(value)
    except ValueError:
        names = ", ".join(m.value for m in UniqueMode)
        raise InvalidDispatch(f"unknown unique mode {value!r}: use one of {names}") from None


def _on_conflict(value: OnConflict | str) -> OnConflict:
    try:
        return OnConflict(value)
    except ValueError:
        names = ", ".join(m.value for m in OnConflict)
        raise InvalidDispatch(f"unknown on_conflict policy {value!r}: use one of {names}") from None


def _period(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise InvalidDispatch(
            f"a unique period must be a timedelta or seconds, got {type(value).__name__}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidDispatch(f"a unique period must be positive and finite, got {value!r}")
    if seconds > MAX_DELAY_SECONDS:
        raise InvalidDispatch(f"a unique period must be at most 100 years, got {value!r}")
    return seconds


def _fields(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        fields = tuple(value)
    except TypeError:
        raise InvalidDispatch(f"unique fields must be field names, got {value!r}") from None
    if not all(isinstance(f, str) and f for f in fields):
        raise InvalidDispatch(f"unique fields must be field names (non-empty str), got {value!r}")
    return tuple(sorted(set(fields)))


@attrs.frozen
class Unique:
    """A unique-job rule: ``Unique(mode, period=..., fields=..., on_conflict=...)``.

    The key is the dispatch's ``with_idempotency_key()`` if given; else a hash of ``fields``
    of the encoded payload when ``fields`` are named; else the job's ``idempotency_key()`` if
    it returns one; else a hash of the whole payload. Keys are per job type.
    """

    #: How long the key is held (default :attr:`UniqueMode.UNTIL_FINISHED`, or
    #: :attr:`UniqueMode.FOR_PERIOD` when a period is given).
    mode: UniqueMode = attrs.field(default=None, converter=_mode)
    #: Seconds the key is held in :attr:`UniqueMode.FOR_PERIOD` (a timedelta or seconds).
    period: float | None = attrs.field(default=None, converter=_period)
    #: Payload fields the key is a hash of (sorted; empty: see the class doc).
    fields: tuple[str, ...] = attrs.field(default=(), converter=_fields)
    #: What a conflicting dispatch does.
    on_conflict: OnConflict = attrs.field(default=OnConflict.SKIP, converter=_on_conflict)

    def __attrs_post_init__(self) -> None:
        if cast("UniqueMode | None", self.mode) is None:
            mode = UniqueMode.FOR_PERIOD if self.period is not None else UniqueMode.UNTIL_FINISHED
            object.__setattr__(self, "mode", mode)
        elif self.mode is UniqueMode.FOR_PERIOD and self.period is None:
            raise InvalidDispatch("unique mode for_period needs a period, e.g. period=60")
        elif self.mode is not UniqueMode.FOR_PERIOD and self.period is not None:
            raise InvalidDispatch(
                f"a unique period applies to mode for_period only, not {self.mode.value}: "
                "drop the mode or the period"
            )

    @property
    def is_idempotency(self) -> bool:
        """Whether this is exactly what an idempotency key alone does (until finished, skip)."""
        return self.mode is UniqueMode.UNTIL_FINISHED and self.on_conflict is OnConflict.SKIP


@attrs.frozen
class UniqueKey:
    """A unique key as stored with a job (``ferroq show``)."""

    #: The key's text.
    key: str
    #: ``pending``: on the job's row (modes ``while_queued`` and ``until_started``), held
    #: while the row's state holds it; ``period``: a key the job took for a period.
    held: str
    #: When a period key's period ends (None for a key on the row).
    expires_at: datetime | None = None


def check_unique_fields(type_name: str, unique: Unique, fields: Iterable[str]) -> None:
    """Raise unless every field of ``unique`` is one of ``fields`` (the job type's)."""
    known = set(fields)
    unknown = [f for f in unique.fields if f not in known]
    if unknown:
        raise InvalidDispatch(
            f"job {type_name}: unique fields {', '.join(map(repr, unknown))} are not fields of "
            f"its payload ({', '.join(sorted(known)) or 'none'})"
        )


def fields_key(type_name: str, payload: str, fields: tuple[str, ...]) -> str:
    """The key of ``fields`` of an encoded payload (all of it when ``fields`` is empty): the
    SHA-256 of their canonical JSON (sorted keys, no spaces), so equal values give equal keys
    in every process and version.

    :raises InvalidDispatch: a field is not in the payload.
    """
    data = json.loads(payload)
    if fields:
        if not isinstance(data, dict) or any(f not in data for f in fields):
            have = sorted(data) if isinstance(data, dict) else []
            check_unique_fields(type_name, Unique(fields=fields), have)
        data = {f: data[f] for f in fields}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()
