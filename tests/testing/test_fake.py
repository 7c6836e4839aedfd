"""fake_queue() / ferroq_fake: dispatches are captured, never stored or run."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from ferroq_core import (
    Job,
    Queue,
    SerializationError,
    dispatch,
    dispatch_later,
    dispatch_many,
    dispatch_to,
)
from ferroq_core.testing import FakeQueue, fake_queue
from ferroq_tenancy import tenant_scope
from tests.testing.jobs import Chain, Keyed, SendEmail, ran

if TYPE_CHECKING:
    from ferroq_core.runtime import Runtime


@attrs.define
class HoldsASet(Job):
    items: set[int]

    def handle(self) -> None:
        pass


def test_captures_instead_of_running_in_sync_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUEUE_CONNECTION", raising=False)
    assert not Queue.is_initialized()
    with fake_queue() as fake:
        job_id = SendEmail(to="a@example.com").dispatch()
    assert ran == [], "a faked dispatch must not run the job"
    assert int(job_id) == 1
    assert not job_id.duplicate
    (captured,) = fake.assert_dispatched(SendEmail, where={"to": "a@example.com"})
    assert captured.queue == "emails"
    assert captured.payload == '{"to":"a@example.com","subject":"Hi"}'
    assert fake.jobs(SendEmail) == [SendEmail(to="a@example.com")]


def test_captures_instead_of_storing(ferroq_sqlite_queue: Runtime, ferroq_fake: FakeQueue) -> None:
    SendEmail(to="a@example.com").dispatch()
    dispatch_many([Chain(n=1), Chain(n=2)])
    assert ferroq_sqlite_queue.backend.get_stats().total == 0
    ferroq_fake.assert_dispatched_times(Chain, 2)
    assert [d.id for d in ferroq_fake.dispatched] == [1, 2, 3]


def test_leaving_the_block_restores_real_dispatch(ferroq_sqlite_queue: Runtime) -> None:
    with fake_queue() as outer:
        with fake_queue() as inner:
            SendEmail(to="inner@example.com").dispatch()
        SendEmail(to="outer@example.com").dispatch()
    inner.assert_dispatched(SendEmail, 1, where={"to": "inner@example.com"})
    outer.assert_dispatched(SendEmail, 1, where={"to": "outer@example.com"})
    SendEmail(to="real@example.com").dispatch()
    assert ferroq_sqlite_queue.backend.get_stats().total == 1


def test_every_dispatch_form_and_option_is_recorded(ferroq_fake: FakeQueue) -> None:
    dispatch(SendEmail(to="plain"))
    dispatch_to(SendEmail(to="to"), "bulk")
    dispatch_later(SendEmail(to="later"), timedelta(minutes=5))
    SendEmail(to="chain").delay(30).on_queue("low").with_priority(-5).for_tenant(42).dispatch()
    SendEmail(to="keyed").with_idempotency_key("k1").dispatch()

    ferroq_fake.assert_dispatched(SendEmail, 5)
    ferroq_fake.assert_dispatched(SendEmail, 1, queue="bulk", where={"to": "to"})
    ferroq_fake.assert_dispatched(SendEmail, 1, delay=300, where={"to": "later"})
    ferroq_fake.assert_dispatched(SendEmail, 1, delay=timedelta(minutes=5))
    (d,) = ferroq_fake.assert_dispatched(
        SendEmail, queue="low", tenant=42, delay=30, priority=-5, where=lambda j: j.to == "chain"
    )
    assert (d.tenant_id, d.priority, d.delay, d.max_attempts) == ("42", -5, 30.0, 3)
    ferroq_fake.assert_dispatched(SendEmail, idempotency_key="k1")
    ferroq_fake.assert_dispatched(SendEmail.type_name(), 5)  # by stable name too
    ferroq_fake.assert_not_dispatched(SendEmail, queue="emails", delay=30)
    ferroq_fake.assert_not_dispatched(Chain)


def test_tenant_is_captured_by_the_tenancy_plugin(ferroq_fake: FakeQueue) -> None:
    with tenant_scope("acme"):
        SendEmail(to="a").dispatch()
    SendEmail(to="b").dispatch()
    ferroq_fake.assert_dispatched(SendEmail, 1, tenant="acme", where={"to": "a"})
    assert [d.tenant_id for d in ferroq_fake.dispatched] == ["acme", None]


def test_idempotency_keys_are_honoured(ferroq_fake: FakeQueue) -> None:
    first = Keyed(order_id=7).dispatch()
    again = Keyed(order_id=7, note="retry").dispatch()
    other = Keyed(order_id=8).dispatch()
    explicit = SendEmail(to="x").with_idempotency_key("order-7").dispatch()  # other type
    assert (int(first), first.duplicate) == (1, False)
    assert (int(again), again.duplicate) == (1, True)
    assert (int(other), other.duplicate) == (2, False)
    assert not explicit.duplicate
    ferroq_fake.assert_dispatched_times(Keyed, 2)
    assert [j.note for j in ferroq_fake.jobs(Keyed)] == ["", ""]
    ids = dispatch_many([Keyed(order_id=9), Keyed(order_id=9)])
    assert [(int(i), i.duplicate) for i in ids] == [(4, False), (4, True)]
    ferroq_fake.clear()
    assert not Keyed(order_id=7).dispatch().duplicate, "clear() frees the keys"


def test_failure_message_lists_what_was_dispatched(ferroq_fake: FakeQueue) -> None:
    SendEmail(to="a@example.com").dispatch()
    Chain(n=1).delay(10).for_tenant("t1").dispatch()
    with pytest.raises(AssertionError) as info:
        ferroq_fake.assert_dispatched(SendEmail, where={"to": "b@example.com"}, queue="emails")
    text = str(info.value)
    assert "expected SendEmail to be dispatched at least once" in text
    assert "where={'to': 'b@example.com'}, queue='emails'" in text
    assert "it was dispatched 0 times" in text
    assert "Dispatched (2):" in text
    assert "#1 SendEmail(to='a@example.com', subject='Hi') queue='emails'" in text
    assert "#2 Chain(n=1, until=3) queue='default' delay=10s tenant='t1'" in text

    with pytest.raises(AssertionError, match=r"exactly 2 times.*dispatched 1 time"):
        ferroq_fake.assert_dispatched(SendEmail, 2)
    with pytest.raises(AssertionError, match=r"not to be dispatched.*\n  #1 SendEmail"):
        ferroq_fake.assert_not_dispatched(SendEmail)
    with pytest.raises(AssertionError, match=r"expected nothing.*\n.*Dispatched \(2\)"):
        ferroq_fake.assert_nothing_dispatched()


def test_empty_fake(ferroq_fake: FakeQueue) -> None:
    ferroq_fake.assert_nothing_dispatched()
    ferroq_fake.assert_not_dispatched(SendEmail)
    with pytest.raises(AssertionError, match="Nothing was dispatched"):
        ferroq_fake.assert_dispatched(SendEmail)
    SendEmail(to="a").dispatch()
    with pytest.raises(TypeError, match="no field 'too'"):
        ferroq_fake.assert_dispatched(SendEmail, where={"too": "a"})


def test_encoding_errors_still_raise_and_a_batch_is_all_or_nothing(
    ferroq_fake: FakeQueue,
) -> None:
    with pytest.raises(SerializationError, match="items"):
        HoldsASet(items={1}).dispatch()
    with pytest.raises(SerializationError):
        dispatch_many([SendEmail(to="ok"), HoldsASet(items={1})])
    ferroq_fake.assert_nothing_dispatched()


def test_dispatches_from_other_threads_are_captured(ferroq_fake: FakeQueue) -> None:
    threads = [
        threading.Thread(target=lambda i=i: SendEmail(to=f"t{i}").dispatch()) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ferroq_fake.assert_dispatched(SendEmail, 8)
    assert sorted(d.id for d in ferroq_fake.dispatched) == list(range(1, 9))


def test_uses_the_installed_queue_configuration(ferroq_sqlite_queue: Runtime) -> None:
    config = attrs.evolve(ferroq_sqlite_queue.config, default_queue="jobs-here")
    with fake_queue(attrs.evolve(ferroq_sqlite_queue, config=config)) as fake:
        Chain(n=1).dispatch()
    fake.assert_dispatched(Chain, queue="jobs-here")
