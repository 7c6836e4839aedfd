"""The scenarios, in the order of issue 10. Each module has ``run(ctx) -> ScenarioResult``."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from reliability.harness import ScenarioResult
    from reliability.scenarios.base import Context

__all__ = ["POSTGRES_ONLY", "SCENARIOS", "load"]

#: Scenario names, each the module under ``reliability.scenarios`` that runs it.
SCENARIOS = (
    "kill9",
    "zombie",
    "shutdown",
    "dbfaults",
    "poison",
    "idempotency",
    "partition",
    "failover",
    "schedules",
    "limits",
    "fairness",
)
#: Scenarios of a Postgres deployment only (the network to it, replication): skipped on SQLite.
POSTGRES_ONLY = frozenset({"partition", "failover"})


def load(name: str) -> Callable[[Context], ScenarioResult]:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    run: Callable[[Context], ScenarioResult] = import_module(f"reliability.scenarios.{name}").run
    return run
