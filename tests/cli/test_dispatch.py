"""``ferroq dispatch``: validated against the job type; nothing inserted on bad input."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import TYPE_CHECKING

import pytest

from tests.cli.sample_jobs import DailyReport, SendEmail

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke

EMAIL = "cli-test.send-email"


def mentions(text: str, expected: str | tuple[str, ...]) -> bool:
    """``expected`` (or one of its alternatives: this command's own check, or the serializer's
    stricter refusal when it makes one first) is in ``text``."""
    return any(e in text for e in ((expected,) if isinstance(expected, str) else expected))


def only_job(runtime: Runtime) -> dict[str, object]:
    rows = runtime.backend.list_jobs()
    assert len(rows) == 1
    row = rows[0]
    return {
        "queue": row.queue,
        "state": row.state_at(runtime.backend.now()).value,
        "payload": json.loads(row.payload),
        "priority": row.priority,
        "tenant_id": row.tenant_id,
        "idempotency_key": row.idempotency_key,
    }


def test_dispatch_inserts_a_job_with_every_option(runtime: Runtime, ferroq: Invoke) -> None:
    result = ferroq(
        "dispatch", EMAIL, "--payload", '{"to": "a@example.com"}', "--queue", "urgent",
        "--delay", "600", "--tenant", "acme", "--priority", "-5", "--idempotency-key", "k1",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["duplicate"] is False
    assert data["job_type"] == EMAIL
    assert data["queue"] == "urgent"
    assert only_job(runtime) == {
        "queue": "urgent",
        "state": "delayed",
        "payload": {"to": "a@example.com", "subject": "hello"},
        "priority": -5,
        "tenant_id": "acme",
        "idempotency_key": "k1",
    }
    # The same key while the job waits: no second row, exit 0, the existing id.
    again = ferroq("dispatch", EMAIL, "-p", '{"to": "b@example.com"}', "--idempotency-key", "k1")
    assert again.exit_code == 0
    assert again.stdout.strip() == (
        f"not inserted: job {data['id']} with this idempotency key is still active"
    )
    assert len(runtime.backend.list_jobs()) == 1


def test_dispatch_uses_the_job_types_queue_and_a_decoded_payload(
    runtime: Runtime, ferroq: Invoke
) -> None:
    result = ferroq("dispatch", "cli-test.daily-report", "--payload", '{"day": "2026-04-01"}')
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dispatched job ")
    assert "on queue 'default'" in result.stdout
    job = only_job(runtime)
    assert job["state"] == "pending"
    assert job["idempotency_key"] == DailyReport(day=date(2026, 4, 1)).idempotency_key()
    assert job["payload"] == {"day": "2026-04-01", "pages": 1}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"to": ', "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("{}", "payload does not fit job type"),
        ('{"to": "a@example.com", "subjct": "typo"}', "unknown field 'subjct'"),
        ('{"to": 42}', ("field 'to' must be a string, got a number (42)", "@ $.to")),
        ('{"to": "a@example.com", "subject": null}', ("field 'subject' must be", "@ $.subject")),
    ],
)
def test_a_bad_payload_is_one_line_and_inserts_nothing(
    runtime: Runtime, ferroq: Invoke, payload: str, message: str | tuple[str, ...]
) -> None:
    result = ferroq("dispatch", EMAIL, "--payload", payload)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert mentions(lines[0], message)
    assert runtime.backend.list_jobs() == []


def test_wrong_value_types_are_refused_not_coerced(runtime: Runtime, ferroq: Invoke) -> None:
    bad = ferroq("dispatch", "cli-test.daily-report", "-p", '{"day": "2026-04-01", "pages": "3"}')
    assert bad.exit_code == 1
    assert mentions(bad.stderr, ("field 'pages' must be a number, got a string", "$.pages"))
    bad_date = ferroq("dispatch", "cli-test.daily-report", "-p", '{"day": "someday"}')
    assert bad_date.exit_code == 1
    assert "does not fit job type" in bad_date.stderr
    assert runtime.backend.list_jobs() == []


def test_unknown_type_and_unimportable_module(runtime: Runtime, ferroq: Invoke) -> None:
    unknown = ferroq("dispatch", "no-such-job")
    assert unknown.exit_code == 1
    assert "no job type is registered under 'no-such-job'" in unknown.stderr
    missing = ferroq("dispatch", EMAIL, "--import", "no_such_module_xyz", "-p", '{"to": "a"}')
    assert missing.exit_code == 1
    assert "cannot import 'no_such_module_xyz'" in missing.stderr
    assert runtime.backend.list_jobs() == []


def test_import_and_ferroq_app_load_job_types_from_the_working_directory(
    runtime: Runtime, ferroq: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"cli_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import attrs\nfrom ferroq_core import Job\n\n"
        "@attrs.define\nclass Ping(Job):\n"
        f"    job_name = '{module}.ping'\n    n: int\n\n"
        "    def handle(self) -> None:\n        pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FERROQ_APP", raising=False)
    assert ferroq("dispatch", f"{module}.ping", "-p", '{"n": 1}').exit_code == 1
    by_option = ferroq("dispatch", f"{module}.ping", "-p", '{"n": 1}', "--import", module)
    assert by_option.exit_code == 0, by_option.output
    by_env = ferroq("dispatch", f"{module}.ping", "-p", '{"n": 2}', env={"FERROQ_APP": module})
    assert by_env.exit_code == 0, by_env.output
    assert sorted(json.loads(r.payload)["n"] for r in runtime.backend.list_jobs()) == [1, 2]


def test_payload_from_a_file_and_from_stdin(
    runtime: Runtime, ferroq: Invoke, tmp_path: Path
) -> None:
    path = tmp_path / "payload.json"
    path.write_text('{"to": "file@example.com"}')
    assert ferroq("dispatch", EMAIL, "--payload", f"@{path}").exit_code == 0
    piped = ferroq("dispatch", EMAIL, "--payload", "-", input='{"to": "stdin@example.com"}')
    assert piped.exit_code == 0, piped.output
    gone = ferroq("dispatch", EMAIL, "--payload", f"@{tmp_path / 'nope.json'}")
    assert gone.exit_code == 1
    assert "cannot read payload file" in gone.stderr
    recipients = sorted(json.loads(r.payload)["to"] for r in runtime.backend.list_jobs())
    assert recipients == ["file@example.com", "stdin@example.com"]


def test_dispatch_writes_to_the_database_even_in_sync_mode(
    runtime: Runtime, ferroq: Invoke
) -> None:
    result = ferroq(
        "dispatch", EMAIL, "-p", '{"to": "a@example.com"}', env={"QUEUE_CONNECTION": "sync"}
    )
    assert result.exit_code == 0, result.output
    assert only_job(runtime)["payload"] == {"to": "a@example.com", "subject": "hello"}
    assert SendEmail.type_name() == EMAIL


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"address": {"street": "Main 1", "cuntry": "BE"}}', "unknown field 'address.cuntry'"),
        ('{"address": {"street": 1}}', ("field 'address.street' must be", "$.address.street")),
        (
            '{"address": {"street": "a"}, "items": [1, "2"]}',
            ("field 'items[1]' must be a number", "$.items[1]"),
        ),
    ],
)
def test_nested_fields_are_checked_too(
    runtime: Runtime, ferroq: Invoke, payload: str, message: str | tuple[str, ...]
) -> None:
    result = ferroq("dispatch", "cli-test.ship", "--payload", payload)
    assert result.exit_code == 1
    assert mentions(result.stderr, message)
    assert runtime.backend.list_jobs() == []
    ok = ferroq("dispatch", "cli-test.ship", "-p", '{"address": {"street": "a"}, "items": [1]}')
    assert ok.exit_code == 0, ok.output
