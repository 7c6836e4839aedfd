"""The ``sqlite`` plugin: registers the SQLite backend for ``sqlite://`` URLs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ferroq_core import BackendSpec, hookimpl


def _factory(url_or_engine: Any, options: dict[str, Any]) -> Any:
    from ferroq_sqlite.backend import SqliteBackend

    return SqliteBackend.from_url(url_or_engine, **options)


@hookimpl
def ferroq_backends() -> Sequence[BackendSpec]:
    return [
        BackendSpec(
            name="sqlite", schemes=("sqlite",), factory=_factory, distribution="ferroq-sqlite"
        )
    ]
