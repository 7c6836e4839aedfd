"""The ``sqlite`` plugin: registers the SQLite backend for ``sqlite://`` URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import BackendSpec, hookimpl

if TYPE_CHECKING:
    from collections.abc import Sequence


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
