"""``ferroq dispatch`` with a unique rule: the options choose the mode, the period, the payload
fields of the key and the conflict policy; a bad rule is a one-line usage error and stores
nothing; a refused duplicate (``raise``) is a one-line error."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.cli.sample_jobs import SendEmail  # noqa: F401 - registers the job type

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke

EMAIL = "cli-test.send-email"


def test_replace_by_a_payload_field(runtime: Runtime, ferroq: Invoke) -> None:
    opts = ("--unique", "until_started", "--unique-field", "to", "--on-conflict", "replace")
    first = ferroq("dispatch", EMAIL, "-p", '{"to": "a@x", "subject": "1"}', *opts, "--json")
    assert first.exit_code == 0, first.output
    newest = ferroq("dispatch", EMAIL, "-p", '{"to": "a@x", "subject": "2"}', *opts, "--json")
    data = json.loads(newest.stdout)
    assert (data["id"], data["duplicate"], data["replaced"]) == (
        json.loads(first.stdout)["id"],
        True,
        True,
    )
    (row,) = runtime.backend.list_jobs()
    assert json.loads(row.payload) == {"to": "a@x", "subject": "2"}
    text = ferroq("dispatch", EMAIL, "-p", '{"to": "a@x", "subject": "3"}', *opts)
    assert (
        text.stdout.strip() == f"not inserted: pending job {row.id} with this key took its payload"
    )


def test_raise_for_a_period_is_a_one_line_error(runtime: Runtime, ferroq: Invoke) -> None:
    opts = ("--unique-for", "3600", "--on-conflict", "raise", "--idempotency-key", "k")
    assert ferroq("dispatch", EMAIL, "-p", '{"to": "a@x"}', *opts).exit_code == 0
    again = ferroq("dispatch", EMAIL, "-p", '{"to": "b@x"}', *opts)
    assert again.exit_code == 1
    assert "is held by job" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert len(runtime.backend.list_jobs()) == 1


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (("--unique-for", "0"), "a unique period must be positive"),
        (("--unique-for", "-5"), "a unique period must be positive"),
        (("--unique", "until_started", "--unique-for", "60"), "applies to mode for_period only"),
        (("--unique", "for_period"), "unique mode for_period needs a period"),
        (("--unique", "forever"), "'forever' is not one of"),
        (("--on-conflict", "merge"), "'merge' is not one of"),
        (("--unique-field", "nope"), "unique fields 'nope' are not fields"),
    ],
)
def test_a_bad_rule_stores_nothing(
    runtime: Runtime, ferroq: Invoke, opts: tuple[str, ...], message: str
) -> None:
    result = ferroq("dispatch", EMAIL, "-p", '{"to": "a@x"}', *opts)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert runtime.backend.list_jobs() == []


def test_show_lists_the_unique_keys(runtime: Runtime, ferroq: Invoke) -> None:
    opts = ("--unique", "while_queued", "--idempotency-key", "nightly")
    job_id = json.loads(ferroq("dispatch", EMAIL, "-p", '{"to": "a@x"}', *opts, "--json").stdout)
    shown = ferroq("show", str(job_id["id"]))
    assert "unique key:" in shown.stdout
    assert "nightly (while pending: while_queued or until_started)" in shown.stdout
    data = json.loads(ferroq("show", str(job_id["id"]), "--json").stdout)
    assert data["unique_keys"] == [{"key": "nightly", "held": "pending", "expires_at": None}]
    period = ferroq("dispatch", EMAIL, "-p", '{"to": "b@x"}', "--unique-for", "60", "--json")
    data = json.loads(ferroq("show", str(json.loads(period.stdout)["id"]), "--json").stdout)
    assert [k["held"] for k in data["unique_keys"]] == ["period"]
