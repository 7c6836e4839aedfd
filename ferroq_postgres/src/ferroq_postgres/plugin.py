"""The ``postgres`` plugin: registers the PostgreSQL backend for ``postgresql://`` URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import BackendSpec, hookimpl
from ferroq_postgres.capabilities import CAPABILITIES

if TYPE_CHECKING:
    from collections.abc import Sequence


def _factory(url_or_engine: Any, options: dict[str, Any]) -> Any:
    from ferroq_postgres.backend import PostgresBackend

    return PostgresBackend.from_url(url_or_engine, **options)


@hookimpl
def ferroq_backends() -> Sequence[BackendSpec]:
    return [
        BackendSpec(
            name="postgres",
            schemes=("postgresql",),
            factory=_factory,
            distribution="ferroq-postgres",
            capabilities=CAPABILITIES,
        )
    ]
