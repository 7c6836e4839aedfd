"""Rows a worker must fail alone, never loading them into a handler, while the others run:
stored text that is not valid UTF-8 (written by another program) and a payload over
``FERROQ_MAX_PAYLOAD_BYTES``. Real worker processes, both backends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ferroq_core import EnqueueRequest
from tests.worker.jobs import Record

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks, WorkerProcess

#: A Record payload whose tag holds a byte that is not UTF-8 (0xff), as hex.
_BAD_PAYLOAD_HEX = b'{"tag": "4111\xff"}'.hex()


def _insert_undecodable(runtime: Runtime) -> int:
    """A pending Record row whose payload is not UTF-8, as another program could write it."""
    engine: sa.engine.Engine = runtime.backend.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        return int(
            conn.exec_driver_sql(
                "INSERT INTO ferroq_jobs (queue, job_type, payload, status, available_at, "
                f"created_at) VALUES ('default', 'test.record', CAST(x'{_BAD_PAYLOAD_HEX}' AS "
                "TEXT), 'pending', 0, 0) RETURNING id"
            ).scalar_one()
        )


@pytest.mark.slow
def test_a_row_that_is_not_utf8_fails_alone(
    runtime: Runtime, db_url: str, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    if not db_url.startswith("sqlite"):
        # Postgres checks every text it stores: no program can write such a row there.
        engine: sa.engine.Engine = runtime.backend.engine  # type: ignore[attr-defined]
        with pytest.raises(sa.exc.DataError, match="invalid byte sequence"), engine.begin() as c:
            c.exec_driver_sql(
                "INSERT INTO ferroq_jobs (queue, job_type, payload, available_at, created_at) "
                f"VALUES ('default', 'test.record', convert_from('\\x{_BAD_PAYLOAD_HEX}'::bytea, "
                "'UTF8'), now(), now())"
            )
        assert runtime.backend.list_jobs() == []
        return
    Record(tag="before").dispatch()
    bad = _insert_undecodable(runtime)
    Record(tag="after").dispatch()
    worker = start_worker("--stop-when-empty", "--sleep", "0.1")
    assert worker.wait(30) == 0, worker.output()
    assert sorted(marks.order()) == ["after", "before"]
    (row,) = runtime.backend.list_jobs()
    assert row.id == bad
    assert row.status == "failed"
    assert row.error is not None
    assert "stored payload is not valid UTF-8" in row.error
    assert "4111" not in row.error
    assert row.payload == '{"tag": "4111\ufffd"}'
    assert "database unavailable" not in worker.output()


@pytest.mark.slow
def test_a_payload_over_the_cap_fails_alone(
    runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    Record(tag="small-1").dispatch()
    # Written under a higher limit (or by another program): 5,000 bytes.
    big = json.dumps({"tag": "x" * 4_980})
    (result,) = runtime.backend.enqueue([EnqueueRequest("default", "test.record", big)])
    Record(tag="small-2").dispatch()
    worker = start_worker(
        "--stop-when-empty", "--sleep", "0.1", extra_env={"FERROQ_MAX_PAYLOAD_BYTES": "1000"}
    )
    assert worker.wait(30) == 0, worker.output()
    assert sorted(marks.order()) == ["small-1", "small-2"]
    (row,) = runtime.backend.list_jobs()
    assert row.id == result.id
    assert row.status == "failed"
    assert row.attempts == 1
    assert row.error is not None
    assert f"is {len(big)} bytes, over the 1000-byte limit" in row.error
