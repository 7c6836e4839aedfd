"""The worker: :class:`WorkerLoop` (alias ``Worker``) and the ``--processes`` supervisor."""

from __future__ import annotations

from ferroq_core.worker.loop import Worker, WorkerLoop

__all__ = ["Worker", "WorkerLoop"]
