"""Jobs with a unique rule into Postgres, inside an open transaction (a batch's or a
caller's): the statements of :class:`~ferroq_core.storage.unique.UniqueStatements`, settled
by :func:`~ferroq_core.storage.unique.settle_unique`, after a batch's new keys of modes
``while_queued`` and ``until_started`` went in as one statement (:func:`insert_new_keys`).
Every time is the database clock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.storage.unique import PRUNE_EVERY, settle_unique
from ferroq_core.unique import UniqueKey, UniqueMode
from ferroq_postgres.connections import fetch, rowcount
from ferroq_postgres.params import bulk_params, job_params

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from ferroq_core.records import EnqueueRequest, EnqueueResult
    from ferroq_postgres.connections import Connections

__all__ = ["PostgresUnique", "insert_new_keys", "insert_unique", "unique_keys"]

#: The modes whose new keys a batch inserts in one statement.
_ROW_KEY_MODES = (UniqueMode.WHILE_QUEUED, UniqueMode.UNTIL_STARTED)


def insert_unique(
    conn: psycopg.Connection[Any], req: EnqueueRequest, *, prepare: bool | None
) -> EnqueueResult:
    """Insert ``req`` (which has a unique rule) inside the open transaction of ``conn``."""
    return settle_unique(req, PostgresUnique(conn, prepare))


def insert_new_keys(
    conn: psycopg.Connection[Any], requests: Sequence[EnqueueRequest], *, prepare: bool | None
) -> dict[int, int]:
    """Insert in one statement the requests of a batch in modes ``while_queued`` and
    ``until_started`` whose key no row has (of equal keys, the first); return
    ``{id(request): new id}`` for those. The others settle one by one afterwards, in order,
    exactly as if none had gone first: each finds the row of the key it would have found."""
    reqs = [r for r in requests if r.unique is not None and r.unique.mode in _ROW_KEY_MODES]
    if len(reqs) < 2:
        return {}
    params = bulk_params(reqs)
    params["keys"] = [r.idempotency_key for r in reqs]
    rows = fetch(conn, "unique_insert_many", params, prepare=prepare)
    new = {(str(job_type), str(key)): int(job_id) for job_id, job_type, key in rows}
    inserted: dict[int, int] = {}
    for req in reqs:
        job_id = new.pop((req.job_type, str(req.idempotency_key)), None)
        if job_id is not None:
            inserted[id(req)] = job_id
    return inserted


def unique_keys(connections: Connections, job_id: int) -> list[UniqueKey]:
    """The unique keys of a job (:meth:`~ferroq_core.storage.unique.UniqueKeys.unique_keys`)."""
    params = {"id": job_id}
    rows = connections.rows("unique_key_of", params, prepare=False)
    found = [UniqueKey(str(key), "pending") for (key,) in rows if key is not None]
    periods = connections.rows("period_keys_of", params, prepare=False, shown=True)
    return found + [UniqueKey(str(key), "period", expires) for key, expires in periods]


def _first(rows: list[Any]) -> int | None:
    return int(rows[0][0]) if rows else None


class PostgresUnique:
    """:class:`~ferroq_core.storage.unique.UniqueStatements` on one connection."""

    def __init__(self, conn: psycopg.Connection[Any], prepare: bool | None) -> None:
        self.conn = conn
        self.prepare = prepare

    def _rows(self, name: str, params: dict[str, Any]) -> list[Any]:
        return fetch(self.conn, name, params, prepare=self.prepare)

    @staticmethod
    def _key(req: EnqueueRequest, **more: Any) -> dict[str, Any]:
        return {"job_type": req.job_type, "key": req.idempotency_key, **more}

    def insert_keyed(self, req: EnqueueRequest) -> int | None:
        return _first(self._rows("insert_job_keyed", job_params(req)))

    def key_holder(self, req: EnqueueRequest) -> int | None:
        key = {"job_type": req.job_type, "idempotency_key": req.idempotency_key}
        return _first(self._rows("key_holder", key))

    def strip(self, req: EnqueueRequest, started: bool) -> None:
        rowcount(self.conn, "unique_strip", self._key(req, started=int(started)))

    def insert_unique(self, req: EnqueueRequest) -> int | None:
        params = job_params(req)
        params["key"] = params.pop("idempotency_key")
        return _first(self._rows("unique_insert", params))

    def unique_holder(self, req: EnqueueRequest, started: bool) -> int | None:
        return _first(self._rows("unique_holder", self._key(req, started=int(started))))

    def take_period(self, req: EnqueueRequest) -> int | None:
        assert req.unique is not None
        params = job_params(req)
        del params["idempotency_key"], params["channel"]
        params["key"] = req.idempotency_key
        params["period"] = req.unique.period
        job_id = _first(self._rows("period_insert", params))
        if job_id is not None and job_id % PRUNE_EVERY == 0:
            rowcount(self.conn, "period_prune", {})
        return job_id

    def period_holder(self, req: EnqueueRequest) -> int | None:
        return _first(self._rows("period_holder", self._key(req)))

    def replace(self, job_id: int, req: EnqueueRequest, started: bool) -> bool:
        params = {
            "id": job_id,
            "payload": req.payload,
            "delay": float(req.delay),
            "started": int(started),
        }
        return bool(self._rows("unique_replace", params))
