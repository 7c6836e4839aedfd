"""The backend's SQL lives in ``queries.sql`` only: every named query prepares on a migrated
database, whole-row queries read JOB_COLUMNS in order, and no module of the package carries
statement text of its own."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from typing import TYPE_CHECKING

import pytest

from ferroq_core.storage.queries import load_queries
from ferroq_core.storage.rules import JOB_COLUMNS

if TYPE_CHECKING:
    from ferroq_sqlite.backend import SqliteBackend

QUERIES = load_queries("ferroq_sqlite")
# Statements that change the connection or its transaction; EXPLAIN would not show them
# failing, and running them here would leave the test's connection changed.
_CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|PRAGMA)\b")
_WHOLE_ROWS = ("get_job", "list_jobs", "list_claimed", "list_failed", "reap_fail")


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_prepares(backend: SqliteBackend, db_path: str, name: str) -> None:
    text = QUERIES[name]
    if _CONTROL.match(text):
        return
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        # EXPLAIN compiles the statement against the real schema without running it.
        params: tuple[None, ...] | dict[str, None]
        if ":" in text and "?" not in text:
            params = dict.fromkeys(re.findall(r":([a-z_]+)", text))
        else:
            numbered = [int(n) for n in re.findall(r"\?(\d+)", text)]
            params = (None,) * (max(numbered) if numbered else text.count("?"))
        db.execute("EXPLAIN " + text, params)
    finally:
        db.close()


@pytest.mark.parametrize("name", _WHOLE_ROWS)
def test_whole_row_queries_read_job_columns_in_order(name: str) -> None:
    text = " ".join(QUERIES[name].split())
    listed = text.split("RETURNING", 1)[1] if "RETURNING" in text else text.split("FROM", 1)[0]
    listed = listed.removeprefix("SELECT ")
    assert [c.strip() for c in listed.split(",")] == list(JOB_COLUMNS)


def test_no_statement_text_outside_the_queries_file() -> None:
    statement = re.compile(
        r"[\"'](SELECT|INSERT|UPDATE|DELETE|BEGIN|COMMIT|ROLLBACK|SAVEPOINT)\b|[\"']PRAGMA "
        r"(?!busy_timeout = )"
    )
    for module in resources.files("ferroq_sqlite").iterdir():
        if module.name.endswith(".py"):
            found = statement.search(module.read_text(encoding="utf-8"))
            assert found is None, f"{module.name} has statement text: {found.group(0)!r}"
