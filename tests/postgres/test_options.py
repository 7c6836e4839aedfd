"""Options from the URL and from code, and error translation by SQLSTATE (no server needed:
engines connect lazily, and driver errors are built directly)."""

from __future__ import annotations

import attrs
import psycopg
import pytest
import sqlalchemy as sa

from ferroq_core.errors import (
    BackendBusy,
    BackendUnavailable,
    ConfigError,
    DatabaseError,
    FerroqError,
    SchemaMissing,
)
from ferroq_postgres import PostgresBackend
from ferroq_postgres.errors import is_disconnect, is_transient, translate
from ferroq_postgres.options import PostgresOptions


def test_ferroq_options_come_out_of_the_url_and_libpq_options_stay() -> None:
    backend = PostgresBackend.from_url(
        "postgres://app@db.invalid/app?pool_size=3&max_overflow=0&listen=false"
        "&poll_interval=0.5&sslmode=disable&connect_timeout=2"
    )
    try:
        assert backend.engine.url.drivername == "postgresql+psycopg"
        # The TCP bounds are validated as options and handed to libpq, defaults included.
        assert dict(backend.engine.url.query) == {
            "sslmode": "disable",
            "connect_timeout": "2",
            "keepalives": "1",
            "keepalives_idle": "10",
            "keepalives_interval": "5",
            "keepalives_count": "3",
            "tcp_user_timeout": "30000",
        }
        assert backend.options.pool_size == 3
        assert backend.options.listen is False
        assert backend.options.poll_interval == 0.5
        assert backend.engine.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        backend.close()


def test_every_option_of_the_options_class_is_read_from_the_url() -> None:
    """The URL accepts whatever fields PostgresOptions has (not a list of its own)."""
    defaults = PostgresOptions()
    query = "&".join(
        f"{a.name}={str(getattr(defaults, a.name)).lower()}"
        for a in attrs.fields(PostgresOptions)
        if getattr(defaults, a.name) is not None
    )
    backend = PostgresBackend.from_url(f"postgresql://app@db.invalid/app?{query}&sslmode=disable")
    try:
        assert backend.options == defaults
        # Only libpq's parameters reach libpq: its own and the TCP bounds ferroq sets.
        assert dict(backend.engine.url.query) == {"sslmode": "disable", **defaults.libpq_bounds()}
    finally:
        backend.close()


def test_a_keyword_option_wins_over_the_url() -> None:
    backend = PostgresBackend.from_url("postgresql://app@db.invalid/app?pool_size=3", pool_size=7)
    try:
        assert backend.options.pool_size == 7
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("postgresql://db.invalid/app", {"pool_sise": 3}, "unknown postgres backend option"),
        ("postgresql://db.invalid/app?listen=maybe", {}, "true or false"),
        ("postgresql://db.invalid/app?pool_size=0", {}, "pool_size must be greater than 0"),
        ("postgresql://db.invalid/app?pool_size=many", {}, "pool_size: expected a whole number"),
        ("postgresql://db.invalid/app", {"pool_size": "many"}, "pool_size: expected a whole"),
        ("postgresql://db.invalid/app?pool_timeout=inf", {}, "pool_timeout: expected a finite"),
        ("postgresql://db.invalid/app?sslmod=disable", {}, "did you mean sslmode"),
        ("postgresql://db.invalid/app?busy_timeout=5", {}, "unknown postgres option in the"),
    ],
)
def test_bad_options_fail_at_start_up(url: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PostgresBackend.from_url(url, **options)


def test_an_engine_with_another_driver_is_refused() -> None:
    engine = sa.create_engine("sqlite://")
    try:
        with pytest.raises(ConfigError, match="psycopg 3"):
            PostgresBackend(engine)
    finally:
        engine.dispose()


def _wrapped(code: str | None, cls: type[sa.exc.DBAPIError] = sa.exc.OperationalError) -> Exception:
    orig = psycopg.errors.lookup(code)("boom") if code else psycopg.OperationalError("refused")
    return cls("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("code", "expected", "disconnect", "transient"),
    [
        ("42P01", SchemaMissing, False, False),
        ("57P01", BackendUnavailable, True, False),  # admin_shutdown (pg_terminate_backend)
        ("08006", BackendUnavailable, True, False),  # connection_failure
        ("25P03", BackendUnavailable, True, False),  # idle_in_transaction_session_timeout
        (None, BackendUnavailable, True, False),  # could not connect: no SQLSTATE
        ("3D000", BackendUnavailable, False, False),  # database does not exist
        ("28P01", BackendUnavailable, False, False),  # bad password
        ("53300", BackendUnavailable, False, True),  # too many connections
        ("40P01", BackendBusy, False, True),  # deadlock
        ("40001", BackendBusy, False, True),  # serialization failure
        ("57014", BackendBusy, False, False),  # statement timeout
        ("23505", DatabaseError, False, False),  # unique violation: a real error
    ],
)
def test_errors_are_translated_by_sqlstate(
    code: str | None, expected: type[FerroqError], disconnect: bool, transient: bool
) -> None:
    exc = _wrapped(code)
    error = translate(exc)
    assert type(error) is expected
    assert error.message
    assert is_disconnect(exc) is disconnect
    assert is_transient(exc) is transient


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("26000", 'prepared statement "_pg3_3" does not exist'),
        ("42P05", 'prepared statement "_pg3_0" already exists'),
        ("08P01", 'bind message supplies 4 parameters, but prepared statement "_pg3_1" requires 1'),
        # PgBouncer 1.21+ tracking prepared statements (max_prepared_statements) says these
        # itself, as a FATAL protocol violation.
        ("08P01", "prepared statement did not exist"),
        ("08P01", "prepared statement name is already in use"),
    ],
)
def test_a_prepared_statement_lost_to_a_pooler_says_to_add_pgbouncer_true(
    code: str, text: str
) -> None:
    exc = sa.exc.OperationalError("SELECT 1", {}, psycopg.errors.lookup(code)(text))
    error = translate(exc)
    assert type(error) is DatabaseError
    assert text in error.message
    assert "?pgbouncer=true" in error.message
    assert "\n" not in error.message
    assert not is_disconnect(exc), "retried as a lost connection, it would only fail again"


def test_other_protocol_violations_are_a_lost_connection() -> None:
    exc = _wrapped("08P01")
    error = translate(exc)
    assert type(error) is BackendUnavailable
    assert "pgbouncer" not in error.message


def test_pool_exhaustion_is_backend_busy() -> None:
    error = translate(sa.exc.TimeoutError("QueuePool limit reached"))
    assert isinstance(error, BackendBusy)
    assert "pool_size" in error.message
