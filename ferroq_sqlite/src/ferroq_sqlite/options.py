"""SQLite backend options: from the URL's query string and from keyword options.

``sqlite:///jobs.db?synchronous=FULL&busy_timeout=10`` and
``Queue.init(url, backend_options={"synchronous": "FULL"})`` set the same thing; a keyword
option wins over the URL. The ferroq keys are removed from the URL before it reaches the
driver; :mod:`sqlite3`'s own keys (``timeout``, ``uri``...) go to it unchanged, and any other
key is a :class:`~ferroq_core.errors.ConfigError` naming it (a misspelt option would otherwise
be ignored).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.errors import ConfigError
from ferroq_core.storage.options import (
    build_options,
    check_query_keys,
    flag,
    last_value,
    option_names,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DRIVER_KEYS", "OPTION_NAMES", "URI_KEYS", "SqliteOptions", "driver_keys"]

SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")

#: The :mod:`sqlite3` connect arguments SQLAlchemy takes from the URL's query string.
DRIVER_KEYS = (
    "uri",
    "timeout",
    "isolation_level",
    "detect_types",
    "check_same_thread",
    "cached_statements",
)
#: SQLite's own URI parameters (https://sqlite.org/uri.html), passed on with ``uri=true``.
URI_KEYS = ("vfs", "mode", "cache", "psow", "nolock", "immutable")


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
            f"SQLite option {a.name} must be a finite number greater than 0, got {value!r}"
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
    def from_sources(cls, query: Mapping[str, Any], options: Mapping[str, Any]) -> SqliteOptions:
        """Options from a URL query and keyword options (keywords win).

        :raises ConfigError: a keyword option that is not ferroq's, a query key that is
            neither ferroq's nor :mod:`sqlite3`'s, or a value its option does not accept (each
            named in the message).
        """
        check_query_keys(query, OPTION_NAMES, driver_keys(query), "SQLite")
        values = {name: last_value(query[name]) for name in OPTION_NAMES if name in query}
        values.update(options)
        return build_options(cls, values, "SQLite")


def driver_keys(query: Mapping[str, Any]) -> tuple[str, ...]:
    """The query keys the driver takes: :mod:`sqlite3`'s connect arguments, and with
    ``uri=true`` SQLite's own URI parameters too."""
    uri = last_value(query.get("uri"))
    try:
        as_uri = uri is not None and flag(uri)
    except ConfigError:
        raise ConfigError(
            f"invalid SQLite option uri: expected true or false, got {uri!r}"
        ) from None
    if as_uri:
        return DRIVER_KEYS + URI_KEYS
    misplaced = sorted(set(query) & set(URI_KEYS))
    if misplaced:
        raise ConfigError(
            f"SQLite URI parameter(s) {', '.join(misplaced)} in the database URL need uri=true "
            "as well (without it sqlite3 would ignore them)"
        )
    return DRIVER_KEYS


#: The option names ferroq reads from the URL query and keyword options.
OPTION_NAMES = option_names(SqliteOptions)
