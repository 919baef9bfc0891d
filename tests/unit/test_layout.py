"""The package's shape: every module imports, no import circles, and the product does not
depend on the development tools kept beside it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ingestion", "redshift_contract")


def module_names(package: str) -> list[str]:
    names = []
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


ALL_MODULES = [m for p in PACKAGES for m in module_names(p)]


def module_file(name: str) -> Path:
    base = REPO.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imports_of(name: str) -> set[str]:
    """Project modules `name` imports, anywhere in its body (imports inside functions count too:
    a circle through a deferred import is a circle all the same)."""
    known = set(ALL_MODULES)
    found: set[str] = set()
    for node in ast.walk(ast.parse(module_file(name).read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports a.b, or a.b.c when c is a module
            candidates = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for candidate in candidates:
            if candidate in known and candidate != name:
                found.add(candidate)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("name", ALL_MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


def test_no_import_circles():
    graph = {name: imports_of(name) for name in ALL_MODULES}
    # package __init__ files re-export their submodules: that is not a dependency back up
    for name in ALL_MODULES:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_product_does_not_import_development_tools():
    for name in module_names("ingestion"):
        tools = {m for m in imports_of(name) if m.startswith("redshift_contract")}
        source = module_file(name).read_text()
        assert not tools and "from tests" not in source and "import tests" not in source, name


def test_lower_layers_do_not_reach_up_into_the_run():
    """One direction of flow: mongo < source < load/cdc < ops < cli; the local twin and ML sit beside."""
    layers = {"ingestion.mongo": 1, "ingestion.source": 2, "ingestion.load": 3, "ingestion.cdc": 3, "ingestion.ops": 4}
    for name in module_names("ingestion"):
        own = next((rank for prefix, rank in layers.items() if name.startswith(prefix)), None)
        if own is None:
            continue
        for imported in imports_of(name):
            other = next((rank for prefix, rank in layers.items() if imported.startswith(prefix)), None)
            assert other is None or other <= own, f"{name} imports {imported}, a layer above it"
            assert not imported.startswith(("ingestion.cli", "ingestion.local", "ingestion.ml")), f"{name} imports {imported}"
