"""Tools for testing applications that use ferroq (see docs/testing.md).

- :func:`fake_queue` / fixture ``ferroq_fake``: capture dispatches and assert on them.
- :func:`drain`: run every eligible job of a real backend in this process.
- :func:`run_job`: run one job exactly as a worker would (payload round trip included).
- :func:`sqlite_queue`, :class:`PostgresTestSchema` / fixtures ``ferroq_sqlite_queue`` and
  ``ferroq_postgres_queue``: throw-away queues on real databases.
"""

from __future__ import annotations

from ferroq_core.testing.databases import PostgresTestSchema, sqlite_queue
from ferroq_core.testing.drain import DrainResult, drain
from ferroq_core.testing.fake import DispatchedJob, FakeQueue, fake_queue
from ferroq_core.testing.run import run_job

__all__ = [
    "DispatchedJob",
    "DrainResult",
    "FakeQueue",
    "PostgresTestSchema",
    "drain",
    "fake_queue",
    "run_job",
    "sqlite_queue",
]
