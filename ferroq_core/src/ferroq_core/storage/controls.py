"""The storage role of the control plane: pauses, cancel requests, and the heartbeat that
carries cancel requests back (see docs/pause-and-cancel.md).

Pauses are enforced by the claim itself (``WorkerStore.claim`` skips every job a pause covers,
and jobs with a cancel request), so they hold from the moment :meth:`ControlStore.pause`
returns, on every host, with nothing cached in the workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from collections.abc import Collection

    from ferroq_core.control_records import CancelResult, Pause, PauseScope
    from ferroq_core.records import JobRow, Lease

__all__ = ["Beat", "ControlStore"]


@attrs.frozen
class Beat:
    """The reply to a heartbeat."""

    #: Ids whose lease still matched (and was extended).
    held: frozenset[int]
    #: Those of :attr:`held` that have a cancel request: their handlers must stop.
    stop: frozenset[int] = frozenset()


@runtime_checkable
class ControlStore(Protocol):
    """Pauses and cancellations."""

    def pause(self, scope: PauseScope, name: str, *, reason: str | None = None) -> Pause | None:
        """Record a pause; return it, or None when one was already in force (left as it
        was). From the commit on, no claim takes a job it covers; running jobs go on."""

    def resume(self, scope: PauseScope, name: str) -> Pause | None:
        """Remove a pause and wake the idle workers it held back; return the pause removed,
        or None when there was none."""

    def pauses(self) -> list[Pause]:
        """Every pause in force, by scope and name."""

    def cancel_jobs(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> CancelResult:
        """Cancel the jobs with these ids (``ids=None``: every job of ``queue`` and
        ``job_type``, at least one of them given): pending and delayed ones are deleted;
        claimed ones get a cancel request (once), which their worker's next heartbeat
        returns. Failed jobs are left as they are."""

    def heartbeat_cancels(self, leases: Collection[Lease]) -> Beat:
        """``WorkerStore.heartbeat`` in the same round trip, telling which of the held jobs
        have a cancel request."""

    def finish_cancelled(self, lease: Lease) -> bool:
        """Delete a claimed job that stopped for a cancel request, and the request, fenced by
        ``lease``; True if it matched."""

    def sweep_cancelled(self, holders: Collection[str] = ()) -> list[JobRow]:
        """Delete the jobs that have a cancel request and are pending (their worker died or
        gave them back before acting on it; the claim skips them) or claimed by one of
        ``holders`` (workers known to be dead, whose claims are about to be taken back), and
        return them; drop the requests whose job is no longer claimed."""
