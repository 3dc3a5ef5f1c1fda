"""The layers hold: a core that imports nothing else of ours, backends and classifiers on the core only, no cycles.

Lazy imports (inside functions) and ``TYPE_CHECKING`` imports count: grimp reads every import statement.
See docs/ARCHITECTURE.md for the layers and the seams.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("router", "classifiers", "backends")
MAX_MODULE_LINES = 400


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def imports_of(graph: grimp.ImportGraph, prefix: str) -> list[tuple[str, str]]:
    """Every (importer, imported) pair of our modules whose importer is ``prefix`` or below it."""
    ours = set(graph.modules)
    return sorted(
        (importer, imported)
        for importer in ours if importer == prefix or importer.startswith(prefix + ".")
        for imported in graph.find_modules_directly_imported_by(importer) if imported in ours
    )


def in_core(module: str) -> bool:
    return module == "router.core" or module.startswith("router.core.")


def test_the_core_imports_nothing_else_of_ours(graph: grimp.ImportGraph) -> None:
    outside = [(a, b) for a, b in imports_of(graph, "router.core") if not in_core(b) and b != "router"]
    assert outside == []


@pytest.mark.parametrize("package", ["backends", "classifiers"])
def test_backends_and_classifiers_import_only_the_core(graph: grimp.ImportGraph, package: str) -> None:
    other = "classifiers" if package == "backends" else "backends"
    wrong = [(a, b) for a, b in imports_of(graph, package)
             if (b.startswith("router") and not in_core(b) and b != "router") or b.startswith(other)]
    assert wrong == []


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    ours = set(graph.modules)
    edges = {module: set(graph.find_modules_directly_imported_by(module)) & ours for module in ours}
    for package in PACKAGES:  # a package's __init__ importing its own submodules is how packages work, not a cycle
        edges[package] = set()
    assert strongly_connected(edges) == []


def test_no_module_over_400_lines() -> None:
    long = {str(path.relative_to(ROOT)): lines
            for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}
