"""One description of the pipeline's sections, and one walk over a playbook's expressions.

The walk is what validate's SQL check, the dialect notes, lint and leakage read; a
section whose expressions it missed would go unchecked by all of them. So the test finds
every compiled expression by itself (any CompiledExpression reachable from the compiled
playbook's fields) and asks that the walk yields each exactly once, in pipeline order.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import pipeline
from engine.expr import CompiledExpression
from engine.functions import CONTEXTS
from engine.pipeline import (
    DECISION_ORDER,
    HANDOFFS,
    PIPELINE,
    RECYCLE,
    STAGES,
    MissingSection,
    Section,
    expression_sites,
    walk,
)
from engine.validate import load_playbook

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = sorted([*(ROOT / "playbooks").glob("*.yaml"), *(ROOT / "tests" / "sql_cases").glob("*.yaml")])


def _reachable(value: Any, found: list[CompiledExpression]) -> None:
    if isinstance(value, CompiledExpression):
        found.append(value)
    elif isinstance(value, tuple | list):
        for item in value:
            _reachable(item, found)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.name != "playbook":
                _reachable(getattr(value, f.name), found)


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.name)
def test_the_walk_yields_every_expression_once_in_pipeline_order(path: Path) -> None:
    cp = load_playbook(path).compiled
    assert cp is not None
    found: list[CompiledExpression] = []
    _reachable(cp, found)
    sites = list(expression_sites(cp))
    assert sorted(map(id, (s.expr for s in sites))) == sorted(map(id, found))
    order = [CONTEXTS.index(s.section.context) for s in sites]
    assert order == sorted(order)


def test_the_sections_are_the_checkers_contexts() -> None:
    assert tuple(s.context for s in PIPELINE) == CONTEXTS
    assert len({s.key for s in PIPELINE}) == len(PIPELINE)


def test_every_writer_reads_the_one_row() -> None:
    """The row is declared once (engine.decision.ROW): decide's row, its CSV cells, the batch
    writers' header and Parquet types and the SQL query's SELECT all follow it."""
    from datetime import UTC, datetime

    from engine.batch import DECISION_COLUMNS, DECISION_TYPES
    from engine.decision import ROW, ROW_COLUMNS
    from engine.evaluate import decide
    from engine.sql.query import build_query

    cp = load_playbook(ROOT / "playbooks" / "smb-saas.yaml").compiled
    assert cp is not None
    decision = decide(cp, {}, [], datetime(2026, 11, 1, tzinfo=UTC))
    assert tuple(decision.to_row()) == ROW_COLUMNS == DECISION_COLUMNS
    assert len(decision.to_cells()) == len(ROW)
    assert list(DECISION_TYPES.items()) == [(c.name, c.type) for c in ROW]
    assert build_query(cp).tree.named_selects == list(ROW_COLUMNS)


# -- every reader takes the sections from engine.pipeline ------------------------------------

ENGINE = ROOT / "engine"

#: The modules that once named the sections by hand; each now reads engine.pipeline.
READERS = ("compile.py", "evaluate.py", "kernel/source.py", "sql/query.py", "testing/coverage.py")

#: (file, word) where a section key means something else, with what it means there.
OTHER_MEANINGS = {
    ("kernel/source.py", "personas"),  # the generated function's local holding the matched ids
    ("sql/query.py", "stages"),  # the CTE deciding exclusions and the stage together
}


def _spelled_keys(relative: str) -> set[str]:
    """Section keys spelled in ``relative``: a string equal to one, or starting with one and a
    dot (an f-string's ``"personas."``), or a tuple starting with its path (``("scoring",
    "fit", ...)``). A subscript's key is a model's or record's field, not the section."""
    tree = ast.parse((ENGINE / relative).read_text(encoding="utf-8"))
    fields = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in fields:
            found |= {s.key for s in PIPELINE
                      if node.value == s.key or node.value.startswith(f"{s.key}.")}
        if isinstance(node, ast.Tuple):
            words = tuple(e.value for e in node.elts if isinstance(e, ast.Constant))
            found |= {s.key for s in PIPELINE if len(s.path) > 1 and words[:len(s.path)] == s.path}
    return {key for key in found if (relative, key) not in OTHER_MEANINGS}


