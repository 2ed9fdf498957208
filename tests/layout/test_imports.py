"""The shape of simulator/: no import cycle, and the pure core stays pure (issue 13)."""

from __future__ import annotations

import ast
from pathlib import Path

SIMULATOR = Path(__file__).resolve().parents[2] / "simulator"


def _module(path: Path) -> str:
    parts = path.relative_to(SIMULATOR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """simulator.* modules ``path`` imports (at any depth in the file)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("simulator")}


def graph() -> dict[str, set[str]]:
    """module -> the simulator modules (and packages) importing it runs."""
    modules = {_module(p): p for p in SIMULATOR.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for imported in _imports(path, name):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]  # 'from pkg import name' of a value
            # Importing a.b.c runs a.b's __init__ too, unless we are inside a.b already.
            parts = imported.split(".")
            for i in range(2, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in modules and not name.startswith(target + ".") and target != name:
                    targets.add(target)
        edges[name] = targets
    return edges


def test_no_import_cycle_in_simulator() -> None:
    edges = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_edge_does_not_import_the_simulated_peers() -> None:
    edges = graph()
    offenders = {
        module: sorted(t for t in targets if t.startswith("simulator.peer"))
        for module, targets in edges.items()
        if module.startswith("simulator.edge")
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_module_of_edge_is_over_about_500_lines() -> None:
    edge = (SIMULATOR / "edge").glob("*.py")
    sizes = {p.name: len(p.read_text("utf-8").splitlines()) for p in edge}
    assert {name: n for name, n in sizes.items() if n > 520} == {}
