"""The documentation's examples run as written: the README Tour's files and commands, and the
sample errors of docs/cli.md, are taken from the pages and run in a temporary folder, so they
cannot drift from what ferroq does. Tables in the pages are not split by blank lines (which
would end a Markdown table)."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start : end if end >= 0 else len(text)]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def _env() -> dict[str, str]:
    """This environment without ferroq's settings, with this Python's ``python`` and
    ``ferroq`` first on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FERROQ_", "QUEUE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_the_readme_tour_runs(tmp_path: Path) -> None:
    tour = _section((ROOT / "README.md").read_text(encoding="utf-8"), "## Tour")
    files = _blocks(tour, "python")
    assert files, "the Tour has no Python blocks"
    for code in files:
        first = code.splitlines()[0]
        assert re.fullmatch(r"# \w+\.py", first), (
            f"a Tour block must start with its file name: {first}"
        )
        (tmp_path / first[2:]).write_text(code, encoding="utf-8")
    (commands,) = _blocks(tour, "bash")
    assert "ferroq migrate" in commands
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sent = (tmp_path / "outbox.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(sent) == sorted(
        [
            "a@example.com: Hi",
            "boss@example.com: Urgent",
            "b@example.com: Receipt",  # once: the second dispatch was a duplicate
            "b@example.com: Digest",  # a unique job
            "x@example.com: News",
            "y@example.com: News",
            "c@example.com: Order",
        ]
    )
    # The delayed email is still waiting on its queue, and `ferroq jobs` shows it.
    assert re.search(r"\bdelayed\b.*\blow\b|\blow\b.*\bdelayed\b", done.stdout), done.stdout


APP = """
import attrs
from ferroq_core import Job

@attrs.define
class SendEmail(Job):
    queue = "emails"
    job_name = "app.send-email"
    to: str

    def handle(self) -> None:
        pass
"""


def _cli_samples() -> list[tuple[str, str]]:
    """Each ``$ ferroq ...`` line of docs/cli.md followed by an ``Error:`` line."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    samples = []
    for block in _blocks(text, "console"):
        lines = block.splitlines()
        for command, output in itertools.pairwise(lines):
            if command.startswith("$ ferroq ") and output.startswith("Error:"):
                samples.append((command[2:], output))
    return samples


@pytest.mark.parametrize(("command", "expected"), _cli_samples())
def test_the_sample_errors_of_docs_cli_are_the_real_text(
    tmp_path: Path, command: str, expected: str
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "jobs.py").write_text(APP)
    env = {**_env(), "FERROQ_DATABASE_URL": "sqlite:///jobs.db"}
    never_migrated = "never migrated" in command
    if never_migrated:
        (tmp_path / "jobs.db").touch()
    else:
        subprocess.run(["ferroq", "migrate"], cwd=tmp_path, env=env, check=True, timeout=60)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == expected


def test_the_cli_page_has_sample_errors() -> None:
    assert len(_cli_samples()) >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_table_is_split_by_a_blank_line(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    for n in range(2, len(lines)):
        if lines[n].startswith("|") and not lines[n - 1].strip() and lines[n - 2].startswith("|"):
            header = n + 1 < len(lines) and lines[n + 1].startswith("|--")
            assert header, f"{page.name}:{n + 1}: a blank line splits a table"
