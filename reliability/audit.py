"""The database's own record of every accepted transition of a job.

Triggers on ``ferroq_jobs`` copy each change of status, owner or attempt count (a claim, a
release, a reap, a failure) and each delete (an accepted completion) into ``chaos_audit``, in
the same transaction as the change. A fenced write that the database rejected changes no row,
so it leaves no audit line: the audit is the ground truth of what the queue accepted.
Heartbeats (which only move ``heartbeat_at``) are not recorded, to keep the table small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["Transition", "install_audit", "read_audit", "worker_pid"]

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS chaos_audit (
        seq INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, op TEXT NOT NULL,
        old_status TEXT, new_status TEXT, old_by TEXT, new_by TEXT,
        old_attempts INTEGER, new_attempts INTEGER, at REAL NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS chaos_audit_update AFTER UPDATE ON ferroq_jobs
    WHEN OLD.status IS NOT NEW.status OR OLD.claimed_by IS NOT NEW.claimed_by
        OR OLD.attempts IS NOT NEW.attempts
    BEGIN
        INSERT INTO chaos_audit (job_id, op, old_status, new_status, old_by, new_by,
            old_attempts, new_attempts, at)
        VALUES (NEW.id, 'update', OLD.status, NEW.status, OLD.claimed_by, NEW.claimed_by,
            OLD.attempts, NEW.attempts, (julianday('now') - 2440587.5) * 86400.0);
    END""",
    """CREATE TRIGGER IF NOT EXISTS chaos_audit_delete AFTER DELETE ON ferroq_jobs
    BEGIN
        INSERT INTO chaos_audit (job_id, op, old_status, old_by, old_attempts, at)
        VALUES (OLD.id, 'delete', OLD.status, OLD.claimed_by, OLD.attempts,
            (julianday('now') - 2440587.5) * 86400.0);
    END""",
)

_POSTGRES = (
    """CREATE TABLE IF NOT EXISTS chaos_audit (
        seq bigserial PRIMARY KEY, job_id bigint NOT NULL, op text NOT NULL,
        old_status text, new_status text, old_by text, new_by text,
        old_attempts integer, new_attempts integer, at double precision NOT NULL)""",
    """CREATE OR REPLACE FUNCTION chaos_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO chaos_audit (job_id, op, old_status, old_by, old_attempts, at)
            VALUES (OLD.id, 'delete', OLD.status, OLD.claimed_by, OLD.attempts,
                extract(epoch FROM clock_timestamp()));
            RETURN OLD;
        END IF;
        INSERT INTO chaos_audit (job_id, op, old_status, new_status, old_by, new_by,
            old_attempts, new_attempts, at)
        VALUES (NEW.id, 'update', OLD.status, NEW.status, OLD.claimed_by, NEW.claimed_by,
            OLD.attempts, NEW.attempts, extract(epoch FROM clock_timestamp()));
        RETURN NEW;
    END $$""",
    """CREATE OR REPLACE TRIGGER chaos_audit_update AFTER UPDATE ON ferroq_jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.claimed_by IS DISTINCT FROM NEW.claimed_by
        OR OLD.attempts IS DISTINCT FROM NEW.attempts)
    EXECUTE FUNCTION chaos_audit_fn()""",
    """CREATE OR REPLACE TRIGGER chaos_audit_delete AFTER DELETE ON ferroq_jobs FOR EACH ROW
    EXECUTE FUNCTION chaos_audit_fn()""",
)


@attrs.frozen
class Transition:
    """One audit line."""

    seq: int
    job_id: int
    #: ``update`` or ``delete``.
    op: str
    old_status: str | None
    new_status: str | None
    old_by: str | None
    new_by: str | None
    old_attempts: int | None
    new_attempts: int | None
    #: Database-side wall-clock time (epoch seconds; the same host clock as the ledger).
    at: float

    @property
    def is_claim(self) -> bool:
        return self.op == "update" and self.new_status == "claimed"

    @property
    def is_completion(self) -> bool:
        """A worker's accepted success: the claimed row was deleted."""
        return self.op == "delete" and self.old_status == "claimed"

    @property
    def ends_claim(self) -> bool:
        """The claim held by ``old_by`` ended (completed, released, reaped or failed)."""
        return self.old_status == "claimed" and (
            self.op == "delete" or self.new_status != "claimed" or self.new_by != self.old_by
        )


def worker_pid(worker_id: str | None) -> int | None:
    """The pid inside a ``host:pid:uuid`` worker id."""
    if not worker_id:
        return None
    parts = worker_id.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def install_audit(engine: Engine) -> None:
    """Create the audit table and triggers (after ``migrate``)."""
    statements = _POSTGRES if engine.dialect.name == "postgresql" else _SQLITE
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def read_audit(engine: Engine) -> list[Transition]:
    stmt = sa.text(
        "SELECT seq, job_id, op, old_status, new_status, old_by, new_by, old_attempts, "
        "new_attempts, at FROM chaos_audit ORDER BY seq"
    )
    with engine.connect() as conn:
        return [
            Transition(
                seq=int(r.seq),
                job_id=int(r.job_id),
                op=r.op,
                old_status=r.old_status,
                new_status=r.new_status,
                old_by=r.old_by,
                new_by=r.new_by,
                old_attempts=r.old_attempts,
                new_attempts=r.new_attempts,
                at=float(r.at),
            )
            for r in conn.execute(stmt)
        ]
