"""``ferroq pause``, ``resume``, ``pauses``, ``cancel`` and the pauses in ``ferroq stats``, on
both backends, with ``--json``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.cli.conftest import claim, enqueue
from tests.cli.sample_jobs import SendEmail

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke


def _json(result: object) -> dict[str, object]:
    out = json.loads(result.output)  # type: ignore[attr-defined]
    assert isinstance(out, dict)
    return out


def test_pause_resume_and_list(ferroq: Invoke, runtime: Runtime) -> None:
    done = ferroq("pause", "emails", "--reason", "provider outage", "--json")
    assert done.exit_code == 0, done.output
    assert _json(done) == {"paused": True, "scope": "queue", "name": "emails"}
    again = ferroq("pause", "emails")
    assert again.exit_code == 0
    assert "already paused" in again.output
    assert ferroq("pause", "--type", "cli-test.send-email").exit_code == 0
    assert ferroq("pause", "--tenant", "acme").exit_code == 0
    listed = _json(ferroq("pauses", "--json"))["pauses"]
    assert [(p["scope"], p["name"], p["reason"]) for p in listed] == [  # type: ignore[union-attr, index]
        ("job_type", "cli-test.send-email", None),
        ("queue", "emails", "provider outage"),
        ("tenant", "acme", None),
    ]
    table = ferroq("pauses").output
    assert "provider outage" in table
    assert "SCOPE" in table

    enqueue(runtime, SendEmail(to="a@example.com").on_queue("emails"))
    stats = _json(ferroq("stats", "--json"))
    assert stats["queues"] == [  # type: ignore[comparison-overlap]
        {**stats["queues"][0], "queue": "emails", "paused": True}  # type: ignore[index]
    ]
    assert len(stats["pauses"]) == 3  # type: ignore[arg-type]
    assert "emails (paused)" in ferroq("stats").output

    resumed = ferroq("resume", "emails", "--json")
    assert resumed.exit_code == 0
    assert _json(resumed) == {"resumed": True, "scope": "queue", "name": "emails"}
    missing = ferroq("resume", "emails")
    assert missing.exit_code == 1
    assert "is not paused" in missing.output


def test_pause_needs_exactly_one_target(ferroq: Invoke) -> None:
    for args in ([], ["q", "--type", "t"], ["--type", "t", "--tenant", "x"]):
        result = ferroq("pause", *args)
        assert result.exit_code == 1
        assert "pause or resume one thing" in result.output
    assert ferroq("pauses", "--json").output.strip().endswith("}")
    assert _json(ferroq("pauses", "--json")) == {"pauses": []}, "nothing stored on rejection"


def test_cancel_pending_and_running_jobs(ferroq: Invoke, runtime: Runtime) -> None:
    pending = enqueue(runtime, SendEmail(to="a@example.com"))
    running = enqueue(runtime, SendEmail(to="b@example.com").on_queue("busy"))
    claim(runtime, "busy")
    result = ferroq("cancel", str(pending), str(running), "--json")
    assert result.exit_code == 0, result.output
    assert _json(result) == {"removed": [pending], "stopping": [running]}
    assert runtime.backend.get_job(pending) is None
    assert runtime.backend.get_job(running) is not None, "its worker stops it"
    nothing = ferroq("cancel", str(pending))
    assert nothing.exit_code == 1
    assert "no pending or running job matched" in nothing.output


def test_cancel_by_queue_and_type(ferroq: Invoke, runtime: Runtime) -> None:
    a = enqueue(runtime, SendEmail(to="a@example.com").on_queue("a"))
    enqueue(runtime, SendEmail(to="b@example.com").on_queue("b"))
    result = ferroq("cancel", "--queue", "a", "--type", "cli-test.send-email")
    assert result.exit_code == 0, result.output
    assert f"removed 1 pending: {a}" in result.output
    assert ferroq("cancel", "1", "--queue", "a").exit_code == 2, "ids or filters, not both"
    assert ferroq("cancel").exit_code == 2
