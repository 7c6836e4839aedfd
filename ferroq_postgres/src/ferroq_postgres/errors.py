"""psycopg errors as ferroq errors, and which of them a retry can cure.

Decisions rest on SQLSTATE codes (stable across server versions and locales), with two
exceptions. A failed connection attempt carries no SQLSTATE (libpq keeps the server's code to
itself), so :func:`connect_refusal` reads libpq's message to tell a refusal no retry can change
(a login refused, a database or host that does not exist) from an outage worth retrying. And a
protocol violation (08P01) is a prepared statement lost to a pooler only when its message says
so (:func:`_is_pooled_statement`): the code alone also covers a broken connection.
"""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from ferroq_core.errors import (
    BackendBusy,
    BackendUnavailable,
    DatabaseError,
    FerroqError,
    SchemaMissing,
)

__all__ = [
    "connect_refusal",
    "first_line",
    "is_cancelled",
    "is_disconnect",
    "is_transient",
    "one_line",
    "translate",
    "translate_connect",
]

# Class 08 (connection exception), the shutdown codes of class 57 and the session ended by a
# server timeout while idle in a transaction (25P03; 25P04, transaction_timeout, from
# PostgreSQL 17): the session is gone, and an open transaction was rolled back.
_GONE_CLASSES = ("08",)
_IDLE_KILLED = frozenset({"25P03", "25P04"})
_GONE = frozenset({"57P01", "57P02", "57P03", "57P05"}) | _IDLE_KILLED
# The transaction was rolled back on purpose by the server; running it again is safe.
_CONFLICT = frozenset({"40001", "40P01", "55P03"})
_TOO_MANY = frozenset({"53300", "53400"})
# A prepared statement missing, or taken by another client: a pooler in transaction mode.
_POOLED_STATEMENT = frozenset({"26000", "42P05"})
# The same seen as a protocol violation: a Bind that reached another client's statement of
# the same name ("bind message supplies 0 parameters, but prepared statement "_pg3_0"
# requires 1"), or PgBouncer 1.21+ refusing a statement it does not track ("prepared statement
# did not exist"). The server's English text, as libpq passes it on: locale-dependent.
_PROTOCOL_VIOLATION = "08P01"
_POOLED_STATEMENT_TEXT = "prepared statement"


# What a refused connection attempt says (libpq's and the server's English texts, matched
# without case), what it means, and what to do. Any other failure to connect (refused by the
# host, timed out, the server starting up or out of connection slots) may pass: it is retried.
_REFUSALS = (
    (
        ("authentication failed", "no pg_hba.conf entry", "no password supplied", 'role "'),
        "the login was refused",
        "check the user and password in the URL",
    ),
    (
        ('database "',),
        "the database does not exist",
        "create it, or fix the database name in the URL",
    ),
    (
        ("failed to resolve host", "could not translate host name"),
        "the host name is unknown",
        "check the host name in the URL",
    ),
    (
        ("invalid ",),
        "a connection parameter is invalid",
        "fix it in the URL",
    ),
)


def first_line(exc: BaseException) -> str:
    """The first line of the driver's message (a log line's detail), or the error's type."""
    text = str(_orig(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(text: str) -> str:
    """A driver message on one line (libpq adds hints on lines of their own)."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def _orig(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc


def _sqlstate(exc: BaseException) -> str:
    orig = _orig(exc)
    return (getattr(orig, "sqlstate", None) or "") if isinstance(orig, psycopg.Error) else ""


def is_disconnect(exc: BaseException) -> bool:
    """True when the connection itself broke (terminated backend, restart, network). Not a
    prepared statement lost to a pooler, though its protocol violation is of the connection
    class: no retry cures it, and the error says what does (:func:`translate`)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = _orig(exc)
    if not isinstance(orig, psycopg.Error) or _is_pooled_statement(orig):
        return False
    code = _sqlstate(orig)
    if code in _GONE or code.startswith(_GONE_CLASSES):
        return True
    # A connection that failed or closed under us carries no SQLSTATE at all.
    return isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError)) and not code


