"""``Job``, the base users derive job types from: the job model
(:class:`~ferroq_core.jobmodel.JobBase`) with the dispatch methods of ``Queueable``
(:mod:`ferroq_core.dispatching`, re-exported here with ``PendingDispatch`` and ``JobId``).

A job type is an attrs class deriving from :class:`Job` with a ``handle(self)`` method (plain
or ``async def``)::

    @attrs.define
    class SendEmail(Job):
        queue = "emails"
        max_attempts = 5

        to: str
        subject: str

        def handle(self) -> None:
            mailer.send(self.to, self.subject)

    SendEmail(to="a@example.com", subject="Hi").dispatch()
    SendEmail(to="a@example.com", subject="Hi").delay(timedelta(minutes=5)).on_queue("low") \
        .dispatch()
"""

from __future__ import annotations

from typing import Any

from ferroq_core.dispatching import PendingDispatch, Queueable
from ferroq_core.flowlimits import type_rule
from ferroq_core.jobmodel import JobBase, JobId
from ferroq_core.registry import default_registry
from ferroq_core.schedules import declare_job_type

__all__ = ["Job", "JobId", "PendingDispatch", "Queueable"]


class Job(JobBase, Queueable):
    """Base for job types. Subclass it with an attrs class and define ``handle``.

    Class-level options (plain class attributes, not attrs fields):

    - ``queue``: queue name (default ``"default"``, or ``QUEUE_DEFAULT``).
    - ``max_attempts``: total executions, first run included (default 3).
    - ``timeout``: seconds one execution may take (None: the worker's default).
    - ``priority``: lower runs first within a queue (default 0).
    - ``job_name``: stable type name stored with each job (default ``module:QualName``);
      set it so renaming or moving the class does not orphan queued jobs.
    - ``backoff_base``, ``backoff_cap``: the full-jitter backoff's base and cap, in seconds.
    - ``schedule``: a cron expression that makes it a periodic job (built without arguments
      at each tick), with ``schedule_timezone``, ``schedule_catch_up`` and
      ``schedule_catch_up_window`` (docs/schedules.md); checked when the class is created.
    - ``concurrency_limit``, ``rate_limit = (n, per)``, ``limit_per_tenant``: flow control,
      enforced by every worker's claim (docs/limits.md).

    Methods to override: ``handle()``, ``retry_delay(attempt)``, ``idempotency_key()`` and
    ``failed(error)`` (see :class:`~ferroq_core.jobmodel.JobBase`). Each subclass registers
    itself by its stable name when it is created, so importing its module is enough.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        type_rule(cls, cls.type_name())  # a bad limit fails at import
        default_registry().register(cls)
        declare_job_type(cls)
