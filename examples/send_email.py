"""The quick-start jobs: a ``SendEmail`` job that "sends" by appending to an outbox file.

Run the quick start from the repository root:

    bash scripts/demo

or step by step (the worker finds these job types through ``--import examples.send_email``):

    export QUEUE_CONNECTION=db
    ferroq migrate
    python -m examples.send_email 25          # dispatch 25 emails (some delayed, some urgent)
    ferroq worker --import examples.send_email --queue high,default --max-time 4
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import attrs

from ferroq_core import Job, Queue, dispatch_many

OUTBOX = Path(os.environ.get("FERROQ_DEMO_OUTBOX", "outbox.txt"))


@attrs.define
class SendEmail(Job):
    """Append one line per email to the outbox (a stand-in for an SMTP call)."""

    job_name = "examples.SendEmail"  # stable name: the class can move without orphaning jobs
    max_attempts = 5

    to: str
    subject: str

    def handle(self) -> None:
        with OUTBOX.open("a", encoding="utf-8") as f:
            f.write(f"to={self.to} subject={self.subject}\n")

    def failed(self, error: BaseException) -> None:
        print(f"giving up on {self.to}: {error}", file=sys.stderr)


def main(count: int) -> None:
    Queue.init()  # FERROQ_DATABASE_URL, QUEUE_CONNECTION... from the environment
    jobs = []
    for n in range(count):
        email = SendEmail(to=f"user{n}@example.com", subject=f"Welcome #{n}")
        if n % 5 == 0:
            jobs.append(email.on_queue("high"))  # drained before "default"
        elif n % 5 == 1:
            jobs.append(email.delay(timedelta(seconds=2)))  # runs two seconds from now
        else:
            jobs.append(email.pending())
    ids = dispatch_many(jobs)
    print(f"dispatched {len(ids)} jobs to {Queue.config().database_url}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 25)
