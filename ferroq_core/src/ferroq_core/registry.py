"""Job types by stable name: the stored ``job_type`` and the worker's lookup key.

Lookup order: types registered in code (every ``Job`` subclass registers itself when its
class is created, so importing a module is enough), types returned by the ``ferroq_job_types``
hook, then the ``ferroq.jobs`` entry-point group, loaded lazily the first time a name is met.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, cast

from ferroq_core.errors import ConfigError, UnknownJobType
from ferroq_core.jobmodel import JobBase, job_type_name

if TYPE_CHECKING:
    import pluggy

    from ferroq_core.job import Job

__all__ = ["JOBS_ENTRY_POINT_GROUP", "JobRegistry", "default_registry", "job_type_name"]

JOBS_ENTRY_POINT_GROUP = "ferroq.jobs"


class JobRegistry:
    """Maps stable names to job classes. Thread-safe."""

    def __init__(self) -> None:
        self._types: dict[str, type[Job]] = {}
        self._lock = threading.Lock()

    def register(self, cls: type[Job], name: str | None = None) -> type[Job]:
        key = name or job_type_name(cls)
        with self._lock:
            old = self._types.get(key)
            # attrs replaces a class when it adds slots: same module and qualname is the
            # same job type, and the newest class object wins.
            if (
                old is not None
                and old is not cls
                and ((old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__))
            ):
                raise ConfigError(
                    f"two job types claim the name {key!r}: {old.__module__}.{old.__qualname__} "
                    f"and {cls.__module__}.{cls.__qualname__}; give one a distinct job_name"
                )
            self._types[key] = cls
        return cls

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._types)

    def has_types(self, pm: pluggy.PluginManager | None = None) -> bool:
        """Whether any job type can be found: registered, from a plugin's
        ``ferroq_job_types``, or in the ``ferroq.jobs`` entry points."""
        if self.names():
            return True
        if pm is not None and any(batch for batch in pm.hook.ferroq_job_types()):
            return True
        return bool(entry_points(group=JOBS_ENTRY_POINT_GROUP))

    def get(self, name: str, pm: pluggy.PluginManager | None = None) -> type[Job]:
        # Read without the lock (the worker looks up every job): a dict lookup is atomic, and
        # a name being registered right now is simply found on the slow path below.
        found = self._types.get(name)
        if found is not None:
            return found
        if pm is not None:
            for batch in pm.hook.ferroq_job_types():
                for cls in batch:
                    self.register(cls)
            with self._lock:
                found = self._types.get(name)
            if found is not None:
                return found
        # The entry point's name is the stable name; its value ("module:Class") is also the
        # default name of a type that sets no job_name, so match either.
        candidates = [
            ep for ep in entry_points(group=JOBS_ENTRY_POINT_GROUP) if name in (ep.name, ep.value)
        ]
        for ep in candidates:
            try:
                cls = ep.load()
            except Exception as exc:
                raise UnknownJobType(
                    f"job type {name!r}: its entry point {ep.value!r} failed to load: {exc!r}"
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, JobBase)):
                raise UnknownJobType(
                    f"job type {name!r}: entry point {ep.value!r} is not a ferroq Job subclass"
                )
            # Every JobBase users can define is a Job: Job is the only public subclass.
            return self.register(cast("type[Job]", cls), name)
        raise UnknownJobType(
            f"no job type is registered under {name!r}: install the package that defines it, "
            "add it to the `ferroq.jobs` entry points, or pass `--import MODULE` to the worker"
        )


_default = JobRegistry()


def default_registry() -> JobRegistry:
    """The process-wide registry that ``Job`` subclasses add themselves to."""
    return _default
