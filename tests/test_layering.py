"""The engine's modules form no import cycle, and the layers import downwards only.

Read from the source with ``ast`` (every ``import`` of ``engine.*``, also those inside
functions, which cycle at run time all the same; ``if TYPE_CHECKING:`` blocks do not).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.diagnostics import EngineError
from engine.io import InputError

ENGINE = Path(__file__).resolve().parents[1] / "engine"

#: Cycles left for a later change, each with its reason (none today: the last one,
#: io.records ↔ io.arrow_*, went when engine.io.files took over choosing the reader).
KNOWN_CYCLES: list[frozenset[str]] = []


def _modules() -> dict[str, Path]:
    found = {}
    for path in ENGINE.rglob("*.py"):
        parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> dict[str, set[str]]:
    """module → the engine modules it imports (a name from a package counts as the package)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps: set[str | None] = set()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]

        def visit(node: ast.AST, deps: set[str | None] = deps, package: str = package) -> None:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for child in node.orelse:
                    visit(child)
                return
            if isinstance(node, ast.Import):
                deps.update(known(a.name) for a in node.names if a.name.startswith("engine"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                if base.startswith("engine"):
                    for alias in node.names:
                        full = f"{base}.{alias.name}"
                        deps.add(full if full in modules else known(base))
            for child in ast.iter_child_nodes(node):
                visit(child)

        visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[module] = {d for d in deps if d is not None and d != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_engine_modules() -> None:
    graph = import_graph()
    assert "engine.kernel" in graph["engine.evaluate"]  # the walker sees function-level imports
    assert [c for c in cycles(graph) if c not in KNOWN_CYCLES] == []


@pytest.mark.parametrize("module", ["engine.kernel", "engine.decision"])
def test_the_kernel_and_the_decision_types_do_not_import_the_io_layer(module: str) -> None:
    graph = import_graph()
    below = {m for m in graph if m == module or m.startswith(f"{module}.")}
    reached, todo = set(below), list(below)
    while todo:  # everything they import, transitively
        for dep in graph[todo.pop()]:
            if dep not in reached:
                reached.add(dep)
                todo.append(dep)
    assert sorted(m for m in reached if m == "engine.io" or m.startswith("engine.io.")) == []
    assert "engine.evaluate" not in reached  # decide sits above them, not below


def test_an_input_error_is_an_engine_error_and_keeps_its_form() -> None:
    error = InputError("not a date", file="leads.csv", line=3, column="created", hint="use ISO 8601")
    assert isinstance(error, EngineError)
    assert str(error) == "leads.csv:3: column 'created': not a date (hint: use ISO 8601)"
    assert error.message == "not a date"
    assert (error.file, error.line, error.column) == ("leads.csv", 3, "created")
