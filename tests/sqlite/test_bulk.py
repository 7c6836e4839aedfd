"""A bulk dispatch on SQLite inserts runs of rows that differ only in their payload as one JSON
array (``ferroq_sqlite.bulk``): the stored rows, their ids and their order must be exactly
those of one INSERT per row, whatever the payloads hold and however the runs are cut."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core.records import EnqueueRequest
from ferroq_sqlite import bulk

if TYPE_CHECKING:
    from ferroq_sqlite.backend import SqliteBackend

ODD_PAYLOADS = [
    '{"a": "plain"}',
    '{"nul": "a\x00b"}',  # a raw NUL: json_each would cut the text there
    '{"escaped": "\\u0000 stays six characters"}',
    '{"quotes": "\\"x\\" \\\\ back\\\\slash"}',
    '{"text": "\u00e9\u2028\u4e2d\U0001f600"}',
    "",
    " leading space, not JSON at all {",
]


def _req(payload: str, **fields: Any) -> EnqueueRequest:
    return EnqueueRequest(**{"queue": "q", "job_type": "t", "payload": payload, **fields})


def _stored(backend: SqliteBackend, ids: list[int]) -> list[tuple[Any, ...]]:
    out = []
    for job_id in ids:
        row = backend.get_job(job_id)
        assert row is not None, f"job {job_id} is missing"
        out.append(
            (row.queue, row.job_type, row.payload, row.priority, row.max_attempts, row.tenant_id)
        )
    return out


def _expected(reqs: list[EnqueueRequest]) -> list[tuple[Any, ...]]:
    return [(r.queue, r.job_type, r.payload, r.priority, r.max_attempts, r.tenant_id) for r in reqs]


def test_runs_of_every_length_keep_their_rows_ids_and_order(backend: SqliteBackend) -> None:
    reqs: list[EnqueueRequest] = []
    for n, fields in [
        (1, {}),
        (bulk.MIN_RUN, {"priority": 3}),
        (40, {}),
        (bulk.MIN_RUN - 1, {"tenant_id": "t1"}),
        (2, {"max_attempts": 5}),
        (25, {"delay": 30.0}),
        (60, {}),
    ]:
        reqs += [_req(f'{{"n": {len(reqs) + i}}}', **fields) for i in range(n)]
    reqs += [_req(p, queue="odd") for p in ODD_PAYLOADS * 3]
    results = backend.enqueue(reqs)
    ids = [r.id for r in results]
    assert ids == list(range(ids[0], ids[0] + len(reqs))), "consecutive, in request order"
    assert _stored(backend, ids) == _expected(reqs)
    delayed = backend.get_job(ids[1 + bulk.MIN_RUN + 40 + bulk.MIN_RUN - 1 + 2])
    assert delayed is not None
    assert delayed.available_at - delayed.created_at == timedelta(seconds=30)


@pytest.mark.parametrize("payload", ODD_PAYLOADS)
def test_a_run_of_one_odd_payload_is_stored_exactly(backend: SqliteBackend, payload: str) -> None:
    reqs = [_req(payload) for _ in range(bulk.MIN_RUN * 2)]
    ids = [r.id for r in backend.enqueue(reqs)]
    assert _stored(backend, ids) == _expected(reqs)


def test_a_run_longer_than_one_array_is_split(
    backend: SqliteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_ARRAY_CHARS", 100)
    reqs = [_req('{"pad": "' + "x" * (i % 40) + '"}') for i in range(50)]
    ids = [r.id for r in backend.enqueue(reqs)]
    assert ids == list(range(ids[0], ids[0] + 50))
    assert _stored(backend, ids) == _expected(reqs)


def test_a_failing_run_commits_nothing(backend: SqliteBackend) -> None:
    good = [_req(f'{{"n": {i}}}') for i in range(20)]
    bad = [_req("\ud800 a lone surrogate") for _ in range(bulk.MIN_RUN)]
    with pytest.raises(Exception, match=r"surrogate|encode"):
        backend.enqueue(good + bad)
    assert backend.get_stats().total == 0
