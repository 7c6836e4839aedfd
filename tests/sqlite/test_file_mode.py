"""A database file ferroq creates is private to its owner (0600), with its -wal and -shm files;
an existing file keeps its mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ferroq_core.records import EnqueueRequest
from ferroq_sqlite.backend import SqliteBackend
from tests.cli.conftest import make_invoke

if TYPE_CHECKING:
    from collections.abc import Iterator

SUFFIXES = ("", "-wal", "-shm")


@pytest.fixture(autouse=True)
def _common_umask() -> Iterator[None]:
    """The usual umask (022), under which a new file is readable by everyone."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(path: Path) -> dict[str, int]:
    """The modes of the database file and its -wal and -shm files, used while they exist."""
    backend = SqliteBackend.from_url(f"sqlite:///{path}")
    try:
        backend.migrate()
        backend.enqueue([EnqueueRequest(queue="q", job_type="t:Job", payload="{}")])
        with backend.engine.connect() as conn:  # an open connection keeps -wal and -shm
            conn.exec_driver_sql("SELECT count(*) FROM ferroq_jobs").scalar()
            return {s: stat.S_IMODE(Path(f"{path}{s}").stat().st_mode) for s in SUFFIXES}
    finally:
        backend.close()


def test_a_database_ferroq_creates_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    assert _modes(tmp_path / "jobs.db") == dict.fromkeys(SUFFIXES, 0o600)


def test_ferroq_migrate_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    result = make_invoke(f"sqlite:///{path}")("migrate")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    assert _modes(path)[""] == 0o640
