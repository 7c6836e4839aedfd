"""Listings with rows ferroq never writes but another program may: a time past year 9999,
text that is not valid UTF-8, terminal escape sequences. Each row is shown, never a failure of
the whole listing, and nothing in it acts on the terminal; ``--json`` stays exact."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from ferroq_core import EnqueueRequest
from tests.cli.conftest import claim, enqueue
from tests.cli.sample_jobs import SendEmail

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke


def _sql(runtime: Runtime, statement: str, **params: object) -> None:
    """A write to the jobs table as another program would make it."""
    import sqlalchemy as sa

    engine: sa.engine.Engine = runtime.backend.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _ok(ferroq: Invoke, *args: str) -> str:
    result = ferroq(*args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_a_time_past_year_9999_is_shown_not_a_failure(
    runtime: Runtime, ferroq: Invoke, db_url: str
) -> None:
    good = enqueue(runtime, SendEmail(to="a@example.com"))
    late = enqueue(runtime, SendEmail(to="b@example.com"))
    early = enqueue(runtime, SendEmail(to="c@example.com"))
    if db_url.startswith("sqlite"):
        far, before = "9223372036854775807", "-9223372036854775807"
    else:
        far, before = "'33715-01-01 00:00:00+00'::timestamptz", "'-infinity'::timestamptz"
    _sql(runtime, f"UPDATE ferroq_jobs SET available_at = {far} WHERE id = :id", id=late)
    _sql(runtime, f"UPDATE ferroq_jobs SET created_at = {before} WHERE id = :id", id=early)

    listing = _ok(ferroq, "jobs").splitlines()[1:]
    assert sorted(int(line.split()[0]) for line in listing) == [good, late, early]
    assert "9999-12-31" in _ok(ferroq, "show", str(late))
    assert "0001-01-01" in _ok(ferroq, "show", str(early))
    shown = {j["id"]: j for j in json.loads(_ok(ferroq, "jobs", "--json"))["jobs"]}
    assert shown[late]["available_at"].startswith("9999-12-31T23:59:59")
    assert shown[late]["state"] == "delayed"
    assert _ok(ferroq, "stats")
    assert "deleted 2 jobs" in _ok(ferroq, "forget", str(late), str(early), "--any-state")
    assert [r.id for r in runtime.backend.list_jobs()] == [good]


# SQLite only: Postgres refuses such text on input (tests/worker/test_bad_rows.py).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_text_that_is_not_utf8_is_shown_not_a_failure(
    runtime: Runtime, ferroq: Invoke, db_url: str
) -> None:
    good = enqueue(runtime, SendEmail(to="a@example.com"))
    bad = enqueue(runtime, SendEmail(to="b@example.com"))
    _sql(
        runtime,
        "UPDATE ferroq_jobs SET payload = CAST(x'7b22746f223a2234313131ff227d' AS TEXT), "
        "tenant_id = CAST(x'6163ff6d65' AS TEXT) WHERE id = :id",
        id=bad,
    )
    assert f"{bad}  pending  emails" in _ok(ferroq, "jobs")
    show = _ok(ferroq, "show", str(bad))
    assert '"to": "4111\ufffd"' in show
    assert "ac\ufffdme" in show
    assert json.loads(_ok(ferroq, "show", str(bad), "--json"))["tenant_id"] == "ac\ufffdme"
    assert "emails" in _ok(ferroq, "stats")
    # A claim fails that row alone, with the reason; the good one is claimed.
    assert [r.id for r in claim(runtime, "emails")] == [good]
    failed = _ok(ferroq, "failed")
    assert f"{bad}  emails" in failed
    assert "stored payload, tenant_id is not valid UTF-8" in failed


def test_terminal_escapes_are_shown_escaped_and_json_stays_exact(
    runtime: Runtime, ferroq: Invoke
) -> None:
    job_type = "evil\x1b[2J\x1b]0;title\x07"
    tenant = "t\u202egnp.exe"
    (result,) = runtime.backend.enqueue([EnqueueRequest("mail", job_type, "{}", tenant_id=tenant)])
    # A queue name the grammar refuses at dispatch, written by another program.
    _sql(runtime, "UPDATE ferroq_jobs SET queue = :q WHERE id = :id", q="q\x9b31m", id=result.id)
    (row,) = claim(runtime, "q\x9b31m")
    assert runtime.backend.fail(row.lease, error="Boom\x1b[31m red\r\nTraceback:\n\tline\x08")

    outputs = {
        "jobs": _ok(ferroq, "jobs"),
        "failed": _ok(ferroq, "failed"),
        "show": _ok(ferroq, "show", str(result.id)),
        "stats": _ok(ferroq, "stats"),
    }
    for name, text in outputs.items():
        for char in ("\x1b", "\x07", "\x08", "\x9b", "\r", "\u202e"):
            assert char not in text, (name, char, text)
    assert "evil\\x1b[2J\\x1b]0;title\\x07" in outputs["jobs"]
    assert "q\\x9b31m" in outputs["stats"]
    assert "Boom\\x1b[31m red" in outputs["failed"]
    assert "t\\u202egnp.exe" in outputs["show"]
    assert "\tline\\x08" in outputs["show"]  # a traceback keeps its lines and tabs

    exact = json.loads(_ok(ferroq, "show", str(result.id), "--json"))
    assert (exact["job_type"], exact["tenant_id"], exact["queue"]) == (
        job_type,
        tenant,
        "q\x9b31m",
    )
    assert exact["error"] == "Boom\x1b[31m red\r\nTraceback:\n\tline\x08"
    listed = json.loads(_ok(ferroq, "failed", "--json"))["jobs"]
    assert listed[0]["job_type"] == job_type
