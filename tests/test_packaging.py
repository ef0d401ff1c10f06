"""What a plain ``pip install .`` brings must cover every import of the package's default paths."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Modules that only optional commands import, each with the extra that brings it.
OPTIONAL = {"pyspark": "spark", "sklearn": "learn", "plotly": "report"}


def _requirement_name(spec: str) -> str:
    name = spec.split(";")[0]
    for stop in "<>=!~[ ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-")


def _installed_with(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, installed or not (markers ignored)."""
    seen, todo = set(names), list(names)
    while todo:
        try:
            needs = requires(todo.pop()) or []
        except PackageNotFoundError:
            continue
        for spec in needs:
            if "extra ==" in spec:
                continue
            name = _requirement_name(spec)
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def _imported_top_level() -> dict[str, str]:
    """Top-level module → first file under engine/ importing it (absolute imports only)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_engine_imports_only_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # What a runtime dependency requires in turn is installed too (pydantic → pydantic-core).
    runtime = _installed_with({_requirement_name(spec) for spec in project["dependencies"]})
    extras = project.get("optional-dependencies", {})
    providers = packages_distributions()
    missing = []
    for module, where in sorted(_imported_top_level().items()):
        if module == "engine" or module in sys.stdlib_module_names:
            continue
        if module in OPTIONAL:
            assert OPTIONAL[module] in extras, f"{module} ({where}) needs the extra {OPTIONAL[module]}"
            continue
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not dists & runtime:
            missing.append(f"{module} (imported by {where}; provided by {sorted(dists) or '?'})")
    assert not missing, "imported by engine/ but not a runtime dependency: " + "; ".join(missing)


@pytest.mark.parametrize("module", ["duckdb"])
def test_default_backend_is_a_runtime_dependency(module: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert module in {_requirement_name(spec) for spec in project["dependencies"]}
