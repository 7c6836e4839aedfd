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
    """Write the limits of every job type registered in this process that declares some
    (those whose row differs; a limit removed from the code stays until ``ferroq limits
    delete``, so a worker of an older release starting during a deploy cannot drop it).
    Returns the rules written."""
    backend = runtime.backend
    have = {(r.scope, r.name): r for r in backend.list_limits()}
    written = []
    for name in runtime.registry.names():
        rule = type_rule(runtime.registry.get(name), name)
        if rule is not None and have.get(("type", name)) != rule:
            backend.set_limit(rule)
            written.append(rule)
            log.info("limits of job type %s declared: %s", name, rule)
    return written
