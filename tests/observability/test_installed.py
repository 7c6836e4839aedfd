"""Installed (a .dist-info with the entry point, as ``pip install`` leaves), each plugin
loads itself and ``ferroq plugins`` lists it with its distribution."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.observability.conftest import installed_env
from tests.worker.conftest import BOOT, ROOT

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("dist", "name", "project"),
    [
        ("ferroq_prometheus", "prometheus", "ferroq-prometheus"),
        ("ferroq_otel", "otel", "ferroq-otel"),
    ],
)
def test_ferroq_plugins_lists_the_installed_plugin(
    tmp_path: Path, dist: str, name: str, project: str
) -> None:
    env = installed_env(tmp_path / "site", dist)
    done = subprocess.run(
        [sys.executable, "-c", BOOT, "plugins", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins[name]["distribution"] == project
