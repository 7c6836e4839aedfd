"""The limits scenario's job types, in a module of their own: a worker declares the limits of
every job type it imports, and a type limit makes every claim of that worker the limited one,
so only the limits scenario's workers import these (``--import reliability.limited_jobs``)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from reliability.jobs import Work

__all__ = ["Limited", "PerAccount", "Rated"]


@attrs.define
class Limited(Work):
    """A :class:`Work` job of which at most 2 run at once per tenant (the limits scenario)."""

    job_name: ClassVar[str | None] = "chaos.limited"
    concurrency_limit: ClassVar[int | None] = 2
    limit_per_key: ClassVar[bool | None] = True


@attrs.define
class Rated(Work):
    """A :class:`Work` job with at most 10 starts a second over the whole type."""

    job_name: ClassVar[str | None] = "chaos.rated"
    rate_limit: ClassVar[tuple[int, float] | None] = (10, 1.0)


@attrs.define
class PerAccount(Work):
    """A :class:`Work` job of which at most 2 run at once per account: its limit key is its
    ``account`` field, not its tenant (tests/flow/test_limit_key_workers.py)."""

    job_name: ClassVar[str | None] = "chaos.per_account"
    concurrency_limit: ClassVar[int | None] = 2
    limit_key: ClassVar[str | None] = "account"

    account: str = ""
