"""Things only a fresh process can show: a job type found by name through the ``ferroq.jobs``
entry point of a separately installed package, and that importing ferroq_core does not
import psycopg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TINY_PACKAGE = """
import attrs

from ferroq_core import Job

RAN = []


@attrs.define
class Greet(Job):
    job_name = "tiny.greet"

    name: str

    def handle(self) -> None:
        RAN.append(("greet", self.name))


@attrs.define
class Wave(Job):
    # No job_name: its entry point's name is the stable name workers look it up by.
    times: int

    def handle(self) -> None:
        RAN.append(("wave", self.times))
"""

CHILD = """
import json, sys

from ferroq_core import EnqueueRequest
from ferroq_core.registry import default_registry
from ferroq_core.testing import drain, sqlite_queue

out = {}
with sqlite_queue(sys.argv[1]) as runtime:
    # Rows as another process (the application) would have written them.
    runtime.backend.enqueue([
        EnqueueRequest(queue="default", job_type="tiny.greet", payload='{"name": "ada"}'),
        EnqueueRequest(queue="default", job_type="tiny.wave", payload='{"times": 3}'),
    ])
    out["imported_before"] = "tinyjobs" in sys.modules
    result = drain()
    out["result"] = [result.succeeded, result.failed, [repr(e) for _, e in result.errors]]
    import tinyjobs
    out["ran"] = tinyjobs.RAN
    out["names"] = [n for n in default_registry().names() if n.startswith("tiny")]
    out["greet_module"] = default_registry().get("tiny.greet").__module__
print(json.dumps(out))
"""


def _install_tiny_package(site: Path) -> None:
    """A real installed distribution: package + .dist-info with an entry_points.txt."""
    (site / "tinyjobs").mkdir(parents=True)
    (site / "tinyjobs" / "__init__.py").write_text(TINY_PACKAGE)
    info = site / "tinyjobs-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyjobs\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ferroq.jobs]\ntiny.greet = tinyjobs:Greet\ntiny.wave = tinyjobs:Wave\n"
    )
    (info / "RECORD").write_text("")


def _python(code: str, *args: str, path: Path | None = None) -> str:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_job_type_from_another_packages_entry_point_is_found_by_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install_tiny_package(site)
    out = json.loads(_python(CHILD, str(tmp_path), path=site))
    assert out["imported_before"] is False, "entry points load lazily"
    assert out["result"] == [2, 0, []]
    assert out["ran"] == [["greet", "ada"], ["wave", 3]]
    # The entry point's name, and (for a type without job_name) the default name the class
    # registers itself under when its module is imported.
    assert out["names"] == ["tiny.greet", "tiny.wave", "tinyjobs:Wave"]
    assert out["greet_module"] == "tinyjobs"


def test_importing_ferroq_core_does_not_import_psycopg(tmp_path: Path) -> None:
    code = f"""
    import sys
    import ferroq_core, ferroq_core.testing, ferroq_core.cli
    from ferroq_core import QueueConfig, Runtime, make_plugin_manager
    pm = make_plugin_manager()  # loads the postgres plugin too: it must stay lazy
    names = sorted(str(n) for n, _ in pm.list_name_plugin())
    rt = Runtime.build("sqlite:///{tmp_path / "x.db"}", QueueConfig(connection="db"), pm)
    rt.close()
    print(names, sorted(m for m in sys.modules if m.split(".")[0] in ("psycopg", "psycopg_pool")))
    """
    out = _python(code)
    assert "'postgres'" in out, out
    assert out.strip().endswith("[]"), out
