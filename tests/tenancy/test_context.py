"""current_tenant() and tenant_scope(): nesting, id types, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ferroq_tenancy import current_tenant, tenant_scope


def test_no_tenant_outside_any_scope() -> None:
    assert current_tenant() is None


def test_scopes_nest_and_restore() -> None:
    with tenant_scope("acme") as outer:
        assert outer == current_tenant() == "acme"
        with tenant_scope(42) as inner:
            assert inner == current_tenant() == "42"
            with tenant_scope(None):
                assert current_tenant() is None
            assert current_tenant() == "42"
        assert current_tenant() == "acme"
    assert current_tenant() is None


def test_scope_restores_after_an_error() -> None:
    with pytest.raises(RuntimeError), tenant_scope("acme"):
        raise RuntimeError("boom")
    assert current_tenant() is None


@pytest.mark.parametrize("bad", [True, 1.5, b"acme", object()])
def test_only_str_and_int_ids(bad: object) -> None:
    with pytest.raises(TypeError, match="str or an int"), tenant_scope(bad):  # type: ignore[arg-type]
        pass


def test_empty_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"), tenant_scope(""):
        pass


def test_threads_each_see_their_own_tenant() -> None:
    # Both threads hold a scope at the same time (the barrier), each must only see its own;
    # a new thread does not inherit its creator's tenant.
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, list[str | None]] = {}

    def body(name: str) -> None:
        got = [current_tenant()]
        with tenant_scope(name):
            barrier.wait()
            got.append(current_tenant())
            barrier.wait()
        got.append(current_tenant())
        seen[name] = got

    with tenant_scope("creator"):
        threads = [threading.Thread(target=body, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert current_tenant() == "creator"
    assert seen == {"a": [None, "a", None], "b": [None, "b", None]}


def test_asyncio_tasks_each_see_their_own_tenant() -> None:
    async def worker(i: int) -> list[str | None]:
        out = []
        with tenant_scope(i):
            for _ in range(5):
                await asyncio.sleep(0)  # let every other task change its own scope
                out.append(current_tenant())
        out.append(current_tenant())
        return out

    async def main() -> tuple[list[list[str | None]], str | None, str | None]:
        results = await asyncio.gather(*(worker(i) for i in range(20)))
        with tenant_scope("parent"):
            inherited = await asyncio.create_task(_current())
        return list(results), inherited, current_tenant()

    results, inherited, after = asyncio.run(main())
    assert results == [[str(i)] * 5 + [None] for i in range(20)]
    assert inherited == "parent"
    assert after is None


async def _current() -> str | None:
    return current_tenant()
