"""The import structure of the four distributions, read from their source with ``ast``.

- No import cycle, counting module-level imports and imports inside functions (an import
  under ``if TYPE_CHECKING:`` never runs, so it is not counted).
- ferroq_core's modules import only from their own layer or below: model -> plugins ->
  runtime -> API -> worker -> CLI and testing kit.
- A plugin distribution uses only public names of ``ferroq_core``.
- Inside ``ferroq_core``, an import inside a function is only of an optional dependency.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "ferroq_core",
    "ferroq_sqlite",
    "ferroq_postgres",
    "ferroq_tenancy",
    "ferroq_prometheus",
    "ferroq_otel",
)
PLUGIN_PACKAGES = PACKAGES[1:]

#: Modules ferroq_core may import inside a function: dependencies that are optional, or only
#: exist on some platforms, so a top-level import would break an install or a platform.
ALLOWED_LOCAL_IMPORTS = frozenset(
    {
        "resource",  # POSIX only (the worker's memory limit)
        "ctypes",  # the supervisor's parent-death signal, Linux only
        "pytest",  # the testing kit's pytest plugin, for users without pytest
    }
)

#: Core code never names these, not even inside a function: dependencies point inward.
NEVER_IN_CORE = frozenset(
    {
        "ferroq_sqlite",
        "ferroq_postgres",
        "ferroq_tenancy",
        "ferroq_prometheus",
        "ferroq_otel",
        "prometheus_client",
        "opentelemetry",
        "psycopg",
    }
)


@attrs.frozen
class Import:
    """One import statement's target, as seen from the importing module."""

    #: The importing module.
    source: str
    #: The imported module (a submodule when ``from pkg import sub`` names one).
    target: str
    #: The names taken from ``target`` (``from target import a, b``), empty for ``import x``.
    names: tuple[str, ...]
    #: True when the statement sits inside a function body.
    local: bool
    #: Line number, for messages.
    line: int


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        src = ROOT / package / "src"
        for path in sorted((src / package).rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, local)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(Import(module, alias.name, (), local, node.lineno))
            return
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names = tuple(alias.name for alias in node.names)
            out.append(Import(module, target, names, local, node.lineno))
            return
        inner = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return out


IMPORTS = {module: _imports(module) for module in MODULES}


def _edges(imp: Import) -> set[str]:
    """The modules of the four packages one import statement makes ``imp.source`` load.

    ``from pkg import sub`` loads the submodule ``pkg.sub`` (and ``pkg``'s ``__init__``, which
    is an edge of its own unless ``pkg`` is the importer's own package, whose ``__init__``
    is already loading); ``import a.b.c`` loads ``a.b.c``.
    """
    targets: set[str] = set()
    if imp.target not in MODULES:
        return targets
    subs = {f"{imp.target}.{name}" for name in imp.names} & MODULES.keys()
    targets |= subs
    if set(imp.names) - {s.rsplit(".", 1)[1] for s in subs} or not imp.names:
        targets.add(imp.target)
    targets.discard(imp.source)
    return targets


def _graph() -> dict[str, set[str]]:
    return {m: {t for i in IMPORTS[m] for t in _edges(i)} for m in MODULES}


def _find_cycle(graph: dict[str, set[str]], within: set[str] | None = None) -> list[str] | None:
    """One cycle of ``graph`` (among the nodes of ``within`` when given) as a closed path,
    or None."""
    nodes = set(graph) if within is None else within
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(nodes, white)
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node] & nodes):
            if color[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if color[nxt] == white:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for start in sorted(nodes):
        if color[start] == white:
            found = dfs(start)
            if found:
                return found
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [cycle for c in components if (cycle := _find_cycle(graph, c)) is not None]


def _where(cycle: list[str]) -> str:
    lines = []
    for a, b in itertools.pairwise(cycle):
        at = [i for i in IMPORTS[a] if b in _edges(i)]
        kind = "inside a function" if at and all(i.local for i in at) else "at module level"
        line = at[0].line if at else "?"
        lines.append(f"  {a} (line {line}, {kind}) -> {b}")
    return "\n".join(lines)


def test_the_graph_sees_every_package() -> None:
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    assert "ferroq_core.job" in _graph()["ferroq_core"]


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycle:\n" + "\n\n".join(_where(c) for c in cycles)


def test_finds_every_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_counts_function_local_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import a\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import b\n"
        "def f():\n"
        "    from pkg.c import thing\n"
    )
    module = "pkg.mod"
    path = tmp_path / "mod.py"
    path.write_text(source)
    MODULES[module] = path
    try:
        found = {(i.target, i.names, i.local) for i in _imports(module)}
    finally:
        del MODULES[module]
    assert found == {
        ("typing", ("TYPE_CHECKING",), False),
        ("pkg", ("a",), False),
        ("pkg.c", ("thing",), True),
    }


