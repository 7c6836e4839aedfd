"""The flow-control role of :class:`~ferroq_sqlite.backend.SqliteBackend` (``FlowStore``):
declaring limits, reading where they stand, and whether the last claim was held back by one,
as a mixin base of the backend.

The statements are in :mod:`ferroq_sqlite.flow`; the limited claim itself is the backend's
``claim``, which shares this role's state (``LimitsSeen``, ``Blocked``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.clock import to_micros, utcnow
from ferroq_sqlite import flow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.flowlimits import LimitRule, LimitScope, LimitUsage
    from ferroq_core.storage.flow import Blocked, LimitsSeen
    from ferroq_sqlite.transactions import Transactions

__all__ = ["FlowRole"]


class FlowRole:
    """``FlowStore`` in the backend's transactions, beside its claim's view of the limits."""

    _tx: Transactions
    #: Whether limits exist (then the limited claim runs); changed limits are looked at anew.
    _limits: LimitsSeen
    #: What the last limited claim left waiting for a limit.
    _blocked: Blocked

    def set_limit(self, rule: LimitRule) -> None:
        self._tx.write(lambda db: flow.set_limit(db, rule, to_micros(utcnow())))
        self._limits.changed()

    def delete_limit(self, scope: LimitScope, name: str) -> bool:
        self._limits.changed()
        return self._tx.write(lambda db: flow.delete_limit(db, scope, name))

    def list_limits(self) -> list[LimitRule]:
        return self._tx.read(flow.list_limits)

    def limit_usage(self) -> list[LimitUsage]:
        return self._tx.read(lambda db: flow.usage(db, to_micros(utcnow())))

    def held_back(self, queues: Sequence[str]) -> bool:
        return self._blocked.held(queues)
