"""The benchmark driver still works: ``python -m bench.run --quick`` in a subprocess appends one
results line with a median for every workload it ran (timings themselves are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_appends_a_results_line(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    backends = "sqlite"
    if os.environ.get("FERROQ_TEST_POSTGRES_URL"):
        backends += ",postgres"
    # Keep the caller's PYTHONPATH after the repo: it names the source tree under test.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if os.environ.get("FERROQ_TEST_POSTGRES_URL"):
        env["FERROQ_BENCH_POSTGRES_URL"] = os.environ["FERROQ_TEST_POSTGRES_URL"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "-n",
            "300",
            "--backends",
            backends,
            "--systems",
            "ferroq,raw",
            "--workloads",
            "enqueue_bulk,drain_1p,latency_idle",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = results.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["quick"] is True
    for backend in backends.split(","):
        cells = record["summary"][backend]
        assert cells["enqueue_bulk"]["ferroq"]["jobs_per_s"] > 0
        assert cells["drain_1p"]["ferroq"]["jobs_per_s"] > 0
        assert cells["drain_1p"]["raw"]["jobs_per_s"] > 0
        assert cells["latency_idle"]["ferroq"]["p50_ms"] > 0
    assert "| backend | workload |" in proc.stdout


def test_a_missing_peer_is_reported_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import child, systems
    from bench.common import parse_result

    monkeypatch.setitem(
        systems.SYSTEMS, "ghost", ("bench.systems.no_such_peer", ("sqlite",), "ghost-queue")
    )
    child.main(["ghost", "sqlite", "sqlite:///unused.db", "drain", json.dumps({"batch": 10})])
    result = parse_result(capsys.readouterr().out)
    assert result is not None
    assert result["status"] == "not installed"
    assert "ghost-queue" in result["error"]
