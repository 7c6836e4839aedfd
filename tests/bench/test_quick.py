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


def _bench_run(*args: str, pg_url: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m bench.run --quick -n 300 args`` on this tree (and ``pg_url``'s server)."""
    # Keep the caller's PYTHONPATH after the repo: it names the source tree under test.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if pg_url:
        env["FERROQ_BENCH_POSTGRES_URL"] = pg_url
    return subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "-n", "300", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_quick_run_appends_a_results_line(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    backends = "sqlite"
    if os.environ.get("FERROQ_TEST_POSTGRES_URL"):
        backends += ",postgres"
    proc = _bench_run(
        *("--backends", backends, "--systems", "ferroq,raw"),
        *("--workloads", "enqueue_bulk,drain_1p,latency_idle", "--results", str(results)),
        pg_url=os.environ.get("FERROQ_TEST_POSTGRES_URL"),
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


@pytest.mark.slow
@pytest.mark.postgres
def test_one_run_measures_ferroq_through_pgbouncer_beside_direct(
    tmp_path: Path, pg_server_url: str, pgbouncer_port: int
) -> None:
    # pgbouncer_port: the program is there (the run starts its own PgBouncer).
    results = tmp_path / "results.jsonl"
    proc = _bench_run(
        *("--backends", "postgres", "--systems", "ferroq,ferroq-pgbouncer"),
        *("--workloads", "drain_1p", "--results", str(results)),
        pg_url=pg_server_url,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cells = json.loads(results.read_text())["summary"]["postgres"]["drain_1p"]
    direct, pooled = cells["ferroq"]["jobs_per_s"], cells["ferroq-pgbouncer"]["jobs_per_s"]
    assert direct > 0
    assert pooled > 0
    assert f"({pooled / direct:.2f}x of direct)" in proc.stdout, proc.stdout
