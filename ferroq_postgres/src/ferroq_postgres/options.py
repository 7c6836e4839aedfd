"""The Postgres backend's options, from backend options or the database URL's query string.

``postgresql://app@db/app?pool_size=20&listen=false`` and
``Queue.init(url, backend_options={"pool_size": 20, "listen": False})`` mean the same; an
explicit backend option wins over the URL. Every other query parameter (``sslmode``,
``application_name``, ...) is left in the URL for libpq. The TCP bounds (``keepalives*``,
``tcp_user_timeout``, ``connect_timeout``) are libpq parameters that ferroq validates and
gives a default, then hands to libpq on every connection it opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from ferroq_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PostgresOptions", "split_url"]


def _positive(_i: object, a: attrs.Attribute[Any], v: Any) -> None:
    if not v > 0:
        raise ConfigError(f"postgres option {a.name} must be greater than 0, got {v!r}")


def _non_negative(_i: object, a: attrs.Attribute[Any], v: Any) -> None:
    if v < 0:
        raise ConfigError(f"postgres option {a.name} must not be negative, got {v!r}")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, got {value!r}")


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
    pool_pre_ping: bool = attrs.field(default=False, converter=_flag)
    #: Wake idle workers with LISTEN/NOTIFY; ``false`` makes them poll.
    listen: bool = attrs.field(default=True, converter=_flag)
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
    # How soon a silent network is noticed (docs/postgres.md, "Network partitions"). The TCP
    # settings are libpq's, in libpq's units, set on every connection the backend opens.
    #: TCP keepalives (``false`` leaves the kernel's defaults: hours).
    keepalives: bool = attrs.field(default=True, converter=_flag)
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
        return frozenset(a.name for a in attrs.fields(cls))

    @classmethod
    def build(cls, from_url: Mapping[str, Any], explicit: Mapping[str, Any]) -> PostgresOptions:
        unknown = sorted(set(explicit) - cls.names())
        if unknown:
            raise ConfigError(
                f"unknown postgres backend option(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(cls.names()))})"
            )
        merged = {**from_url, **explicit}
        try:
            return cls(**merged)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid postgres backend option: {exc}") from exc


def split_url(url: str | sa.engine.URL) -> tuple[sa.engine.URL, dict[str, str]]:
    """``url`` as a ``postgresql+psycopg`` URL without ferroq's options, and those options."""
    parsed = sa.engine.make_url(url).set(drivername="postgresql+psycopg")
    ours: dict[str, str] = {}
    for name in PostgresOptions.names() & set(parsed.query):
        value = parsed.query[name]
        # A parameter repeated in the query arrives as a tuple; the last one wins.
        ours[name] = value[-1] if isinstance(value, tuple) else value
    return parsed.difference_update_query(ours), ours
