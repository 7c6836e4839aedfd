"""Many new jobs into SQLite: rows that differ only in their payload go in as one statement.

``executemany`` binds and steps the ``insert_job`` query once per row, which costs more than
everything else a bulk dispatch does per job. The ``insert_jobs_json`` query takes a run of
rows sharing every other column as one JSON array of payloads, which SQLite walks in C
(docs/performance.md has the numbers; tests/sqlite/test_bulk.py checks the rows are the
same). A bulk dispatch is such runs almost always (one job type, one queue, no delay); rows
in shorter runs, and runs whose payloads cannot travel in an array, still go through
``executemany``. Either way rows are inserted in the order given, so AUTOINCREMENT gives them
consecutive ids in that order, which :func:`ferroq_sqlite.dispatch.insert_plain` relies on.
"""

from __future__ import annotations

import itertools
import json
import operator
from typing import TYPE_CHECKING, Any

from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Sequence

__all__ = ["MAX_ARRAY_CHARS", "MIN_RUN", "insert_in_order"]

#: Runs shorter than this go through ``executemany`` (the array costs more than it saves).
MIN_RUN = 8
#: Payload characters per JSON array, at most (SQLite's default limit on one value is 1 GB;
#: this keeps a statement's memory modest whatever the payloads).
MAX_ARRAY_CHARS = 4_000_000

#: Everything but the payload, in ``insert_jobs_json``'s parameter order.
_shared = operator.itemgetter(0, 1, 3, 4, 5, 6, 7, 8)
_array = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def insert_in_order(db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (``insert_job``'s parameters) in order, in the open transaction."""
    short: list[tuple[Any, ...]] = []
    for shared, run in itertools.groupby(rows, key=_shared):
        group = list(run)
        if len(group) < MIN_RUN:
            short.extend(group)
            continue
        if short:
            db.executemany(sql("insert_job"), short)
            short = []
        for chunk in _chunks(group):
            _insert_run(db, shared, chunk)
    if short:
        db.executemany(sql("insert_job"), short)


def _insert_run(
    db: sqlite3.Connection, shared: tuple[Any, ...], rows: list[tuple[Any, ...]]
) -> None:
    try:
        text = _array([row[2] for row in rows])
    except (TypeError, ValueError):  # not all text: bind them one by one, as before
        db.executemany(sql("insert_job"), rows)
        return
    if "\\u0000" in text:
        # json_each ends a text value at a NUL character (a false alarm, an escaped
        # backslash before "u0000", only costs the faster path).
        db.executemany(sql("insert_job"), rows)
        return
    db.execute(sql("insert_jobs_json"), (*shared, text))


def _chunks(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    size = 0
    for row in rows:
        length = len(row[2])
        if chunk and size + length > MAX_ARRAY_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += length
    if chunk:
        yield chunk
