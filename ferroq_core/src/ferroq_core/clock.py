"""Time in ferroq: always timezone-aware UTC.

On SQLite every timestamp is stored as an integer count of microseconds since the Unix epoch
(UTC): fixed-width in meaning, ordered correctly by plain integer comparison, and free of the
text-comparison pitfalls of ISO strings with mixed offsets. On PostgreSQL timestamps are
``timestamptz`` and every comparison uses the database clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["EPOCH", "FAR_FUTURE", "FAR_PAST", "from_micros", "seconds", "to_micros", "utcnow"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: What a stored time past year 9999 (or ``infinity``) reads as: ferroq never stores one (see
#: :data:`~ferroq_core.bounds.MAX_DELAY_SECONDS`), another program may, and listings must
#: still show its row.
FAR_FUTURE = datetime.max.replace(tzinfo=timezone.utc)
#: What a stored time before year 1 (or ``-infinity``) reads as.
FAR_PAST = datetime.min.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    """The host clock as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def to_micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: ferroq needs timezone-aware datetimes")
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime (:data:`FAR_FUTURE` or
    :data:`FAR_PAST` beyond what a datetime holds)."""
    try:
        return EPOCH + timedelta(microseconds=int(value))
    except OverflowError:
        return FAR_FUTURE if value > 0 else FAR_PAST


def seconds(value: float | timedelta) -> float:
    """A delay given as seconds or a timedelta, as seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)
