"""Limits declared on job types: checked when the class is created (a bad one fails at
import, with one clear line), and written to the database by every worker that starts with the
type, where every worker's claim and ``ferroq limits`` read them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest

from ferroq_core import Job
from ferroq_core.errors import InvalidLimit
from ferroq_core.flowlimits import LimitRule, type_rule
from ferroq_core.worker.declare import declare_type_limits

if TYPE_CHECKING:
    from ferroq_core import Runtime


@attrs.define
class PerTenant(Job):
    job_name: ClassVar[str | None] = "flow.per_tenant"
    concurrency_limit: ClassVar[int | None] = 3
    rate_limit: ClassVar[tuple[int, float | timedelta] | None] = (100, timedelta(minutes=1))
    limit_per_tenant: ClassVar[bool] = True

    def handle(self) -> None:
        pass


@pytest.mark.parametrize(
    ("attrs_", "message"),
    [
        ({"concurrency_limit": 0}, "concurrency limit must be an int >= 1, got 0"),
        ({"concurrency_limit": 2.5}, "concurrency limit must be an int >= 1, got 2.5"),
        ({"rate_limit": (10, 0)}, "rate limit's window must be > 0 seconds, got 0"),
        ({"rate_limit": (10, timedelta(0))}, "rate limit's window must be > 0 seconds"),
        ({"rate_limit": (0, 60)}, "rate limit's n must be an int >= 1, got 0"),
        ({"rate_limit": 10}, "rate limit must be (n, per), got 10"),
        ({"limit_per_tenant": "yes"}, "limit_per_tenant must be True or False"),
    ],
)
def test_a_bad_declaration_fails_when_the_class_is_created(
    attrs_: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidLimit, match=message.replace("(", r"\(").replace(")", r"\)")):
        type("Bad", (Job,), {"job_name": "flow.bad", "handle": lambda self: None, **attrs_})


def test_a_declaration_is_a_rule_of_its_type() -> None:
    assert type_rule(PerTenant, "flow.per_tenant") == LimitRule(
        "type", "flow.per_tenant", concurrency=3, rate=(100, 60.0), per_tenant=True
    )
    assert type_rule(Job, "x") is None


def test_a_worker_writes_its_types_limits_once(runtime: Runtime) -> None:
    written = declare_type_limits(runtime)
    rule = type_rule(PerTenant, "flow.per_tenant")
    assert rule in written
    assert rule in runtime.backend.list_limits()
    assert rule not in declare_type_limits(runtime)  # unchanged: not written again
