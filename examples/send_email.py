"""The quick-start jobs: a ``SendEmail`` job that "sends" by appending to an outbox file.

Run the quick start from the repository root:

    bash scripts/demo

or step by step (the worker finds these job types through ``--import examples.send_email``):

    export QUEUE_CONNECTION=db FERROQ_DEMO_RUN=run1
    ferroq migrate
    python -m examples.send_email 25          # dispatch 25 emails: urgent, priority, delayed
    ferroq worker --import examples.send_email --queue high,default --concurrency 1 --max-time 6
    python -m examples.send_email report      # what this run sent, in the order it went out

Each email carries the run's id (``FERROQ_DEMO_RUN``), so the report counts only this run's
emails even when the outbox holds earlier runs' lines, or when jobs an earlier run left behind
are sent by this run's worker.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import attrs

from ferroq_core import Job, PendingDispatch, Queue, dispatch_many

OUTBOX = Path(os.environ.get("FERROQ_DEMO_OUTBOX", "outbox.txt"))
#: Seconds the delayed emails wait (``FERROQ_DEMO_DELAY``, default 3).
DELAY = float(os.environ.get("FERROQ_DEMO_DELAY") or 3.0)


def run_id() -> str:
    """This run's id: ``FERROQ_DEMO_RUN``, set by ``scripts/demo`` for all its steps."""
    return os.environ.get("FERROQ_DEMO_RUN") or "manual"


@attrs.define
class SendEmail(Job):
    """Append one line per email to the outbox (a stand-in for an SMTP call)."""

    job_name = "examples.SendEmail"  # stable name: the class can move without orphaning jobs
    max_attempts = 5

    to: str
    subject: str
    #: The demo run that dispatched it, what kind of email it is, and when (epoch seconds).
    run: str = ""
    kind: str = "normal"
    dispatched_at: float = 0.0

    def handle(self) -> None:
        waited = time.time() - self.dispatched_at
        with OUTBOX.open("a", encoding="utf-8") as f:
            f.write(f"{self.run}\t{waited:.2f}\t{self.kind}\t{self.to}\t{self.subject}\n")

    def failed(self, error: BaseException) -> None:
        print(f"giving up on {self.to}: {error}", file=sys.stderr)


#: How the demo's emails are dispatched, by ``n % 5``: on which queue, with which priority
#: (lower runs first within a queue), and after which delay.
KINDS = {
    0: ("urgent", "on queue 'high' (drained before 'default')"),
    1: ("delayed", f"delayed by {DELAY:g}s"),
    2: ("priority", "with priority -1 (before the normal ones of 'default')"),
}


def _pending(email: SendEmail, n: int) -> PendingDispatch:
    if n % 5 == 0:
        return email.on_queue("high")
    if n % 5 == 1:
        return email.delay(timedelta(seconds=DELAY))
    if n % 5 == 2:
        return email.with_priority(-1)
    return email.pending()


def dispatch(count: int) -> None:
    Queue.init()  # FERROQ_DATABASE_URL, QUEUE_CONNECTION... from the environment
    run, now = run_id(), time.time()
    jobs, kinds = [], Counter[str]()
    for n in range(count):
        kind = KINDS.get(n % 5, ("normal",))[0]
        kinds[kind] += 1
        email = SendEmail(
            to=f"user{n}@example.com",
            subject=f"Welcome #{n}",
            run=run,
            kind=kind,
            dispatched_at=now,
        )
        jobs.append(_pending(email, n))
    ids = dispatch_many(jobs)
    print(f"run {run}: dispatched {len(ids)} emails to {Queue.config().database_url}:")
    for kind, how in KINDS.values():
        print(f"  {kinds[kind]:3d} {kind:<8} {how}")
    print(f"  {kinds['normal']:3d} {'normal':<8} on queue 'default'")


def report() -> int:
    """Print this run's emails in the order they were sent; 1 when some are missing."""
    run = run_id()
    lines = OUTBOX.read_text(encoding="utf-8").splitlines() if OUTBOX.exists() else []
    mine = [line.split("\t") for line in lines if line.split("\t", 1)[0] == run]
    print(f"run {run}: {len(mine)} emails sent ({len(lines) - len(mine)} other lines in {OUTBOX})")
    print("  order  after dispatch  kind      to")
    for order, (_run, waited, kind, to, _subject) in enumerate(mine, 1):
        print(f"  {order:5d}  {float(waited):13.2f}s  {kind:<8}  {to}")
    counts = Counter(kind for _run, _waited, kind, _to, _subject in mine)
    print("  sent: " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts)))
    return 0 if mine else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["report"]:
        return report()
    dispatch(int(argv[0]) if argv else 25)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
