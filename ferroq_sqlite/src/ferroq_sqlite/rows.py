"""SQLite tuples as :class:`~ferroq_core.records.JobRow` records, timestamps decoded from the
stored integer microseconds.

The claim is the hot one: it returns the columns it does not set itself, in
:class:`JobRow`'s field order (the ``claim`` query), and :func:`claimed_rows` fills in the
four it set from the call's own values, with as little Python per row as it can. Every other
query reads whole rows in :data:`~ferroq_core.storage.rules.JOB_COLUMNS` order
(:func:`stored_row`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros
from ferroq_core.records import JobRow
from ferroq_core.storage.rules import JOB_COLUMNS, job_from_row

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

__all__ = ["CLAIM_COLUMNS", "SET_BY_CLAIM", "claimed_rows", "optional_time", "stored_row"]

#: The fields every claimed row gets from the claim statement itself; the ``claim`` query
#: returns the others, in JobRow's order (tests/sqlite checks this).
SET_BY_CLAIM = ("status", "claimed_at", "claimed_by", "heartbeat_at")
#: The columns the ``claim`` query returns, in order.
CLAIM_COLUMNS = tuple(c for c in JOB_COLUMNS if c not in SET_BY_CLAIM)

#: Positions of the timestamps in a row of JOB_COLUMNS.
_TIMES = (10, 11, 12, 14, 16)


def optional_time(value: int | None) -> datetime | None:
    """A stored timestamp (epoch microseconds, or NULL) as an aware datetime."""
    return None if value is None else from_micros(value)


def stored_row(row: Sequence[Any]) -> JobRow:
    """A row of JOB_COLUMNS, timestamps as stored, as a record."""
    values = list(row)
    for i in _TIMES:
        if values[i] is not None:
            values[i] = from_micros(values[i])
    return job_from_row(values)


def claimed_rows(rows: Iterable[Sequence[Any]], worker_id: str, now: int) -> list[JobRow]:
    """Records for rows of the ``claim`` query just claimed by ``worker_id`` at ``now``
    (epoch microseconds, as bound to the claim statement), in claim order (``RETURNING``
    gives none).

    A bulk dispatch gives its jobs one ``created_at`` (and, without a delay, one
    ``available_at``), so each distinct microsecond value is converted once per call.
    """
    claimed_at = from_micros(now)
    seen: dict[int, datetime] = {}
    get = seen.get

    def at(value: int) -> datetime:
        found = seen[value] = from_micros(value)
        return found

    # ``get(v) or at(v)``: a found datetime is always true, and the dict lookup inline costs
    # less than calling ``at`` for every row.
    return [
        JobRow(
            r[0],
            r[1],
            r[2],
            r[3],
            "claimed",
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            get(r[9]) or at(r[9]),
            get(r[10]) or at(r[10]),
            claimed_at,
            worker_id,
            claimed_at,
            r[11],
            None if r[12] is None else from_micros(r[12]),
            r[13],
            r[14],
        )
        # Claim order: (priority, available_at, id), columns 4, 9 and 0.
        for r in sorted(rows, key=lambda r: (r[4], r[9], r[0]))
    ]