@pytest.mark.parametrize("relative", READERS)
def test_the_readers_take_the_sections_from_the_pipeline(relative: str) -> None:
    tree = ast.parse((ENGINE / relative).read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.ImportFrom) and n.module == "engine.pipeline" for n in ast.walk(tree))
    assert _spelled_keys(relative) == set()


def test_the_key_check_finds_a_key_spelled_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above would see the forms the modules used to have."""
    (tmp_path / "m.py").write_text('a = ("personas", pid, "when")\nb = f"exclusions.{i}"\n'
                                   'c = ("scoring", "fit", "rules", 0)\nd = row["stages"]\n')
    monkeypatch.setattr(sys.modules[__name__], "ENGINE", tmp_path)
    assert _spelled_keys("m.py") == {"personas", "exclusions", "scoring.fit"}


def test_other_meanings_are_still_there() -> None:
    """An exception that no longer applies is removed, not kept as a loophole."""
    for relative, word in OTHER_MEANINGS:
        tree = ast.parse((ENGINE / relative).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Constant) and n.value == word for n in ast.walk(tree)), relative


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.name)
def test_each_sections_rules_are_written_under_its_key(path: Path) -> None:
    """Compile builds a rule's path from its section's key, and ``Section.rules`` gives
    every rule of the section (none twice, every compiled rule of the playbook)."""
    from engine.compile import FitRule, Rule

    cp = load_playbook(path).compiled
    assert cp is not None
    rules = [(section, rule) for section in PIPELINE for rule in section.rules(cp)]
    assert all(rule.path[:len(section.path)] == section.path for section, rule in rules)
    found: list[object] = []

    def reach(value: Any) -> None:
        if isinstance(value, Rule | FitRule):
            found.append(value)
        elif isinstance(value, tuple | list):
            for item in value:
                reach(item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                if f.name != "playbook":
                    reach(getattr(value, f.name))

    reach(cp)
    assert sorted(id(rule) for _, rule in rules) == sorted(map(id, found))


# -- every backend has an emitter for every section ------------------------------------------


def _backends() -> dict[str, dict[Any, Any]]:
    from engine.kernel import source
    from engine.sql import query

    return {"kernel": source._SECTIONS, "sql": query._SECTIONS}


@pytest.mark.parametrize("backend", ["kernel", "sql"])
def test_each_backend_has_an_emitter_per_section(backend: str) -> None:
    emitters = _backends()[backend]
    assert set(emitters) == set(PIPELINE)
    assert [s for s, _ in walk(emitters, backend)] == list(DECISION_ORDER)


def test_the_decision_order_is_the_pipeline_with_recycling_before_handoffs() -> None:
    assert sorted(DECISION_ORDER, key=PIPELINE.index) == list(PIPELINE)
    moved = [s for s, p in zip(DECISION_ORDER, PIPELINE, strict=True) if s is not p]
    assert moved == [RECYCLE, HANDOFFS]


def test_a_section_without_an_emitter_stops_each_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """A section added to the pipeline and not to a backend stops that backend, naming the
    section, before any rule is emitted; never a silent fallback (the kernel's fallback
    to decide catches NoKernel only)."""
    from engine.kernel import Kernel
    from engine.sql.query import build_query

    cp = load_playbook(ROOT / "playbooks" / "smb-saas.yaml").compiled
    assert cp is not None
    extra = Section("outcome", "outcomes", "outcome", "outcomes", lambda cp: ())  # type: ignore[arg-type]
    monkeypatch.setattr(pipeline, "PIPELINE", (*PIPELINE, extra))
    monkeypatch.setattr(pipeline, "DECISION_ORDER", (*DECISION_ORDER, extra))
    with pytest.raises(MissingSection, match=r"batch kernel.*no emitter for section\(s\) outcome"):
        Kernel(cp)
    with pytest.raises(MissingSection, match=r"SQL query.*no emitter for section\(s\) outcome"):
        build_query(cp)


def test_an_emitter_for_no_section_stops_the_walk() -> None:
    stray = Section("outcome", "outcomes", "outcome", "outcomes", lambda cp: ())  # type: ignore[arg-type]
    with pytest.raises(MissingSection, match="an emitter for no section: outcome"):
        walk({**dict.fromkeys(PIPELINE), stray: None}, "a backend")
    with pytest.raises(MissingSection, match=r"a backend: no emitter for section\(s\) stage$"):
        walk({s: None for s in PIPELINE if s is not STAGES}, "a backend")
