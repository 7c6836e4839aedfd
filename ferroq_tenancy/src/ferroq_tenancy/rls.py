"""PostgreSQL row-level security, opt-in: the current tenant as a transaction-local setting.

``install_rls(engine)`` makes every transaction that the application's engine begins inside a
tenant scope run ``SELECT set_config('ferroq.tenant_id', <tenant>, true)`` first, so policies
such as ``USING (tenant_id = current_setting('ferroq.tenant_id', true))`` isolate tenants in
the database itself. Outside a scope nothing is set, and such a policy matches no row.
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ferroq_core.errors import ConfigError
from ferroq_tenancy.context import current_tenant

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_SETTING", "install_rls", "uninstall_rls"]

#: The custom setting that carries the tenant id (a dotted name, as Postgres requires).
DEFAULT_SETTING = "ferroq.tenant_id"

# Name and value are bound parameters: nothing the tenant id contains can change the statement.
_SET_CONFIG = sa.text("SELECT set_config(:name, :value, true)")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")

_lock = threading.Lock()
_installed: weakref.WeakKeyDictionary[sa.engine.Engine, Callable[[sa.Connection], None]] = (
    weakref.WeakKeyDictionary()
)


def _sync_engine(engine: Any) -> sa.engine.Engine:
    # An AsyncEngine runs its transactions on the sync engine it wraps.
    target = getattr(engine, "sync_engine", engine)
    if not isinstance(target, sa.engine.Engine):
        raise TypeError(f"install_rls needs a SQLAlchemy Engine or AsyncEngine, got {engine!r}")
    return target


def install_rls(engine: Any, setting: str = DEFAULT_SETTING) -> None:
    """Set ``setting`` to the current tenant at the start of every transaction of ``engine``
    begun inside a tenant scope (``SET LOCAL`` semantics: it ends with the transaction, so a
    pooled connection never carries a tenant into the next transaction). Installing again
    replaces the earlier setting name.

    The connections must be transactional (not ``AUTOCOMMIT``), and the role the application
    connects as must not be a superuser or own the tables without ``FORCE ROW LEVEL
    SECURITY``: those bypass the policies.

    :param engine: the application's PostgreSQL ``Engine`` or ``AsyncEngine``.
    :param setting: a dotted custom setting name; policies read it with
        ``current_setting('<setting>', true)``.
    :raises ConfigError: the engine is not PostgreSQL, or ``setting`` is not a dotted name.
    """
    target = _sync_engine(engine)
    if target.dialect.name != "postgresql":
        raise ConfigError(
            f"row-level security needs PostgreSQL; this engine is {target.dialect.name!r}"
        )
    if not _SETTING_NAME.match(setting):
        raise ConfigError(
            f"the RLS setting must be a dotted name such as 'ferroq.tenant_id', got {setting!r}"
        )

    def set_tenant(conn: sa.Connection) -> None:
        tenant = current_tenant()
        if tenant is not None:
            conn.execute(_SET_CONFIG, {"name": setting, "value": tenant})

    with _lock:
        uninstall_rls(target)
        sa.event.listen(target, "begin", set_tenant)
        _installed[target] = set_tenant


def uninstall_rls(engine: Any) -> bool:
    """Stop setting the tenant on ``engine``; returns whether it was installed."""
    target = _sync_engine(engine)
    listener = _installed.pop(target, None)
    if listener is None:
        return False
    sa.event.remove(target, "begin", listener)
    return True
