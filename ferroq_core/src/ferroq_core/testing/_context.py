"""The encode/decode/scope context the testing kit uses when no runtime is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ferroq_core.config import QueueConfig
from ferroq_core.plugins import make_plugin_manager
from ferroq_core.queue import Queue
from ferroq_core.registry import JobRegistry, default_registry
from ferroq_core.runtime import select_serializer

if TYPE_CHECKING:
    import pluggy

    from ferroq_core.runtime import JobContext
    from ferroq_core.serialization import Serializer

__all__ = ["LocalContext", "job_context"]


@attrs.frozen
class LocalContext:
    """Configuration, plugins, serializer and registry, without a database."""

    #: Dispatch settings (from the environment).
    config: QueueConfig
    #: A plugin manager with every installed plugin.
    pm: pluggy.PluginManager
    #: The configured serializer.
    serializer: Serializer
    #: Job types by name.
    registry: JobRegistry = attrs.field(factory=default_registry)

    @classmethod
    def from_env(cls) -> LocalContext:
        config = QueueConfig.from_env()
        pm = make_plugin_manager()
        return cls(config=config, pm=pm, serializer=select_serializer(pm, config))


def job_context(runtime: JobContext | None = None) -> JobContext:
    """``runtime``, else the process-wide queue's runtime, else one built from the
    environment (so the kit works before ``Queue.init``)."""
    if runtime is not None:
        return runtime
    if Queue.is_initialized():
        return Queue.runtime()
    return LocalContext.from_env()
