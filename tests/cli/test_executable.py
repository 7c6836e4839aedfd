"""End to end: the installed ``ferroq`` executable in a subprocess, on SQLite and Postgres."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import new_pg_database

REPO = Path(__file__).resolve().parents[2]


def ferroq_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m ferroq_core.cli``."""
    script = Path(sys.executable).with_name("ferroq")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ferroq_core.cli"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_ferroq_executable_operates_a_queue(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'e2e.db'}"
        else:
            url = stack.enter_context(new_pg_database(request.getfixturevalue("pg_server_url")))
        operate(url)


def operate(url: str) -> None:
    """Migrate, dispatch, inspect and probe through the executable: 7 processes."""
    env = {
        **os.environ,
        "FERROQ_DATABASE_URL": url,
        "FERROQ_APP": "tests.cli.sample_jobs",
        "QUEUE_CONNECTION": "sync",  # dispatch must still write to the database
    }

    def run(*args: str, code: int = 0) -> str:
        proc = subprocess.run(
            [*ferroq_command(), *args],
            cwd=REPO,  # --import finds tests.cli.sample_jobs from the working directory
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return proc.stdout if code == 0 else proc.stderr

    run("migrate")
    job = json.loads(run("dispatch", "cli-test.send-email", "-p", '{"to": "e2e@example.com"}',
                         "--json"))  # fmt: skip
    bad = run("dispatch", "cli-test.send-email", "-p", '{"to": 5}', code=1)
    assert bad.startswith("Error: ")
    # The CLI's own field check or the strict decoder, whichever speaks first.
    assert "field 'to' must be a string" in bad or "expected str, got int @ $.to" in bad
    stats = json.loads(run("stats", "--json"))
    assert [(q["queue"], q["pending"]) for q in stats["queues"]] == [("emails", 1)]
    assert "e2e@example.com" in run("show", str(job["id"]))
    run("monitor", "--max", "0", "--queue", "emails", code=3)
    assert run("health").splitlines()[-1] == "healthy"
