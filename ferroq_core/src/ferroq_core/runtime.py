"""A queue runtime: configuration, plugins, backend, serializer and registry, wired once.

:class:`~ferroq_core.Queue` keeps one process-wide runtime; workers, the CLI and the testing
kit can also build their own (a fresh plugin manager per test, for instance).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import sqlalchemy as sa

from ferroq_core.config import QueueConfig, hide_password
from ferroq_core.errors import ConfigError, UnknownBackend
from ferroq_core.plugins import make_plugin_manager
from ferroq_core.registry import JobRegistry, default_registry

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType

    import pluggy

    from ferroq_core.plugin_records import BackendSpec, BackoffPolicy
    from ferroq_core.serialization import Serializer
    from ferroq_core.storage.protocol import Backend

__all__ = [
    "JobContext",
    "Runtime",
    "fire",
    "guarded_scopes",
    "open_backend",
    "scheme_of",
    "select_backoff",
    "select_serializer",
]

log = logging.getLogger("ferroq")

# Which distribution serves a scheme, to name it when none is installed.
_KNOWN = {
    "sqlite": "ferroq-sqlite",
    "postgresql": "ferroq-postgres",
    "postgres": "ferroq-postgres",
}


def scheme_of(url_or_engine: Any) -> tuple[str, str]:
    """The scheme (``sqlite``, ``postgresql``) and a password-free rendering of the URL."""
    if isinstance(url_or_engine, sa.engine.Engine):
        return url_or_engine.dialect.name, hide_password(
            url_or_engine.url.render_as_string(hide_password=True)
        )
    if not isinstance(url_or_engine, (str, sa.engine.URL)):
        raise ConfigError(
            f"expected a database URL or a SQLAlchemy Engine, got {type(url_or_engine).__name__}"
        )
    text = str(url_or_engine).strip() if isinstance(url_or_engine, str) else url_or_engine
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        # Neither message may carry the driver's text: it would quote the password.
        why = "" if isinstance(exc, sa.exc.ArgumentError) else " (its port is not a number)"
        raise ConfigError(
            f"not a database URL: {hide_password(str(text))!r}{why}; expected e.g. "
            "sqlite:///ferroq.sqlite3 or postgresql://user@host/dbname"
        ) from None
    scheme = url.get_backend_name()
    if scheme == "postgres":
        scheme = "postgresql"
    return scheme, hide_password(url.render_as_string(hide_password=True))


def open_backend(
    url_or_engine: Any, pm: pluggy.PluginManager, options: dict[str, Any] | None = None
) -> Backend:
    """Build the backend that serves ``url_or_engine``'s scheme."""
    scheme, shown = scheme_of(url_or_engine)
    specs: list[BackendSpec] = [s for batch in pm.hook.ferroq_backends() for s in batch]
    # pluggy calls later-registered plugins first; the first match wins.
    for spec in specs:
        if scheme in spec.schemes:
            return spec.factory(url_or_engine, dict(options or {}))
    dist = _KNOWN.get(scheme)
    hint = f"pip install {dist}" if dist else "install a ferroq backend plugin for it"
    served = sorted({s for spec in specs for s in spec.schemes})
    raise UnknownBackend(
        f"no installed ferroq backend serves {scheme!r} URLs ({shown}): {hint}"
        + (f" (installed backends serve: {', '.join(served)})" if served else "")
    )


