"""The Postgres backend's options, from backend options or the database URL's query string.

``postgresql://app@db/app?pool_size=20&listen=false`` and
``Queue.init(url, backend_options={"pool_size": 20, "listen": False})`` mean the same; an
explicit backend option wins over the URL. libpq's own connection parameters (``sslmode``,
``application_name``, ``target_session_attrs``, ...) are left in the URL for it; any other
query parameter is a :class:`~ferroq_core.errors.ConfigError` naming it. The TCP bounds
(``keepalives*``, ``tcp_user_timeout``, ``connect_timeout``) are libpq parameters that ferroq
validates and gives a default, then hands to libpq on every connection it opens.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from psycopg import pq

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

__all__ = ["PostgresOptions", "libpq_keywords", "split_url"]


def _positive(_i: object, a: attrs.Attribute[Any], v: Any) -> None:
    if not v > 0:
        raise ConfigError(f"postgres option {a.name} must be greater than 0, got {v!r}")


def _non_negative(_i: object, a: attrs.Attribute[Any], v: Any) -> None:
    if v < 0:
        raise ConfigError(f"postgres option {a.name} must not be negative, got {v!r}")


def _optional_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    try:
        url = sa.engine.make_url(value)
    except sa.exc.ArgumentError:
        # Not echoed: it may hold a password.
        raise ConfigError(
            "postgres option listen_url is not a URL (postgresql://user@host:port/database)"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"postgres option listen_url must be a postgresql:// URL, not {url.drivername}://"
        )
    return url.render_as_string(hide_password=False)


def _url_repr(value: str | None) -> str:
    return repr(value if value is None else sa.engine.make_url(value).render_as_string())


@attrs.frozen
class PostgresOptions:
    """Tuning of :class:`~ferroq_postgres.PostgresBackend` (every field has a safe default)."""

    #: Connections the pool keeps open.
    pool_size: int = attrs.field(default=10, converter=int, validator=_positive)
    #: Extra connections opened under load beyond ``pool_size`` (closed when returned).
    max_overflow: int = attrs.field(default=10, converter=int, validator=_non_negative)
    #: Seconds to wait for a free pooled connection before raising ``BackendBusy``.
    pool_timeout: float = attrs.field(default=30.0, converter=float, validator=_positive)
    #: Seconds after which a pooled connection is replaced (``-1``: never).
    pool_recycle: int = attrs.field(default=1800, converter=int)
    #: Ping each connection when it leaves the pool (one extra round trip per operation).
    pool_pre_ping: bool = attrs.field(default=False, converter=flag)
    #: Wake idle workers with LISTEN/NOTIFY; ``false`` makes them poll.
    listen: bool = attrs.field(default=True, converter=flag)
    #: Longest idle wait, in seconds, while the listening connection is down.
    poll_interval: float = attrs.field(default=1.0, converter=float, validator=_positive)
    #: Cap of the jittered backoff between attempts to re-open the listening connection.
    listen_backoff_cap: float = attrs.field(default=10.0, converter=float, validator=_positive)
    #: Retries of an operation whose connection broke before it could commit.
    reconnect_attempts: int = attrs.field(default=3, converter=int, validator=_non_negative)
    #: Cap, in seconds, of the jittered backoff between those retries.
    reconnect_backoff_cap: float = attrs.field(default=2.0, converter=float, validator=_positive)
    #: Jobs this process finishes between two ``VACUUM ferroq_jobs`` runs of its own (at most
    #: one per 5 s, one process at a time); ``0`` leaves vacuuming to autovacuum alone.
    vacuum_every: int = attrs.field(default=20_000, converter=int, validator=_non_negative)
    #: The URL goes through PgBouncer (or another pooler) in transaction mode, where a session
    #: is not ours from one transaction to the next: no server-side prepared statements, no
    #: session-level lock, and LISTEN only on ``listen_url`` (without it idle workers poll).
    pgbouncer: bool = attrs.field(default=False, converter=flag)
    #: A URL that reaches the same database directly (not through a pooler), for the LISTEN
    #: connection; unset, LISTEN uses the main URL (or, behind PgBouncer, nothing).
    listen_url: str | None = attrs.field(default=None, converter=_optional_url, repr=_url_repr)
    # How soon a silent network is noticed (docs/postgres.md, "Network partitions"). The TCP
    # settings are libpq's, in libpq's units, set on every connection the backend opens.
    #: TCP keepalives (``false`` leaves the kernel's defaults: hours).
    keepalives: bool = attrs.field(default=True, converter=flag)
    #: Seconds of silence before the first keepalive probe.
    keepalives_idle: int = attrs.field(default=10, converter=int, validator=_positive)
    #: Seconds between unanswered probes.
    keepalives_interval: int = attrs.field(default=5, converter=int, validator=_positive)
    #: Unanswered probes after which the connection is dropped.
    keepalives_count: int = attrs.field(default=3, converter=int, validator=_positive)
    #: Milliseconds sent data (or a probe) may stay unacknowledged before the kernel drops the
    #: connection (``0``: the kernel's retransmission limit, about 15 minutes).
    tcp_user_timeout: int = attrs.field(default=30_000, converter=int, validator=_non_negative)
    #: Seconds to wait for a new connection (``0``: no limit).
    connect_timeout: int = attrs.field(default=10, converter=int, validator=_non_negative)
    #: Seconds a worker's operation (claim, write-back, heartbeat, reaper pass) may wait for
    #: the server before ferroq closes its connection, client side (``0``: no deadline).
    statement_deadline: float = attrs.field(default=30.0, converter=float, validator=_non_negative)

    def libpq_bounds(self) -> dict[str, str]:
        """The connection parameters that bound a silent network, as libpq takes them."""
        if not self.keepalives:
            bounds = {"keepalives": "0"}
        else:
            bounds = {
                "keepalives": "1",
                "keepalives_idle": str(self.keepalives_idle),
                "keepalives_interval": str(self.keepalives_interval),
                "keepalives_count": str(self.keepalives_count),
            }
        if self.tcp_user_timeout:
            bounds["tcp_user_timeout"] = str(self.tcp_user_timeout)
        if self.connect_timeout:
            bounds["connect_timeout"] = str(self.connect_timeout)
        return bounds

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(option_names(cls))

    @classmethod
    def build(cls, from_url: Mapping[str, Any], explicit: Mapping[str, Any]) -> PostgresOptions:
        """Options from the URL's query and keyword options (keywords win).

        :raises ConfigError: an unknown keyword option, or a value its option does not accept
            (each named in the message).
        """
        return build_options(cls, {**from_url, **explicit}, "postgres")


@functools.cache
def libpq_keywords() -> frozenset[str]:
    """The connection parameters the installed libpq knows (``sslmode``, ``connect_timeout``,
    ``application_name``, ``keepalives``, ``target_session_attrs``, ``options``...)."""
    return frozenset(opt.keyword.decode() for opt in pq.Conninfo.get_defaults())


def split_url(url: str | sa.engine.URL) -> tuple[sa.engine.URL, dict[str, str]]:
    """``url`` as a ``postgresql+psycopg`` URL without ferroq's options, and those options."""
    parsed = sa.engine.make_url(url).set(drivername="postgresql+psycopg")
    names = PostgresOptions.names()
    check_query_keys(parsed.query, names, libpq_keywords(), "postgres")
    ours = {name: last_value(parsed.query[name]) for name in names & set(parsed.query)}
    return parsed.difference_update_query(ours), ours
