"""The architecture as the import graph shows it: data flows one way
(workloads -> hw_models -> mappers -> sim -> experiments), and no module
imports itself back, not even through an import inside a function.

Every ``import`` statement of every module counts, wherever it stands
(module level, function body, ``TYPE_CHECKING`` block).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the packages in data-flow order: a package may import only itself and
#: the packages before it
LAYERS = ("workloads", "hw_models", "mappers", "sim", "experiments")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in LAYERS:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (a ``from P import N`` of a
    submodule ``P.N`` counts as importing ``P.N``)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in LAYERS:
                    out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            if base.split(".")[0] not in LAYERS:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in modules else base)
    out.discard(name)
    return out


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    modules = _modules()
    g = nx.DiGraph()
    for name, path in modules.items():
        g.add_node(name)
        for dep in _imports(path, name, modules):
            g.add_edge(name, dep)
    return g


def test_no_import_cycles(graph: nx.DiGraph) -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_layers_import_only_the_layers_before_them(graph: nx.DiGraph) -> None:
    rank = {p: i for i, p in enumerate(LAYERS)}
    bad = [(a, b) for a, b in graph.edges if rank[b.split(".")[0]] > rank[a.split(".")[0]]]
    assert not bad, f"imports against the data flow: {bad}"


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    """The parser itself: an import inside a function is an edge."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from sim.api import evaluate\n    import mappers.registry\n")
    mods = {"sim.api": f, "mappers.registry": f, "x.m": f}
    assert _imports(f, "x.m", mods) == {"sim.api", "mappers.registry"}
