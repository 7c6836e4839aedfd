"""Every hookspec is documented: summary, a ``:param:`` per argument, the return contract and
an example. This test fails when a hook is added or changed without its docs."""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core import hookspecs, make_plugin_manager

if TYPE_CHECKING:
    from collections.abc import Callable


def _specs() -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    out = []
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        opts = getattr(fn, "ferroq_spec", None)
        if opts is not None:
            out.append((name, fn, opts))
    return out


SPECS = _specs()


def test_the_hookspecs_are_found() -> None:
    names = {name for name, _, _ in SPECS}
    assert {"ferroq_backends", "ferroq_serializers", "ferroq_job_failed"} <= names
    assert len(names) >= 12
    pm = make_plugin_manager(load_entrypoints=False)
    assert names <= {n for n in dir(pm.hook) if not n.startswith("_")}


@pytest.mark.parametrize(("name", "fn", "opts"), SPECS, ids=[s[0] for s in SPECS])
def test_hookspec_is_documented(name: str, fn: Callable[..., Any], opts: dict[str, Any]) -> None:
    assert name.startswith("ferroq_"), "every hook name starts with ferroq_"
    doc = inspect.getdoc(fn)
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.strip().endswith("."), f"{name}: the first line must be a one-line summary"
    assert len(summary) <= 100

    params = list(inspect.signature(fn).parameters)
    documented = re.findall(r"^:param (\w+):", doc, flags=re.MULTILINE)
    for param in params:
        assert param in documented, f"{name}: no ':param {param}:' line"
    assert set(documented) <= set(params), f"{name}: documents parameters it does not take"
    for param in params:
        text = re.search(rf"^:param {param}:(.*)$", doc, flags=re.MULTILINE)
        assert text is not None
        assert text.group(1).strip(), f"{name}: ':param {param}:' says nothing"

    returns = inspect.signature(fn).return_annotation
    if returns not in ("None", None):
        assert re.search(r"^:return: \S", doc, flags=re.MULTILINE), f"{name}: no ':return:' line"
    if opts.get("firstresult"):
        assert "first non-None result" in doc, f"{name}: firstresult hooks must say so"

    assert "Example::" in doc, f"{name}: no example"
    example = doc.split("Example::", 1)[1]
    assert "@hookimpl" in example, f"{name}: the example must show the hookimpl"
    assert f"def {name}(" in example, f"{name}: the example must implement this hook"
