"""Real ``ferroq worker`` subprocesses for the context tests (tests/worker's fixtures)."""

from __future__ import annotations

from tests.worker.conftest import marks, start_worker

__all__ = ["marks", "start_worker"]
