"""A worker writes the limits its job types declare to ``ferroq_limits`` as it starts, so every
worker's claim (and ``ferroq limits``) sees the same numbers (:mod:`ferroq_core.flowlimits`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferroq_core.flowlimits import type_rule

if TYPE_CHECKING:
    from ferroq_core.flowlimits import LimitRule
    from ferroq_core.runtime import Runtime

__all__ = ["declare_type_limits"]

log = logging.getLogger("ferroq.worker")


def declare_type_limits(runtime: Runtime) -> list[LimitRule]:
    """Write the limits of every job type registered in this process that declares some (a
    limit removed from the code stays until ``ferroq limits delete``, so a worker of an older
    release starting during a deploy cannot drop it). Returns the rules whose row changed.

    Unchanged rules are set again too (a write that changes nothing): setting a limit makes
    the limited claim's index where it is missing (:mod:`ferroq_core.tables.limitkeys`), so
    each worker start with limits makes sure of it."""
    backend = runtime.backend
    have = {(r.scope, r.name): r for r in backend.list_limits()}
    written = []
    for name in runtime.registry.names():
        rule = type_rule(runtime.registry.get(name), name)
        if rule is None:
            continue
        backend.set_limit(rule)
        if have.get(("type", name)) != rule:
            written.append(rule)
            log.info("limits of job type %s declared: %s", name, rule)
    return written
