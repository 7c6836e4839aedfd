"""Bugs the reliability suite found, pinned by fast tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.dispatching import dispatch
from reliability.jobs import Keyed

if TYPE_CHECKING:
    from ferroq_core import Runtime


def test_keyed_dispatch_survives_prepared_statements(runtime: Runtime) -> None:
    # On Postgres psycopg prepares a statement after 5 runs; the ON CONFLICT target then no
    # longer matched the partial unique index when its predicate was bound parameters.
    ids = [dispatch(Keyed(f"k{i % 3}"), runtime=runtime) for i in range(40)]
    assert sum(1 for i in ids if not i.duplicate) == 3
    assert len({int(i) for i in ids}) == 3
