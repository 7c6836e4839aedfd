"""Results on PostgreSQL (:mod:`ferroq_core.storage.results`): stored by the acknowledgement's
own fenced statement, read in one snapshot, awaited through LISTEN/NOTIFY.

``complete_with_results`` is one autocommit statement: it deletes the jobs whose lease still
matches, inserts exactly their results (and the history records of those that keep history)
and notifies channel :data:`RESULTS_CHANNEL` with each job id (delivered on commit). The
statements that park a job failed or remove it as cancelled notify the same channel, so a
waiter learns of those at once too. A waiting process LISTENs on that channel on a connection
of its own, opened the first time it waits (:class:`ResultWaits`); the notifications only say
"look again", so a waiter also reads every :data:`RESULT_POLL` seconds (a LISTEN connection
that is down is bridged that way).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from ferroq_core.storage.results import ResultState, StoredResult
from ferroq_postgres.listener import Listener
from ferroq_postgres.params import RESULTS_CHANNEL, lease_params

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence, Set

    import psycopg

    from ferroq_core.storage.results import ResultWrite
    from ferroq_postgres.connections import Connections

__all__ = [
    "RESULTS_CHANNEL",
    "RESULT_POLL",
    "ResultWaits",
    "complete_with_results",
    "prune",
    "read_state",
]

#: A waiter reads again at least this often (seconds) when no notification came.
RESULT_POLL = 0.5


def complete_with_results(connections: Connections, writes: Sequence[ResultWrite]) -> set[int]:
    """Acknowledge and store (and record the history of the writes that keep it), one fenced
    statement; return the ids stored. A batch where no job keeps history sends the statement
    without the history records' arrays and insert."""
    params = lease_params(w.lease for w in writes)
    params["result_values"] = [w.value for w in writes]
    params["result_ttls"] = [float(w.ttl) for w in writes]
    params["channel"] = RESULTS_CHANNEL
    name = "complete_with_results"
    if any(w.keep_history for w in writes):
        name = "complete_with_results_and_history"
        params["lease_history"] = [w.keep_history for w in writes]
        params["lease_durations"] = [float(w.duration) for w in writes]
    return {int(row[0]) for row in connections.rows_once(name, params)}


def read_state(connections: Connections, job_id: int) -> ResultState:
    """The job's unexpired result, else its row's status and error."""
    row = connections.rows("result_state", {"id": job_id})[0]
    stored = None
    if row[0] is not None:
        stored = StoredResult(
            job_id=int(row[0]),
            job_type=str(row[1]),
            value=str(row[2]),
            created_at=row[3],
            expires_at=row[4],
        )
    status = None if row[5] is None else str(row[5])
    error = None if row[6] is None else str(row[6])
    return ResultState(job_id, stored, status, error)


def prune(connections: Connections, limit: int | None) -> int:
    """Delete expired results, at most ``limit`` (None: all); return how many."""
    return len(connections.rows("prune_results", {"limit": limit}))


class ResultWaits:
    """This process's result waiters and the LISTEN thread that wakes them (thread-safe).

    :param connect: opens the LISTEN connection.
    :param listen: False when this process must not LISTEN (``listen=false``, or behind
        PgBouncer without ``listen_url``): waiters then only poll.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[tuple[object, ...]]],
        *,
        listen: bool,
        backoff_cap: float,
    ) -> None:
        self._connect = connect
        self._listen = listen
        self._backoff_cap = backoff_cap
        self._condition = threading.Condition()
        #: Notifications heard per watched job id.
        self._heard: dict[int, int] = {}
        #: Waiters per watched job id.
        self._watchers: dict[int, int] = {}
        #: Bumped when the LISTEN connection opens or breaks: every waiter reads again.
        self._generation = 0
        self._listener: Listener | None = None
        self._closed = False

    @property
    def listener(self) -> Listener | None:
        return self._listener

    def close(self) -> None:
        with self._condition:
            self._closed = True
            listener, self._listener = self._listener, None
            self._generation += 1
            self._condition.notify_all()
        if listener is not None:
            listener.stop()

    @contextlib.contextmanager
    def watching(self, job_id: int) -> Iterator[object]:
        self._ensure_listener()
        with self._condition:
            self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
        try:
            yield None
        finally:
            with self._condition:
                left = self._watchers[job_id] - 1
                if left:
                    self._watchers[job_id] = left
                else:
                    del self._watchers[job_id]
                    self._heard.pop(job_id, None)

    def mark(self, job_id: int) -> object:
        with self._condition:
            return self._mark(job_id)

    def wait(self, job_id: int, mark: object, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(
                lambda: self._closed or self._mark(job_id) != mark, min(timeout, RESULT_POLL)
            )

    def _mark(self, job_id: int) -> tuple[int, int]:
        return self._generation, self._heard.get(job_id, 0)

    def _on_notify(self, payloads: Set[str]) -> None:
        with self._condition:
            woke = False
            for payload in payloads:
                try:
                    job_id = int(payload)
                except ValueError:
                    continue
                if job_id in self._watchers:
                    self._heard[job_id] = self._heard.get(job_id, 0) + 1
                    woke = True
            if woke:
                self._condition.notify_all()

    def _on_state(self, _connected: bool) -> None:
        # Opened: what was sent while away is lost; broken: fall back to polling. Either way
        # every waiter reads again now.
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def _ensure_listener(self) -> None:
        if not self._listen or self._listener is not None:
            return
        with self._condition:
            if self._listener is not None or self._closed:
                return
            listener = Listener(
                self._connect,
                RESULTS_CHANNEL,
                on_notify=self._on_notify,
                on_state=self._on_state,
                backoff_cap=self._backoff_cap,
            )
            self._listener = listener
        listener.start()
