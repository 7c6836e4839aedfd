"""Shared pieces of the operations commands: opening the backend, tables, JSON, times.

The ``--json`` shapes built here are a documented interface (docs/cli.md): add keys, never
rename or remove them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
import sqlalchemy as sa

from ferroq_core.errors import InvalidDispatch, JobNotFound, SchemaMissing

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.cli.base import CliContext
    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import Backend

__all__ = [
    "DB_EPILOG",
    "checked",
    "echo_json",
    "filter_options",
    "first_line",
    "fmt_age",
    "fmt_time",
    "iso",
    "job_to_dict",
    "json_option",
    "missing_sqlite_file",
    "paging_options",
    "ready_backend",
    "render_table",
    "require_jobs",
    "shown",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Under every operations command's help: where the database comes from.
DB_EPILOG = (
    "The database is the global option: ferroq --database-url URL COMMAND, "
    "or the FERROQ_DATABASE_URL environment variable."
)

#: Widest cell a human table shows before cutting it with an ellipsis.
MAX_CELL = 60


def checked(check: Callable[[Any], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that runs ``check`` on a given value: a value out of bounds is a
    usage error (exit 2), as for any invalid option value."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except InvalidDispatch as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def json_option(fn: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (shape documented in docs/cli.md)."
    )(fn)


def yes_option(fn: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(fn)


def filter_options(fn: F) -> F:
    fn = click.option("--tenant", help="Only jobs of this tenant id.")(fn)
    fn = click.option("--type", "job_type", help="Only jobs of this job type (stable name).")(fn)
    return click.option("--queue", "-q", help="Only jobs on this queue.")(fn)


def paging_options(fn: F) -> F:
    fn = click.option(
        "--offset",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Skip this many jobs (next page: add --limit to it).",
    )(fn)
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        help="Show at most this many jobs.",
    )(fn)


def missing_sqlite_file(database_url: str) -> str | None:
    """Why a SQLite URL cannot be used as it is (its file does not exist), or None."""
    try:
        url = sa.engine.make_url(database_url.strip())
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is no number
        return None  # opening the backend reports a malformed URL
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if os.path.exists(url.database):
        return None
    return (
        f"SQLite database file {url.database} does not exist: check the database URL "
        "(FERROQ_DATABASE_URL), or run `ferroq migrate` to create it"
    )


def ready_backend(obj: CliContext) -> Backend:
    """The backend of ``--database-url``, checked to hold a current ferroq schema.

    A SQLite URL naming a file that does not exist fails here instead of creating an empty
    file (a typo in the path would otherwise look like an empty queue).
    """
    backend = obj.runtime().backend  # first: a bad URL or a missing backend says so
    missing = missing_sqlite_file(obj.database_url)
    if missing:
        raise SchemaMissing(missing)
    backend.check_schema()
    return backend


def require_jobs(backend: Backend, ids: Sequence[int]) -> list[JobRow]:
    """The rows of ``ids``, or :class:`JobNotFound` naming the ids that do not exist."""
    rows = [backend.get_job(i) for i in dict.fromkeys(ids)]
    missing = [str(i) for i, row in zip(dict.fromkeys(ids), rows, strict=True) if row is None]
    if missing:
        raise JobNotFound(
            f"no job with id {', '.join(missing)}: list jobs with `ferroq jobs` "
            "(succeeded jobs are deleted)"
        )
    return [row for row in rows if row is not None]


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def first_line(text: str | None) -> str:
    if not text:
        return ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    # The year by hand: strftime's %Y does not pad years before 1000 on every platform.
    return f"{value.year:04d}-{value:%m-%d %H:%M:%S}Z"


def fmt_age(seconds: float | None) -> str:
    """A duration as ``45s``, ``12m``, ``3h05m`` or ``2d04h``; negative means in the future."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m{s % 60:02d}s"
    elif s < 86400:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        text = f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return sign + text


#: What a terminal would act on rather than show: C0 and C1 controls and DEL (escape
#: sequences start with ESC or CSI) and the bidirectional overrides that reorder what follows.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: The same, but for a block of lines: newlines and tabs stay.
_UNSAFE_IN_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, *, lines: bool = False) -> str:
    """``text`` (from the jobs table: another program, or a job's error, may have written it)
    safe to print on a terminal: every control character as a visible escape (``\\x1b``).

    :param lines: keep newlines and tabs (a payload or a traceback shown as a block).
    """
    return (_UNSAFE_IN_LINES if lines else _UNSAFE).sub(_escape, text)


def _cut(text: str, width: int = MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Echo rows under headers with aligned columns; numbers are right-aligned; control
    characters in a cell are shown escaped (:func:`shown`)."""
    cells = [[_cut(shown("-" if c is None else str(c))) for c in row] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row[i], (int, float)) for row in rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    click.echo(line(list(headers)))
    for row in cells:
        click.echo(line(row))


def job_to_dict(row: JobRow, now: datetime) -> dict[str, Any]:
    """The documented JSON form of one job."""
    return {
        "id": row.id,
        "state": row.state_at(now).value,
        "queue": row.queue,
        "job_type": row.job_type,
        "priority": row.priority,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "tenant_id": row.tenant_id,
        "limit_key": row.limit_key,
        "idempotency_key": row.idempotency_key,
        "created_at": iso(row.created_at),
        "available_at": iso(row.available_at),
        "claimed_at": iso(row.claimed_at),
        "claimed_by": row.claimed_by,
        "heartbeat_at": iso(row.heartbeat_at),
        "failed_at": iso(row.failed_at),
        "error_summary": first_line(row.error) or None,
        "error": row.error,
        "payload": row.payload,
    }
