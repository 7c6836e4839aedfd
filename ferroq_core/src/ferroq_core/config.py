"""Configuration records: ``QueueConfig`` (dispatch side) and ``WorkerConfig`` (worker side).

Every environment variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.bounds import queue_name_problem
from ferroq_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_DATABASE_URL", "QueueConfig", "WorkerConfig", "hide_password"]

#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///ferroq.sqlite3"


#: libpq's ``password`` (and ``sslpassword``) given as a query parameter.
_PASSWORD_PARAMETER = re.compile(r"((?:^|[?&])(?:ssl)?password=)[^&]*", re.IGNORECASE)


def hide_password(url: str) -> str:
    """``url`` with its password replaced by ``***``, for any message or log line.

    Works on text that is not a valid URL too (a mistyped scheme, a bad port), where a URL
    parser cannot be trusted to find the password: everything between the user name and the
    last ``@`` is hidden, so a password holding ``/`` or ``@`` does not leak either.
    """
    url = _PASSWORD_PARAMETER.sub(r"\1***", url)
    at = url.rfind("@")
    if at < 0:
        return url
    slashes = url.find("//", 0, at)
    # After "//" comes "user:password"; without it, hide all from the first colon on.
    colon = url.find(":", slashes + 2 if slashes >= 0 else 0, at)
    if colon < 0:
        return url  # a user name only
    return f"{url[: colon + 1]}***{url[at:]}"


def _shown_url(url: str) -> str:
    return repr(hide_password(url))


def _positive(_i: object, a: attrs.Attribute[Any], v: Any) -> None:
    if v is not None and not v > 0:
        raise ConfigError(f"{a.name} must be greater than 0, got {v!r}")


def _non_negative(_i: object, a: attrs.Attribute[Any], v: Any) -> None:
    if v is not None and v < 0:
        raise ConfigError(f"{a.name} must not be negative, got {v!r}")


def _connection(_i: object, _a: attrs.Attribute[Any], v: str) -> None:
    if v not in ("sync", "db"):
        raise ConfigError(f"QUEUE_CONNECTION must be 'sync' or 'db', got {v!r}")


def _queue_names(_i: object, _a: attrs.Attribute[Any], v: tuple[str, ...]) -> None:
    if not v or any(not q for q in v):
        raise ConfigError("the queue list must name at least one queue and no empty names")
    for name in v:
        problem = queue_name_problem(name)
        if problem is not None:
            raise ConfigError(f"the queue list: {problem}")
    if len(set(v)) != len(v):
        raise ConfigError(f"the queue list names a queue twice: {', '.join(v)}")


def _default_queue(_i: object, _a: attrs.Attribute[Any], v: str) -> None:
    problem = queue_name_problem(v)
    if problem is not None:
        raise ConfigError(f"QUEUE_DEFAULT: {problem}")


def _str_tuple(v: Iterable[str]) -> tuple[str, ...]:
    # A named converter (not bare ``tuple``) so type checkers see what ``queues`` accepts.
    return (v,) if isinstance(v, str) else tuple(v)


def _env_number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1/true/yes/on or 0/false/no/off, got {raw!r}")


@attrs.frozen
class QueueConfig:
    """How dispatch behaves and where the jobs live."""

    #: ``sync`` runs jobs inline in the caller (the default); ``db`` writes them to the database.
    connection: str = attrs.field(default="sync", validator=_connection)
    #: SQLAlchemy-style URL of the jobs database (its password never shows in the repr).
    database_url: str = attrs.field(default=DEFAULT_DATABASE_URL, repr=_shown_url)
    #: Queue for jobs whose type names none.
    default_queue: str = attrs.field(default="default", validator=_default_queue)
    #: Default worker concurrency.
    max_concurrent: int = attrs.field(default=10, validator=_positive)
    #: Seconds without a heartbeat after which a claim is reaped.
    visibility_timeout: float = attrs.field(default=300.0, validator=_positive)
    #: Largest encoded payload accepted at dispatch, in bytes.
    max_payload_bytes: int = attrs.field(default=1024 * 1024, validator=_positive)
    #: Serializer name (from the ``ferroq_serializers`` hook).
    serializer: str = "json"
    #: Backoff policy name (from the ``ferroq_backoff_policies`` hook).
    backoff: str = "full-jitter"
    #: Keep a history record of each succeeded job (a job type's ``keep_history`` wins).
    keep_history: bool = False
    #: Seconds history records, attempt errors of deleted jobs and progress are kept.
    history_retention: float = attrs.field(default=7 * 86400.0, validator=_positive)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> QueueConfig:
        """Read ``QUEUE_CONNECTION``, ``FERROQ_DATABASE_URL``, ``QUEUE_DEFAULT``,
        ``QUEUE_MAX_CONCURRENT``, ``QUEUE_VISIBILITY_TIMEOUT_SECS``,
        ``FERROQ_MAX_PAYLOAD_BYTES``, ``FERROQ_SERIALIZER``, ``FERROQ_BACKOFF``,
        ``FERROQ_KEEP_HISTORY`` and ``FERROQ_HISTORY_RETENTION_SECS``."""
        env = os.environ if env is None else env
        return cls(
            connection=(env.get("QUEUE_CONNECTION") or "sync").strip().lower(),
            database_url=env.get("FERROQ_DATABASE_URL") or DEFAULT_DATABASE_URL,
            default_queue=env.get("QUEUE_DEFAULT") or "default",
            max_concurrent=_env_number(env, "QUEUE_MAX_CONCURRENT", int, 10),
            visibility_timeout=_env_number(env, "QUEUE_VISIBILITY_TIMEOUT_SECS", float, 300.0),
            max_payload_bytes=_env_number(env, "FERROQ_MAX_PAYLOAD_BYTES", int, 1024 * 1024),
            serializer=env.get("FERROQ_SERIALIZER") or "json",
            backoff=env.get("FERROQ_BACKOFF") or "full-jitter",
            keep_history=_env_flag(env, "FERROQ_KEEP_HISTORY"),
            history_retention=_env_number(env, "FERROQ_HISTORY_RETENTION_SECS", float, 7 * 86400.0),
        )


@attrs.frozen
class WorkerConfig:
    """How a worker runs. Each field is a ``ferroq worker`` option."""

    #: Queues in strict priority order: the first drains before the next is looked at.
    queues: tuple[str, ...] = attrs.field(
        default=("default",), converter=_str_tuple, validator=_queue_names
    )
    #: Jobs run at once (thread slots for sync handlers; async handlers share one loop).
    concurrency: int = attrs.field(default=10, validator=_positive)
    #: Longest idle wait between polls, in seconds.
    sleep: float = attrs.field(default=1.0, validator=_positive)
    #: Default per-job timeout in seconds (a job type's ``timeout`` wins); None: no limit.
    timeout: float | None = attrs.field(default=None, validator=_positive)
    #: Seconds without a heartbeat after which another worker reaps a claim.
    visibility_timeout: float = attrs.field(default=300.0, validator=_positive)
    #: Seconds between heartbeats (must be well under the visibility timeout).
    heartbeat_interval: float | None = attrs.field(default=None, validator=_positive)
    #: Seconds between reaper passes.
    reaper_interval: float | None = attrs.field(default=None, validator=_positive)
    #: Seconds to let running jobs finish after SIGTERM.
    shutdown_timeout: float = attrs.field(default=30.0, validator=_non_negative)
    #: Exit after this many jobs (None: no limit).
    max_jobs: int | None = attrs.field(default=None, validator=_positive)
    #: Exit after this many seconds (None: no limit).
    max_time: float | None = attrs.field(default=None, validator=_positive)
    #: Finish current work and exit when RSS exceeds this many MB.
    memory_limit_mb: float | None = attrs.field(default=None, validator=_positive)
    #: Exit when the queues are empty.
    stop_when_empty: bool = False
    #: Process one batch of at most one job, then exit.
    once: bool = False

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_interval is not None and (
            self.heartbeat_interval >= self.visibility_timeout
        ):
            raise ConfigError(
                f"heartbeat interval ({self.heartbeat_interval}s) must be shorter than the "
                f"visibility timeout ({self.visibility_timeout}s)"
            )

    @property
    def effective_heartbeat_interval(self) -> float:
        """The heartbeat interval, defaulting to a third of the visibility timeout."""
        return self.heartbeat_interval or max(0.05, self.visibility_timeout / 3.0)

    @property
    def effective_reaper_interval(self) -> float:
        """The reaper interval, defaulting to half the visibility timeout (at most 60 s)."""
        return self.reaper_interval or max(0.05, min(60.0, self.visibility_timeout / 2.0))