def _is_pooled_statement(exc: BaseException) -> bool:
    """True when the error is a server-side prepared statement that was missing, already
    taken, or another client's: what a pooler in transaction mode does to them."""
    code = _sqlstate(exc)
    if code in _POOLED_STATEMENT:
        return True
    return code == _PROTOCOL_VIOLATION and _POOLED_STATEMENT_TEXT in str(_orig(exc)).lower()


def is_transient(exc: BaseException) -> bool:
    """True when the server rolled the transaction back and running it again is safe."""
    return _sqlstate(exc) in _CONFLICT or _sqlstate(exc) in _TOO_MANY


def connect_refusal(exc: BaseException) -> tuple[str, str] | None:
    """For a failed connection attempt that no retry can cure: what happened and what to do;
    None when a retry may succeed."""
    text = str(_orig(exc)).lower()
    for needles, what, advice in _REFUSALS:
        if any(needle in text for needle in needles):
            return what, advice
    return None


def translate_connect(exc: BaseException) -> FerroqError:
    """The :class:`FerroqError` for a connection that could not be made."""
    orig = _orig(exc)
    detail = f"{type(orig).__name__}: {one_line(str(orig))}"
    refusal = connect_refusal(exc)
    if refusal is not None:
        what, advice = refusal
        return BackendUnavailable(f"cannot connect to Postgres: {what} ({detail}): {advice}")
    if _sqlstate(exc) in _TOO_MANY or isinstance(exc, sa.exc.TimeoutError):
        return translate(exc)
    return BackendUnavailable(
        f"cannot connect to Postgres ({detail}): check that the server is up and the host "
        "and port in the URL"
    )


def is_cancelled(exc: BaseException | None) -> bool:
    """True when the server cancelled the statement (``statement_timeout``, a pooler's query
    timeout, ``pg_cancel_backend``): it was rolled back, the session lives on."""
    return exc is not None and _sqlstate(exc) == "57014"


def translate(exc: BaseException) -> FerroqError:
    """The :class:`FerroqError` for a driver or pool error."""
    if isinstance(exc, sa.exc.TimeoutError):
        return BackendBusy(
            f"no pooled Postgres connection became free in time ({exc}): raise pool_size / "
            "max_overflow, or lower the worker's concurrency"
        )
    orig = _orig(exc)
    code = _sqlstate(exc)
    detail = f"{type(orig).__name__}: {one_line(str(orig))}"
    if code == "42P01":  # undefined_table
        return SchemaMissing()
    if code == "3D000":  # invalid_catalog_name
        return BackendUnavailable(f"the Postgres database does not exist ({detail}): create it")
    if code.startswith("28"):  # invalid authorization
        return BackendUnavailable(
            f"Postgres refused the login ({detail}): check the user and password in the URL"
        )
    if code in _TOO_MANY:
        return BackendUnavailable(
            f"Postgres has no connection slots left ({detail}): lower pool_size / max_overflow "
            "or raise the server's max_connections"
        )
    if code in _IDLE_KILLED:
        return BackendUnavailable(
            f"the server ended the session idle in a transaction ({detail}): the transaction "
            "was rolled back; keep transactions that dispatch shorter than the server's "
            "idle_in_transaction_session_timeout (or transaction_timeout) and run them again"
        )
    if _is_pooled_statement(exc):  # before is_disconnect: 08P01 is of the connection class
        return DatabaseError(
            f"a prepared statement did not match the server session ({detail}): behind "
            "PgBouncer (or another pooler) in transaction mode, add ?pgbouncer=true to the URL "
            "(docs/postgres.md, 'Behind PgBouncer')"
        )
    if is_disconnect(exc):
        return BackendUnavailable(
            f"lost the Postgres connection ({detail}): check that the server is up; "
            "ferroq reconnects on the next operation"
        )
    if code in _CONFLICT:
        return BackendBusy(f"Postgres aborted the transaction ({detail}); it is safe to retry")
    if code == "57014":  # query_canceled, e.g. statement_timeout
        return BackendBusy(f"the statement was cancelled ({detail}): check statement_timeout")
    if code == "42501":  # insufficient_privilege
        return DatabaseError(
            f"permission denied ({detail}): grant the ferroq user rights on ferroq_jobs"
        )
    return DatabaseError(f"Postgres error ({detail})")
