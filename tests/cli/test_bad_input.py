"""Bad input on the command line is one ``Error:`` line, exit 2 for a bad option value (1 for
the rest), never a traceback, and inserts nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import make_invoke
from tests.cli.sample_jobs import SendEmail

if TYPE_CHECKING:
    from pathlib import Path

    import click.testing

    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke

EMAIL = SendEmail.type_name()


def one_error_line(result: click.testing.Result, code: int) -> str:
    """The ``Error:`` line of a failed command, checked to be the only error output."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip().endswith(lines[0])
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--queue", "", "a queue name must be a non-empty string"),
        ("--queue", "a,b", "holds a comma"),
        ("--queue", " high", "leading or trailing whitespace"),
        ("--queue", "high ", "leading or trailing whitespace"),
        ("--queue", "bell\x07", "control character"),
        ("--queue", "q" * 201, "at most 200 characters"),
        ("--tenant", "", "tenant id must not be empty"),
        ("--tenant", "t" * 256, "tenant id is 256 characters"),
        ("--idempotency-key", "k" * 256, "idempotency key is 256 characters"),
        ("--delay", "nan", "got NaN"),
        ("--delay", "inf", "over the limit"),
        ("--delay", "1e12", "over the limit"),
        ("--delay", "-1", "must not be negative"),
    ],
)
def test_a_bad_option_value_is_a_usage_error_and_inserts_nothing(
    runtime: Runtime, ferroq: Invoke, option: str, value: str, message: str
) -> None:
    result = ferroq("dispatch", EMAIL, "-p", '{"to": "a@example.com"}', option, value)
    line = one_error_line(result, 2)
    assert f"Invalid value for '{option}'" in line
    assert message in line
    assert runtime.backend.list_jobs() == []


def test_a_deeply_nested_payload_is_one_line(
    runtime: Runtime, ferroq: Invoke, tmp_path: Path
) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"to": ' + "[" * 100_000 + "]" * 100_000 + "}")
    line = one_error_line(ferroq("dispatch", EMAIL, "-p", f"@{path}"), 1)
    assert "is not valid JSON" in line
    assert runtime.backend.list_jobs() == []


def test_a_lone_surrogate_in_a_payload_is_one_line(runtime: Runtime, ferroq: Invoke) -> None:
    payload = json.dumps({"to": "a@example.com", "subject": "x\ud800y"})  # "\ud800" escaped
    line = one_error_line(ferroq("dispatch", EMAIL, "-p", payload), 1)
    assert "lone surrogate" in line
    assert runtime.backend.list_jobs() == []


def test_a_non_numeric_port_is_one_line() -> None:
    for url in ("postgresql://app@db.example:abc/app", "sqlite://h:x/jobs.db"):
        line = one_error_line(make_invoke(url)("jobs"), 1)
        assert "port" in line


def test_an_infinite_busy_timeout_is_one_line(sqlite_url: str) -> None:
    make_invoke(sqlite_url)("migrate")
    line = one_error_line(make_invoke(sqlite_url + "?busy_timeout=inf")("jobs"), 1)
    assert "busy_timeout" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--concurrency", "abc"), "'abc' is not a valid integer"),
        (("--queue", "a,b\x1b[2J"), "control character"),
        (("--queue", "ok,tab\tbed"), "control character"),
    ],
)
def test_bad_worker_options_are_usage_errors(
    ferroq: Invoke, args: tuple[str, ...], message: str
) -> None:
    line = one_error_line(ferroq("worker", "--once", *args), 2)
    assert message in line
