"""One adapter per system under test. ``load(name)`` imports it lazily so a missing peer
package surfaces as :class:`bench.common.NotInstalled`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bench.common import NotInstalled

if TYPE_CHECKING:
    from bench.systems.base import System

#: system name -> (module, backends it runs on, pip package).
SYSTEMS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "ferroq": ("bench.systems.ferroq_sys", ("sqlite", "postgres"), "ferroq-core"),
    # ferroq again, through PgBouncer in transaction mode (bench.run starts the pooler).
    "ferroq-pgbouncer": ("bench.systems.pgbouncer_sys", ("postgres",), "pgbouncer"),
    # ferroq with an observability plugin installed (bench/systems/ferroq_observed.py).
    "ferroq+prometheus": (
        "bench.systems.ferroq_observed",
        ("sqlite", "postgres"),
        "ferroq-prometheus",
    ),
    "ferroq+otel": ("bench.systems.ferroq_observed", ("sqlite", "postgres"), "ferroq-otel"),
    # ferroq whose job type stores its (small) result with each acknowledgement.
    "ferroq+results": ("bench.systems.ferroq_results", ("sqlite", "postgres"), "ferroq-core"),
    # ferroq dispatching every job under a unique rule (bench/systems/ferroq_unique.py).
    "ferroq+unique": ("bench.systems.ferroq_unique", ("sqlite", "postgres"), "ferroq-core"),
    "ferroq+unique_period": (
        "bench.systems.ferroq_unique",
        ("sqlite", "postgres"),
        "ferroq-core",
    ),
    # ferroq with keep_history on (bench/systems/ferroq_history.py).
    "ferroq+history": ("bench.systems.ferroq_history", ("sqlite", "postgres"), "ferroq-core"),
    # ferroq's jobs with 100 tenants, without and with limits (bench/systems/ferroq_limited.py).
    "ferroq+keyed": ("bench.systems.ferroq_limited", ("sqlite", "postgres"), "ferroq-core"),
    "ferroq+limited": ("bench.systems.ferroq_limited", ("sqlite", "postgres"), "ferroq-core"),
    "ferroq+unreached": ("bench.systems.ferroq_limited", ("sqlite", "postgres"), "ferroq-core"),
    "ferroq+elsewhere": ("bench.systems.ferroq_limited", ("sqlite", "postgres"), "ferroq-core"),
    # ferroq with the limited claim's index present (made where limits exist).
    "ferroq+groups": ("bench.systems.ferroq_limited", ("sqlite", "postgres"), "ferroq-core"),
    "raw": ("bench.systems.raw_sys", ("sqlite", "postgres"), "psycopg"),
    "procrastinate": ("bench.systems.procrastinate_sys", ("postgres",), "procrastinate"),
    "pgqueuer": ("bench.systems.pgqueuer_sys", ("postgres",), "pgqueuer"),
    "huey": ("bench.systems.huey_sys", ("sqlite",), "huey"),
}


def base_name(name: str) -> str:
    """``ferroq@before`` (a system run from another source tree, see ``--tree``) -> ``ferroq``."""
    return name.split("@", 1)[0]


def load(name: str, backend: str, url: str, queue: str, **options: Any) -> System:
    module, _backends, package = SYSTEMS[base_name(name)]
    try:
        mod = import_module(module)
    except ImportError as exc:
        raise NotInstalled(f"{package} not installed ({exc})") from exc
    # A module serving several systems has a make_<suffix> per system ("ferroq+otel").
    suffix = base_name(name).partition("+")[2]
    make = getattr(mod, f"make_{suffix}") if suffix else mod.make
    system: System = make(backend, url, queue, **options)
    return system
