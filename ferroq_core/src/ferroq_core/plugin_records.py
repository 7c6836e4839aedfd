"""Records that plugins return from registry hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.records import Capabilities

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.job import Job
    from ferroq_core.storage.protocol import Backend

__all__ = ["BackendSpec", "BackoffPolicy"]


@attrs.frozen
class BackendSpec:
    """A storage backend a plugin offers."""

    #: Short name (``sqlite``, ``postgres``), the same as the plugin's entry point.
    name: str
    #: URL schemes served, without a driver suffix (``postgresql`` serves
    #: ``postgresql+psycopg`` too).
    schemes: tuple[str, ...]
    #: Builds the backend: ``factory(url_or_engine, options) -> Backend``.
    factory: Callable[[Any, dict[str, Any]], Backend]
    #: The distribution to ``pip install`` for this backend (named in errors).
    distribution: str
    #: What the backend can do beyond the protocol (the same record as the backend's own
    #: ``capabilities``), readable without building the backend.
    capabilities: Capabilities = attrs.field(factory=Capabilities)


@attrs.frozen
class BackoffPolicy:
    """A retry-delay policy: ``delay(job, attempt) -> seconds``."""

    #: Name selected by ``FERROQ_BACKOFF``.
    name: str
    #: Seconds before the next attempt after failed attempt ``attempt`` (1-based).
    delay: Callable[[Job, int], float]
