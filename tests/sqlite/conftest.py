"""Fixtures of the SQLite tests: a fresh database file and a migrated backend on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ferroq_sqlite.backend import SqliteBackend

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "jobs.db")


@pytest.fixture
def backend(db_path: str) -> Iterator[SqliteBackend]:
    b = SqliteBackend.from_url(f"sqlite:///{db_path}")
    b.migrate()
    yield b
    b.close()