#: ferroq_core's layers, lowest first: a module imports only from its own layer or below. Names
#: are the first part after ``ferroq_core.`` (a subpackage belongs to one layer whole).
CORE_LAYERS = (
    (
        "model",
        {
            "_fastjson",
            "backoff",
            "bounds",
            "clock",
            "config",
            "cron",
            "control_records",
            "errors",
            "history_records",
            "fleet",
            "flowlimits",
            "jobmodel",
            "markers",
            "processes",
            "records",
            "schedule_records",
            "schedule_rules",
            "schema",
            "tables",
            "serialization",
            "unique",
        },
    ),
    ("plugins", {"builtin", "hookspecs", "plugin_records", "plugins", "registry"}),
    ("runtime", {"context", "execution", "runtime"}),
    (
        "API",
        {
            "controlling",
            "dispatch_requests",
            "dispatching",
            "job",
            "queue",
            "results",
            "schedule_specs",
            "schedules",
            "storage",
        },
    ),
    ("worker", {"worker"}),
    ("CLI and testing kit", {"cli", "testing"}),
)


def _layer(module: str) -> int:
    if module == "ferroq_core":
        return len(CORE_LAYERS)  # the package re-exports every layer
    name = module.split(".")[1]
    for rank, (_, names) in enumerate(CORE_LAYERS):
        if name in names:
            return rank
    raise AssertionError(f"{module} is in no layer: add it to CORE_LAYERS")


def test_core_modules_import_only_their_layer_or_below() -> None:
    bad = []
    for module, targets in _graph().items():
        if module.split(".")[0] != "ferroq_core":
            continue
        for target in targets:
            if target.split(".")[0] == "ferroq_core" and _layer(target) > _layer(module):
                mine, theirs = CORE_LAYERS[_layer(module)][0], CORE_LAYERS[_layer(target)][0]
                bad.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not bad, "imports up the layers:\n" + "\n".join(sorted(bad))


def test_no_module_of_a_package_imports_its_own_package_init() -> None:
    # Importing a submodule loads its parent packages first; a module that imports its own
    # package's ``__init__`` back (which re-exports the package) closes a loop this graph
    # does not draw, so it is refused here instead.
    bad = [
        f"{module} line {imp.line} imports {target}"
        for module, imports in IMPORTS.items()
        for imp in imports
        for target in _edges(imp)
        if _is_package(target)
        and module.startswith(target + ".")
        and not module.endswith(".__main__")  # run as a script, never imported by its package
    ]
    assert not bad, "a module imports the __init__ of its own package:\n" + "\n".join(bad)


def _private_uses(package: str) -> list[str]:
    bad = []
    for module, imports in IMPORTS.items():
        if not module.startswith(package + ".") and module != package:
            continue
        for imp in imports:
            if imp.target.split(".")[0] != "ferroq_core":
                continue
            private_module = any(part.startswith("_") for part in imp.target.split("."))
            private_names = [n for n in imp.names if n.startswith("_")]
            if private_module or private_names:
                what = ", ".join(private_names) or imp.target
                bad.append(f"{module} line {imp.line}: {imp.target} ({what})")
    return bad


@pytest.mark.parametrize("package", ["ferroq_tenancy", "ferroq_prometheus", "ferroq_otel"])
def test_plugins_use_only_public_core_names(package: str) -> None:
    assert _private_uses(package) == []


@pytest.mark.parametrize("package", ["ferroq_sqlite", "ferroq_postgres"])
def test_backends_use_only_public_core_names(package: str) -> None:
    assert _private_uses(package) == []


def _local_import_violations() -> list[str]:
    bad = []
    for module, imports in IMPORTS.items():
        if module.split(".")[0] != "ferroq_core":
            continue
        for imp in imports:
            top = imp.target.split(".")[0]
            if top in NEVER_IN_CORE:
                bad.append(f"{module} line {imp.line}: core imports {imp.target}")
                continue
            if not imp.local:
                continue
            if top not in ALLOWED_LOCAL_IMPORTS:
                bad.append(f"{module} line {imp.line}: {imp.target} imported inside a function")
    return bad


def test_core_imports_inside_functions_only_optional_dependencies() -> None:
    bad = _local_import_violations()
    assert not bad, (
        "move these imports to the top of the module (fixing the layering if they were there "
        "to break a cycle), or add an optional dependency to ALLOWED_LOCAL_IMPORTS:\n"
        + "\n".join(bad)
    )
