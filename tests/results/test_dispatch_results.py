"""One dispatch's result stored, through the public API on both backends:
``.with_stored_result(ttl=None)`` on a job type without ``store_result`` (and a ttl of its own
on one with it), honoured per job by ``dispatch_many``, carried by the row to the worker that
claims it; bad ttls are refused with one line and nothing stored; ``ferroq dispatch
--store-result/--result-ttl`` and ``ferroq show``. A result with history is written by one
acknowledgement."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from click.testing import CliRunner

from ferroq_core import InvalidDispatch, Job, ResultMissing, dispatch, dispatch_many
from ferroq_core.cli import make_cli
from ferroq_core.jobmodel import DEFAULT_RESULT_TTL
from ferroq_core.testing import drain, fake_queue

if TYPE_CHECKING:
    from ferroq_core import JobId, Runtime


@attrs.define
class Echo(Job):
    job_name = "dispatch_results.echo"
    n: int

    def handle(self) -> dict[str, int]:
        return {"echo": self.n}


@attrs.define
class Stored(Job):
    job_name = "dispatch_results.stored"
    store_result = True
    result_ttl = 3600.0
    n: int

    def handle(self) -> int:
        return self.n


@attrs.define
class StoredKept(Job):
    job_name = "dispatch_results.stored_kept"
    store_result = True
    keep_history = True
    n: int

    def handle(self) -> int:
        return self.n * 10


def _kept_for(runtime: Runtime, job_id: JobId) -> float:
    state = runtime.backend.read_result(job_id)
    assert state.result is not None, state
    return (state.result.expires_at - state.result.created_at).total_seconds()


def test_one_dispatch_of_a_type_without_store_result_stores_its_result(
    runtime: Runtime,
) -> None:
    asked = Echo(n=1).with_stored_result().dispatch()
    plain = Echo(n=2).dispatch()
    timed = Echo(n=3).on_queue("default").with_stored_result(ttl=60).dispatch()
    row = runtime.backend.get_job(asked)
    assert row is not None
    assert row.result_ttl == DEFAULT_RESULT_TTL
    drain()
    assert asked.result(timeout=0) == {"echo": 1}
    assert timed.result(timeout=0) == {"echo": 3}
    with pytest.raises(ResultMissing):
        plain.result(timeout=0)
    assert abs(_kept_for(runtime, asked) - DEFAULT_RESULT_TTL) < 1.0
    assert abs(_kept_for(runtime, timed) - 60.0) < 1.0


def test_a_dispatch_ttl_overrides_the_types(runtime: Runtime) -> None:
    own = Stored(n=1).dispatch()
    shorter = Stored(n=2).with_stored_result(ttl=5).with_priority(1).dispatch()
    drain()
    assert (own.result(timeout=0), shorter.result(timeout=0)) == (1, 2)
    assert abs(_kept_for(runtime, own) - 3600.0) < 1.0
    assert abs(_kept_for(runtime, shorter) - 5.0) < 1.0


def test_dispatch_many_honours_it_per_job(runtime: Runtime) -> None:
    ids = dispatch_many(
        [
            Echo(n=0),
            Echo(n=1).with_stored_result(ttl=120),
            Echo(n=2),
            Echo(n=3).with_stored_result().for_tenant("t"),
            Echo(n=4).with_idempotency_key("k4").with_stored_result(),
        ]
    )
    ttls = [runtime.backend.get_job(i).result_ttl for i in ids]  # type: ignore[union-attr]
    assert ttls == [None, 120.0, None, DEFAULT_RESULT_TTL, DEFAULT_RESULT_TTL]
    drain()
    for i in (1, 3, 4):
        assert ids[i].result(timeout=0) == {"echo": i}
    for i in (0, 2):
        with pytest.raises(ResultMissing):
            ids[i].result(timeout=0)


@pytest.mark.parametrize(
    ("ttl", "why"),
    [
        (-1, "result ttl must be a number of seconds > 0"),
        (0, "result ttl must be a number of seconds > 0"),
        (float("nan"), "result ttl must be a number of seconds > 0"),
        (float("inf"), "over the limit"),
        (True, "result ttl must be a number of seconds, got bool"),
        ("60", "result ttl must be a number of seconds, got str"),
    ],
)
def test_a_bad_ttl_is_one_line_and_nothing_is_stored(runtime: Runtime, ttl: Any, why: str) -> None:
    with pytest.raises(InvalidDispatch, match=why) as caught:
        Echo(n=1).with_stored_result(ttl=ttl).dispatch()
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidDispatch, match=why):
        Echo(n=1).on_queue("q").with_stored_result(ttl=ttl)
    assert runtime.backend.get_stats().total == 0


def test_the_fake_queue_records_the_option(runtime: Runtime) -> None:
    with fake_queue() as fake:
        Echo(n=5).with_stored_result(ttl=9).dispatch()
    [captured] = fake.matching(Echo)
    assert captured.result_ttl == 9.0
    assert "result_ttl=9s" in captured.describe()


def test_a_result_with_history_leaves_both(runtime: Runtime) -> None:
    ids = dispatch_many([StoredKept(n=n) for n in range(5)] + [Echo(n=9).with_stored_result()])
    drain()
    assert [i.result(timeout=0) for i in ids[:5]] == [0, 10, 20, 30, 40]
    backend = runtime.backend
    assert all(backend.get_history(i) is not None for i in ids[:5])
    assert backend.get_history(ids[5]) is None
    assert ids[5].result(timeout=0) == {"echo": 9}


def _cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(make_cli(), ["--database-url", db_url, *args], catch_exceptions=False)


def test_ferroq_dispatch_store_result_and_show(runtime: Runtime, db_url: str) -> None:
    out = _cli(
        db_url,
        "dispatch",
        Echo.job_name,
        "--payload",
        '{"n": 4}',
        "--result-ttl",
        "90",
        "--json",
        "--import",
        __name__,
    )
    assert out.exit_code == 0, out.output
    job_id = json.loads(out.output)["id"]
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert row.result_ttl == 90.0
    shown = _cli(db_url, "show", str(job_id))
    assert "result:" in shown.output
    assert "stored for 90s (this dispatch)" in shown.output
    flag = _cli(db_url, "dispatch", Echo.job_name, "-p", '{"n": 5}', "--store-result", "--json")
    assert flag.exit_code == 0, flag.output
    flagged = runtime.backend.get_job(json.loads(flag.output)["id"])
    assert flagged is not None
    assert flagged.result_ttl == DEFAULT_RESULT_TTL
    for bad in ("-5", "0", "nan"):
        refused = _cli(db_url, "dispatch", Echo.job_name, "-p", '{"n": 6}', "--result-ttl", bad)
        assert refused.exit_code == 2, refused.output
        assert "result ttl must be a number of seconds > 0" in refused.output
    assert runtime.backend.get_stats().total == 2
    drain()
    assert dispatch(Echo(n=0)) is not None  # the queue still works
