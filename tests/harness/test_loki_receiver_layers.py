"""The receiver's modules import each other in one direction: no cycles, and the HTTP server
is a pure transport that knows neither the API nor the receiver."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "harness" / "loki_receiver"


def _imports() -> dict[str, set[str]]:
    """module -> the package modules it imports (relative imports, TYPE_CHECKING ones too)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in node.names)
        graph[path.stem] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as a path of modules ([] when there is none)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return [*stack[stack.index(d):], d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return []


def test_no_import_cycles_in_the_receiver() -> None:
    graph = _imports()
    assert "server" in graph and "api" in graph  # the walk found the package
    assert _cycle({m: d for m, d in graph.items() if m != "__init__"}) == []


def test_the_server_is_a_pure_transport() -> None:
    assert _imports()["server"] <= {"faults", "limits", "model"}
