"""The limits scenario's job types, in a module of their own: a worker declares the limits of
every job type it imports, and a type limit makes every claim of that worker the limited one,
so only the limits scenario's workers import these (``--import reliability.limited_jobs``)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from reliability.jobs import Work

__all__ = ["Limited", "Rated"]


@attrs.define
class Limited(Work):
    """A :class:`Work` job of which at most 2 run at once per tenant (the limits scenario)."""

    job_name: ClassVar[str | None] = "chaos.limited"
    concurrency_limit: ClassVar[int | None] = 2
    limit_per_tenant: ClassVar[bool] = True


@attrs.define
class Rated(Work):
    """A :class:`Work` job with at most 10 starts a second over the whole type."""

    job_name: ClassVar[str | None] = "chaos.rated"
    rate_limit: ClassVar[tuple[int, float] | None] = (10, 1.0)
