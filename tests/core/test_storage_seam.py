"""The pieces of the storage seam every backend shares: named queries and the shared rules."""

from __future__ import annotations

import pytest

from ferroq_core.errors import ConfigError, SchemaMissing, SchemaOutdated
from ferroq_core.records import Capabilities, EnqueueRequest, EnqueueResult, JobRow, Lease
from ferroq_core.schema import SCHEMA_VERSION
from ferroq_core.storage.queries import load_queries, parse_queries
from ferroq_core.storage.rules import (
    DUE_FLOOR,
    JOB_COLUMNS,
    MAX_ERROR_CHARS,
    cap_error,
    check_version,
    claim_in_order,
    due_bound,
    enqueue_in_order,
    host_like_pattern,
    lease_arrays,
    lease_groups,
    worker_pid,
    workers_on_host,
)


def test_named_queries_are_parsed_with_comments_dropped() -> None:
    text = """
-- The file's own comment.
-- name: claim
-- Claims jobs.
UPDATE t SET x = 1
  WHERE y = :y

-- name: complete
DELETE FROM t
"""
    queries = parse_queries(text, "x.sql")
    assert dict(queries) == {
        "claim": "UPDATE t SET x = 1\n  WHERE y = :y",
        "complete": "DELETE FROM t",
    }
    with pytest.raises(KeyError, match=r"no query named 'missing' in x\.sql"):
        queries["missing"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1", "before the first '-- name:'"),
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2", "defined twice"),
        ("-- name: a\n-- only a comment\n", "is empty"),
    ],
)
def test_malformed_query_files_are_rejected(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_queries(text, "bad.sql")


@pytest.mark.parametrize("package", ["ferroq_sqlite", "ferroq_postgres"])
def test_each_backend_ships_its_queries(package: str) -> None:
    queries = load_queries(package)
    assert {"claim", "complete", "heartbeat", "reap_requeue", "reap_fail"} <= set(queries)
    assert load_queries(package) is queries  # read once per process


def test_job_columns_are_the_records_fields() -> None:
    import attrs

    assert tuple(a.name for a in attrs.fields(JobRow)) == JOB_COLUMNS


def test_claim_in_order_takes_queues_strictly_in_turn() -> None:
    asked: list[tuple[str, int]] = []

    def claim_one(queue: str, n: int) -> list[JobRow]:
        asked.append((queue, n))
        return [_row(queue, i) for i in range(min(n, 2))]

    rows = claim_in_order(["a", "b", "a", "c"], 3, claim_one)
    assert [r.queue for r in rows] == ["a", "a", "b"]
    assert asked == [("a", 3), ("b", 1)]


def test_error_text_keeps_its_start_and_end() -> None:
    assert cap_error(None) is None
    assert cap_error("short") == "short"
    long = "A" * MAX_ERROR_CHARS + "middle" + "Z" * MAX_ERROR_CHARS
    capped = cap_error(long)
    assert capped is not None
    assert capped.startswith("A" * 100)
    assert capped.endswith("Z" * 100)
    assert "characters cut" in capped
    assert len(capped) < MAX_ERROR_CHARS + 100


def test_lease_groups_and_arrays() -> None:
    leases = [Lease(1, "w1", 1), Lease(2, "w1", 1), Lease(3, "w1", 2), Lease(4, "w2", 1)]
    groups = lease_groups(leases)
    assert [(g.owner, g.attempts, g.ids) for g in groups] == [
        ("w1", 1, [1, 2]),
        ("w1", 2, [3]),
        ("w2", 1, [4]),
    ]
    assert lease_arrays(leases) == ([1, 2, 3, 4], ["w1", "w1", "w1", "w2"], [1, 1, 2, 1])


def test_due_bound() -> None:
    assert due_bound(None, 5.0) == (5.0, False)
    assert due_bound(10.0, 5.0) == (5.0, False)
    assert due_bound(2.0, 5.0) == (2.0, True)
    assert due_bound(-1.0, 5.0) == (DUE_FLOOR, True)


def test_schema_version_check() -> None:
    def none(version: int) -> list[str]:
        return []

    def asked(version: int) -> list[str]:
        raise AssertionError("a current schema looks for no tables to adopt")

    with pytest.raises(SchemaMissing, match="does not exist in this database: run `ferroq"):
        check_version(0, none)
    with pytest.raises(SchemaMissing, match=r"tables of create_jobs_table exist .* to adopt"):
        check_version(0, lambda version: ["create_jobs_table"])
    if SCHEMA_VERSION > 1:
        with pytest.raises(SchemaOutdated, match="ferroq migrate"):
            check_version(SCHEMA_VERSION - 1, none)
    check_version(SCHEMA_VERSION, asked)


def test_worker_ids_and_host_patterns() -> None:
    assert worker_pid("web-1:4242:abcd") == 4242
    assert worker_pid("host:with:colons:17:abcd") == 17
    assert worker_pid("nonsense") is None
    assert worker_pid("h:notapid:x") is None
    assert host_like_pattern("a_b%c\\") == "a\\_b\\%c\\\\:%"


def test_capabilities_default_to_the_plainest_backend() -> None:
    assert Capabilities() == Capabilities(
        remote=False, listens=False, caller_connection=False, database_clock=False
    )


def _row(queue: str, i: int) -> JobRow:
    from ferroq_core.clock import utcnow

    now = utcnow()
    return JobRow(i, queue, "t", "{}", "claimed", 0, 1, 3, None, None, now, now)


def test_enqueue_results_come_back_in_request_order() -> None:
    reqs = [
        EnqueueRequest("q", "t", "{}", idempotency_key="a"),
        EnqueueRequest("q", "t", "{}"),
        EnqueueRequest("q", "t", "{}", idempotency_key="b"),
        EnqueueRequest("q", "t", "{}"),
    ]
    calls: list[object] = []

    def plain(batch: list[EnqueueRequest]) -> list[EnqueueResult]:
        calls.append(len(batch))
        return [EnqueueResult(100 + i) for i in range(len(batch))]

    def keyed(req: EnqueueRequest) -> EnqueueResult:
        calls.append(req.idempotency_key)
        return EnqueueResult(200, duplicate=req.idempotency_key == "b")

    results = enqueue_in_order(reqs, plain, keyed)
    assert [(r.id, r.duplicate) for r in results] == [
        (200, False),
        (100, False),
        (200, True),
        (101, False),
    ]
    assert calls == [2, "a", "b"]  # the plain ones together, then each keyed one
    calls.clear()
    assert [r.id for r in enqueue_in_order(reqs[1::2], plain, keyed)] == [100, 101]
    assert calls == [2]


def test_only_workers_on_exactly_the_host_are_kept() -> None:
    found = ["web:1:a", "WEB:2:b", "web-2:3:c", "web:4:d"]
    assert workers_on_host(found, "web") == ["web:1:a", "web:4:d"]
