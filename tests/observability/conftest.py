"""Helpers for the observability plugins' tests: the plugins installed as a worker
subprocess sees them (a .dist-info with their entry points), free ports and scrapes."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import socket
import urllib.request
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    import pluggy

#: distribution -> (entry-point name, plugin module)
PLUGINS = {
    "ferroq_prometheus": ("prometheus", "ferroq_prometheus.plugin"),
    "ferroq_otel": ("otel", "ferroq_otel.plugin"),
}


def installed_env(site: Path, *dists: str) -> dict[str, str]:
    """The environment of a process in which ``dists`` are installed: a .dist-info each
    (what ``pip install`` leaves for entry points) on a directory put first on the path,
    unless the dev set-up installed it already (a second one would load it twice)."""
    site.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        if is_installed(dist):
            continue
        name, module = PLUGINS[dist]
        info = site / f"{dist}-0.1.0.dist-info"
        info.mkdir(exist_ok=True)
        project = dist.replace("_", "-")
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[ferroq]\n{name} = {module}\n")
    path = os.pathsep.join(p for p in [str(site), os.environ.get("PYTHONPATH", "")] if p)
    return dict(os.environ, PYTHONPATH=path)


def is_installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def with_plugin(pm: pluggy.PluginManager, dist: str) -> pluggy.PluginManager:
    """``pm`` with ``dist``'s plugin registered (entry points may have registered it)."""
    name, module = PLUGINS[dist]
    if pm.get_plugin(name) is None:
        pm.register(importlib.import_module(module), name=name)
    return pm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """Every sample of the endpoint, summed over labels by sample name (``name{a="b"}``
    entries too, for the labelled ones)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            if labels:
                key = f"{sample.name}{{{labels}}}"
                out[key] = out.get(key, 0.0) + sample.value
    return out


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.log"
