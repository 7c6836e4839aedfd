"""SQLite backend options: from the URL's query string and from keyword options.

``sqlite:///jobs.db?synchronous=FULL&busy_timeout=10`` and
``Queue.init(url, backend_options={"synchronous": "FULL"})`` set the same thing; a keyword
option wins over the URL. The ferroq keys are removed from the URL before it reaches the
driver; any other query key (``timeout``, ``uri``...) goes to :mod:`sqlite3` unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["OPTION_NAMES", "SqliteOptions"]

SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _upper(value: Any) -> str:
    return str(value).strip().upper()


def _level(_i: object, _a: attrs.Attribute[Any], value: str) -> None:
    if value not in SYNCHRONOUS_LEVELS:
        raise ConfigError(
            f"SQLite synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, not {value!r} "
            "(set it with ?synchronous=FULL in the database URL)"
        )


def _positive(_i: object, a: attrs.Attribute[Any], value: float | None) -> None:
    # Not infinite either: busy_timeout becomes a PRAGMA of whole milliseconds.
    if value is not None and not 0 < value < math.inf:
        raise ConfigError(
            f"SQLite option {a.name} must be greater than 0 and finite, got {value!r}"
        )


def _non_negative(_i: object, a: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ConfigError(f"SQLite option {a.name} must not be negative, got {value!r}")


@attrs.frozen
class SqliteOptions:
    """How the SQLite backend sets up connections, waits for locks and polls for work."""

    #: ``PRAGMA synchronous``: NORMAL is durable against application crashes in WAL mode (a
    #: power cut may lose the last commits); FULL also survives power loss, at some cost.
    synchronous: str = attrs.field(default="NORMAL", converter=_upper, validator=_level)
    #: Seconds a statement waits for another connection's lock (``PRAGMA busy_timeout``).
    busy_timeout: float = attrs.field(default=5.0, converter=float, validator=_positive)
    #: Extra attempts, with jittered backoff, when a lock outlasts the busy timeout; after
    #: them the operation raises ``BackendBusy``.
    busy_retries: int = attrs.field(default=5, converter=int, validator=_non_negative)
    #: Seconds between change checks right after a change (the fastest poll).
    poll_min: float = attrs.field(default=0.005, converter=float, validator=_positive)
    #: Longest seconds between change checks when idle (never more than the wait's timeout,
    #: the worker's ``--sleep``); None: back off up to that timeout. A check costs a few
    #: microseconds, so the default keeps an idle worker's pick-up of jobs dispatched by other
    #: processes within about 0.1 s for about ten checks a second.
    poll_max: float | None = attrs.field(
        default=0.1, converter=attrs.converters.optional(float), validator=_positive
    )

    @classmethod
    def from_sources(
        cls, query: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[SqliteOptions, dict[str, Any]]:
        """Options from a URL query and keyword options (keywords win).

        Returns the options and the keyword options that are not ferroq's (for the caller to
        reject or pass on).
        """
        values: dict[str, Any] = {}
        for name in OPTION_NAMES:
            raw = query.get(name)
            if isinstance(raw, (tuple, list)):
                raw = raw[-1]
            if raw is not None:
                values[name] = None if name == "poll_max" and raw in ("", "none") else raw
        rest: dict[str, Any] = {}
        for name, value in options.items():
            if name in OPTION_NAMES:
                values[name] = value
            else:
                rest[name] = value
        try:
            return cls(**values), rest
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid SQLite option: {exc}") from exc


#: The option names ferroq reads from the URL query and keyword options.
OPTION_NAMES = tuple(a.name for a in attrs.fields(SqliteOptions))