def fire(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> None:
    """Call a lifecycle hook; a plugin's error is logged, never raised into the job path."""
    hook = getattr(pm.hook, name)
    # Fired per job on the hot paths (dispatch, worker): a hook no plugin implements is
    # skipped (pluggy's get_hookimpls), which spares its call machinery once per job; a
    # hook monitor then sees no call for a hook that nobody implements.
    if not hook.get_hookimpls():
        return
    try:
        hook(**kwargs)
    except Exception:
        log.exception("ferroq plugin hook %s raised; ignoring", name)


class _Guarded:
    """A plugin's scope whose own errors, entering or leaving, are logged and ignored; an
    error raised inside it still reaches it and goes on unchanged."""

    def __init__(self, scope: AbstractContextManager[Any], name: str) -> None:
        self.scope, self.name, self.entered = scope, name, False

    def __enter__(self) -> None:
        try:
            self.scope.__enter__()
        except Exception:
            log.exception("ferroq plugin scope %s raised entering; ignoring", self.name)
            return
        self.entered = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.entered:
            return
        try:
            self.scope.__exit__(kind, error, tb)
        except Exception:
            log.exception("ferroq plugin scope %s raised leaving; ignoring", self.name)


class _Scopes(ExitStack):
    """Enters its scopes when entered (an ExitStack enters them as they are added)."""

    def __init__(self, scopes: list[_Guarded]) -> None:
        super().__init__()
        self.scopes = scopes

    def __enter__(self) -> _Scopes:
        for scope in self.scopes:
            self.enter_context(scope)
        return self


def guarded_scopes(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> _Scopes:
    """Every plugin's scope from hook ``name`` as one context manager, for observers: an
    error calling the hook or entering or leaving a scope is logged and ignored, and never
    swallows an error raised inside."""
    try:
        results = getattr(pm.hook, name)(**kwargs)
    except Exception:
        log.exception("ferroq plugin hook %s raised; ignoring", name)
        results = []
    return _Scopes([_Guarded(r, name) for r in results if r is not None])


class JobContext(Protocol):
    """What encoding, decoding and scoping a job need, without a database.

    A :class:`Runtime` is one; the testing kit builds lighter ones so ``fake_queue()`` and
    ``run_job()`` work before ``Queue.init``.
    """

    @property
    def config(self) -> QueueConfig: ...
    @property
    def pm(self) -> pluggy.PluginManager: ...
    @property
    def serializer(self) -> Serializer: ...
    @property
    def registry(self) -> JobRegistry: ...


def select_serializer(pm: pluggy.PluginManager, config: QueueConfig) -> Serializer:
    """The serializer named by ``config.serializer`` among the plugins' serializers."""
    found: Serializer = _select(
        pm.hook.ferroq_serializers(), config.serializer, "serializer", "FERROQ_SERIALIZER"
    )
    return found


def select_backoff(pm: pluggy.PluginManager, config: QueueConfig) -> BackoffPolicy:
    """The backoff policy named by ``config.backoff`` among the plugins' policies."""
    found: BackoffPolicy = _select(
        pm.hook.ferroq_backoff_policies(), config.backoff, "backoff policy", "FERROQ_BACKOFF"
    )
    return found


@attrs.frozen
class Runtime:
    """Everything dispatch and the worker need, wired once."""

    #: The configuration.
    config: QueueConfig
    #: The plugin manager.
    pm: pluggy.PluginManager
    #: The storage backend (built eagerly so a bad URL fails at start-up).
    backend: Backend
    #: The selected serializer.
    serializer: Serializer
    #: The selected backoff policy.
    backoff: BackoffPolicy
    #: Job types by name.
    registry: JobRegistry = attrs.field(factory=default_registry)

    @classmethod
    def build(
        cls,
        url_or_engine: Any = None,
        config: QueueConfig | None = None,
        pm: pluggy.PluginManager | None = None,
        backend_options: dict[str, Any] | None = None,
        *,
        backend: Backend | None = None,
    ) -> Runtime:
        """Wire a runtime. ``backend`` uses an already open backend instead of opening one
        for ``url_or_engine`` (the testing kit's ``drain(backend=...)``)."""
        config = config or QueueConfig.from_env()
        pm = pm or make_plugin_manager()
        if backend is None:
            target = url_or_engine if url_or_engine is not None else config.database_url
            backend = open_backend(target, pm, backend_options)
        return cls(
            config=config,
            pm=pm,
            backend=backend,
            serializer=select_serializer(pm, config),
            backoff=select_backoff(pm, config),
        )

    def close(self) -> None:
        self.backend.close()


def _select(batches: list[Any], name: str, what: str, env: str) -> Any:
    items = [item for batch in batches for item in batch]
    for item in items:
        if item.name == name:
            return item
    names = ", ".join(sorted({item.name for item in items})) or "none"
    raise ConfigError(f"no {what} named {name!r} is installed (set {env}; available: {names})")
