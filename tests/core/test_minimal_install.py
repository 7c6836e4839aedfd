"""An environment with only ferroq-core and ferroq-sqlite installed (what
``pip install ./ferroq_core ./ferroq_sqlite`` gives): ``ferroq plugins`` lists the SQLite
backend and core's serializer and backoff, and everything works without psycopg.

Building wheels needs the network or a wheel-capable setuptools, so instead of a new venv the
test runs ``python -S`` (no site-packages) with a path holding only those two distributions
and the dependencies their metadata declares, linked from this environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pytest

try:
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover - pip always vendors it
    from pip._vendor.packaging.requirements import Requirement

if TYPE_CHECKING:
    from pathlib import Path


def _closure(names: list[str]) -> set[str]:
    """The distributions ``names`` need at run time (no extras), by normalized name."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _link_site(target: Path, dists: set[str]) -> None:
    by_dist: dict[str, list[str]] = {}
    for module, owners in metadata.packages_distributions().items():
        for owner in owners:
            by_dist.setdefault(owner.lower().replace("_", "-"), []).append(module)
    for name in dists:
        dist = metadata.distribution(name)
        info = dist._path  # type: ignore[attr-defined]  # the .dist-info directory
        (target / info.name).symlink_to(info)
        for module in by_dist.get(name, []):
            spec = importlib.util.find_spec(module)
            if spec is None:
                continue
            where = spec.submodule_search_locations
            path = where[0] if where else spec.origin
            assert path is not None
            link = target / os.path.basename(path)
            if not link.exists():
                link.symlink_to(path)


def _run_child(tmp_path: Path, dists: set[str], script: str, arg: Path) -> Any:
    """Run ``script`` (which prints JSON) with only ``dists`` importable; its output."""
    site = tmp_path / "site"
    site.mkdir()
    _link_site(site, dists)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FERROQ_"))}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(arg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


CHILD = """
import json, sys
from click.testing import CliRunner
from ferroq_core.cli import make_cli
from ferroq_core.testing import drain, sqlite_queue
import attrs
from ferroq_core import Job

result = CliRunner().invoke(make_cli(), ["plugins", "--json"])
ran = []

@attrs.define
class Hello(Job):
    name: str
    def handle(self):
        ran.append(self.name)

with sqlite_queue(sys.argv[1]):
    Hello(name="world").dispatch()
    drain()
try:
    import psycopg  # noqa: F401
    importable = True
except ImportError:
    importable = False
print(json.dumps({"exit": result.exit_code, "plugins": json.loads(result.output), "ran": ran,
                  "psycopg_importable": importable}))
"""


def test_core_and_sqlite_alone_work_without_psycopg(tmp_path: Path) -> None:
    dists = _closure(["ferroq-core", "ferroq-sqlite"])
    assert not {"psycopg", "psycopg-binary", "ferroq-postgres"} & dists, dists
    out = _run_child(tmp_path, dists, CHILD, tmp_path)
    assert out["exit"] == 0
    plugins = {p["name"]: p for p in out["plugins"]}
    assert set(plugins) == {"ferroq.builtin", "sqlite"}
    assert plugins["sqlite"]["provides"] == ["backend:sqlite"]
    assert plugins["sqlite"]["distribution"] == "ferroq-sqlite"
    assert {"serializer:json", "backoff:full-jitter"} <= set(plugins["ferroq.builtin"]["provides"])
    assert out["ran"] == ["world"]
    assert out["psycopg_importable"] is False


@pytest.mark.parametrize("dist", ["ferroq-core", "ferroq-sqlite", "ferroq-tenancy"])
def test_only_ferroq_postgres_depends_on_psycopg(dist: str) -> None:
    assert not {"psycopg", "psycopg-binary", "psycopg-pool"} & _closure([dist])


CORE_ONLY_CHILD = """
import json, os, sys
from click.testing import CliRunner
from ferroq_core.cli import make_cli

os.chdir(sys.argv[1])
out = {}
for args in (["stats"], ["jobs"], ["health"], ["migrate"], ["worker", "--stop-when-empty"]):
    result = CliRunner().invoke(make_cli(), args)
    out[" ".join(args)] = [result.exit_code, result.output]
print(json.dumps(out))
"""


def test_core_alone_says_the_sqlite_backend_is_not_installed(tmp_path: Path) -> None:
    """Without ferroq-sqlite, every command names the missing package instead of advising
    `ferroq migrate` (which cannot help)."""
    dists = _closure(["ferroq-core"])
    assert "ferroq-sqlite" not in dists
    work = tmp_path / "work"
    work.mkdir()
    for command, (code, output) in _run_child(tmp_path, dists, CORE_ONLY_CHILD, work).items():
        assert code == 1, (command, output)
        assert "pip install ferroq-sqlite" in output, (command, output)
        assert "ferroq migrate" not in output, (command, output)
        assert "Traceback" not in output, (command, output)
    assert not (work / "ferroq.sqlite3").exists()
