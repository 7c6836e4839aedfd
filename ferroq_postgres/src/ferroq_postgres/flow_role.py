"""The flow-control role of :class:`~ferroq_postgres.backend.PostgresBackend` (``FlowStore``):
declaring limits, reading where they stand, and whether the last claim was held back by one,
as a mixin base of the backend.

The statements are in :mod:`ferroq_postgres.flow`; the limited claim itself is the backend's
``claim``, which shares this role's state (``LimitsSeen``, ``Blocked``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_postgres import flow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.flowlimits import LimitRule, LimitScope, LimitUsage
    from ferroq_core.storage.flow import Blocked, LimitsSeen
    from ferroq_postgres.connections import Connections
    from ferroq_postgres.options import PostgresOptions

__all__ = ["FlowRole"]


class FlowRole:
    """``FlowStore`` over the backend's connections and its claim's view of the limits."""

    options: PostgresOptions
    _connections: Connections
    #: Whether limits exist (then the limited claim runs); changed limits are looked at anew.
    _limits: LimitsSeen
    #: What the last limited claim left waiting for a limit.
    _blocked: Blocked

    def set_limit(self, rule: LimitRule) -> None:
        flow.set_limit(self._connections, rule, pooled=self.options.pgbouncer)
        self._limits.changed()

    def delete_limit(self, scope: LimitScope, name: str) -> bool:
        self._limits.changed()
        return flow.delete_limit(self._connections, scope, name)

    def list_limits(self) -> list[LimitRule]:
        return flow.list_limits(self._connections)

    def limit_usage(self) -> list[LimitUsage]:
        return flow.usage(self._connections)

    def held_back(self, queues: Sequence[str]) -> bool:
        return self._blocked.held(queues)
