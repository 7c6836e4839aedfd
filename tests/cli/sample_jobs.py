"""Job types the CLI tests dispatch (imported by the tests and by ``--import`` in subprocesses)."""

from __future__ import annotations

# A runtime import: cattrs resolves the field annotations when it decodes a payload.
from datetime import date  # noqa: TC003

import attrs

from ferroq_core import Job


@attrs.define
class SendEmail(Job):
    job_name = "cli-test.send-email"
    queue = "emails"

    to: str
    subject: str = "hello"

    def handle(self) -> None:
        pass


@attrs.define
class DailyReport(Job):
    job_name = "cli-test.daily-report"

    day: date
    pages: int = 1

    def idempotency_key(self) -> str:
        return f"report-{self.day.isoformat()}"

    def handle(self) -> None:
        pass


@attrs.define
class Address:
    street: str
    country: str = "NL"


@attrs.define
class Ship(Job):
    job_name = "cli-test.ship"

    address: Address
    items: list[int] = attrs.Factory(list)

    def handle(self) -> None:
        pass


@attrs.define
class SyncAccount(Job):
    """Limited per account: its ``account_id`` is its limit key."""

    job_name = "cli-test.sync-account"
    limit_key = "account_id"

    account_id: str

    def handle(self) -> None:
        pass
