"""What the CLI says about a bad database URL, its options, an unreachable database and a
failed ``--import``: one line naming the problem, with advice that fits, never a password."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ferroq_core import make_plugin_manager
from ferroq_core.cli.base import CliContext
from tests.cli.conftest import make_invoke

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Invoke

SECRET = "S3CRETPW"


def _one_line_error(result: object, code: int = 1) -> str:
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    out: str = result.output  # type: ignore[attr-defined]
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


# -- item 7: URL options -----------------------------------------------------------------------


def _pg(*values: str) -> object:
    return pytest.param("postgres", *values, marks=pytest.mark.postgres)


def _migrated(request: pytest.FixtureRequest, kind: str) -> str:
    url = str(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))
    assert make_invoke(url)("migrate").exit_code == 0
    return url


@pytest.mark.parametrize(
    ("kind", "query", "expected"),
    [
        ("sqlite", "busy_timout=5", "unknown SQLite option in the database URL: busy_timout"),
        ("sqlite", "busy_timout=5", "did you mean busy_timeout?"),
        ("sqlite", "busy_timeout=abc", "busy_timeout: expected a number, got 'abc'"),
        ("sqlite", "busy_timeout=inf", "busy_timeout: expected a finite number, got 'inf'"),
        ("sqlite", "busy_timeout=nan", "busy_timeout: expected a finite number, got 'nan'"),
        ("sqlite", "busy_retries=2.5", "busy_retries: expected a whole number, got '2.5'"),
        ("sqlite", "mode=ro", "SQLite URI parameter(s) mode in the database URL need uri=true"),
        _pg("pool_sise=3", "unknown postgres option in the database URL: pool_sise"),
        _pg("pool_sise=3", "did you mean pool_size?"),
        _pg("pool_size=abc", "pool_size: expected a whole number, got 'abc'"),
        _pg("poll_interval=inf", "poll_interval: expected a finite number, got 'inf'"),
        _pg("listen=maybe", "listen: expected true or false, got 'maybe'"),
    ],
)
def test_a_bad_url_option_is_named(
    request: pytest.FixtureRequest, kind: str, query: str, expected: str
) -> None:
    url = _migrated(request, kind)
    assert expected in _one_line_error(make_invoke(_with_query(url, query))("stats"))


@pytest.mark.parametrize(
    ("kind", "query"),
    [
        ("sqlite", "timeout=3&check_same_thread=false"),
        _pg(
            "sslmode=disable&connect_timeout=5&application_name=ferroq-test&keepalives=1"
            "&keepalives_idle=30&target_session_attrs=any&options=-c%20statement_timeout%3D60000"
        ),
    ],
)
def test_the_drivers_own_parameters_still_pass(
    request: pytest.FixtureRequest, kind: str, query: str
) -> None:
    url = _migrated(request, kind)
    result = make_invoke(_with_query(url, query))("stats")
    assert result.exit_code == 0, result.output


# -- item 10: passwords --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql//u:{SECRET}@h/db",  # no colon after the scheme
        f"postgresql://u:{SECRET}@h:abc/db",  # a port that is not a number
        f"u:{SECRET}@h/db",  # no scheme at all
        f"postgresql:/u:{SECRET}/x@h/db",
        f"mysql://u:{SECRET}@h/db",  # no backend serves it
        f"mysql://u@h/db?password={SECRET}",  # libpq's password parameter
    ],
)
def test_a_url_is_never_shown_with_its_password(url: str) -> None:
    result = make_invoke(url)("stats")
    line = _one_line_error(result)
    assert SECRET not in line
    assert "***" in line


@pytest.mark.postgres
def test_a_refused_login_does_not_show_the_password(pg_server_url: str) -> None:
    url = sa.engine.make_url(pg_server_url).set(username="ferroq_nosuchuser", password=SECRET)
    result = make_invoke(url.render_as_string(hide_password=False))("stats")
    assert SECRET not in _one_line_error(result)


# -- item 6: Postgres connection errors ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"username": "ferroq_nosuchuser"}, "the login was refused"),
        ({"database": "ferroq_nosuchdb"}, "the database does not exist"),
        ({"host": "nosuchhost.invalid"}, "the host name is unknown"),
    ],
)
@pytest.mark.parametrize("command", [("stats",), ("worker", "--stop-when-empty")])
def test_a_connection_no_retry_can_make_fails_at_once_in_one_line(
    pg_server_url: str,
    change: dict[str, str],
    expected: str,
    command: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = sa.engine.make_url(pg_server_url).set(**change)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="ferroq"):
        result = make_invoke(url.render_as_string(hide_password=False))(*command)
    line = _one_line_error(result)
    assert line.startswith(f"Error: cannot connect to Postgres: {expected}")
    assert "lost the Postgres connection" not in line
    assert "reconnects" not in line
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


@pytest.mark.postgres
def test_a_server_that_is_down_is_retried_then_reported_as_never_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ferroq"):
        result = make_invoke("postgresql://postgres@127.0.0.1:1/x?reconnect_attempts=2")("stats")
    line = _one_line_error(result)
    assert line.startswith("Error: cannot connect to Postgres (")
    assert "check that the server is up" in line
    assert "lost the Postgres connection" not in line
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2, retries


# -- item 8: advice that fits --------------------------------------------------------------------


@pytest.mark.parametrize("command", [("migrate",), ("stats",), ("worker", "--stop-when-empty")])
def test_a_sqlite_file_in_a_missing_directory_says_so(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = f"sqlite:///{tmp_path / 'nosuchdir' / 'jobs.db'}"
    line = _one_line_error(make_invoke(url)(*command))
    assert "directory" in line
    assert "does not exist" in line
    assert str(tmp_path / "nosuchdir") in line
    assert "server" not in line
    assert not (tmp_path / "nosuchdir").exists()


def test_a_failed_import_shows_its_traceback_under_verbose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    (tmp_path / "brokenapp.py").write_text(
        "def load():\n    raise RuntimeError('config missing')\n\nload()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "brokenapp", raising=False)
    invoke: Invoke = make_invoke(sqlite_url)
    quiet = invoke("worker", "--import", "brokenapp", "--stop-when-empty")
    line = _one_line_error(quiet)
    assert "cannot import 'brokenapp'" in line
    assert "RuntimeError: config missing" in line
    assert "-v" in line  # says how to see the traceback

    monkeypatch.delitem(sys.modules, "brokenapp", raising=False)
    loud = invoke("-v", "worker", "--import", "brokenapp", "--stop-when-empty")
    assert loud.exit_code == 1
    assert "Traceback (most recent call last)" in loud.output
    assert "brokenapp.py" in loud.output
    assert "in load" in loud.output


@pytest.mark.postgres
def test_a_worker_never_logs_the_password(pg_url: str, tmp_path: Path) -> None:
    """The server trusts the test user, so the URL's password is accepted and ignored: a
    worker runs, with every log line on (-vv) and a supervised child, and never prints it."""
    url = sa.engine.make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)
    assert make_invoke(url)("migrate").exit_code == 0
    boot = "from ferroq_core.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERROQ_")}
    command = [sys.executable, "-c", boot, "-vv", "--database-url", url, "worker"]
    for extra in ([], ["--processes", "1"]):
        done = subprocess.run(
            [*command, "--stop-when-empty", *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "started" in done.stderr
        assert SECRET not in done.stdout + done.stderr


def test_the_cli_context_repr_hides_the_password() -> None:
    shown = repr(CliContext(pm=make_plugin_manager(), database_url=f"postgresql://u:{SECRET}@h/db"))
    assert SECRET not in shown
    assert "postgresql://u:***@h/db" in shown
