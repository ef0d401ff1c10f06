"""One description of the pipeline's sections, and one walk over a playbook's expressions.

The walk is what validate's SQL check, the dialect notes, lint and leakage read; a
section whose expressions it missed would go unchecked by all of them. So the test finds
every compiled expression by itself (any CompiledExpression reachable from the compiled
playbook's fields) and asks that the walk yields each exactly once, in pipeline order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from engine.expr import CompiledExpression
from engine.functions import CONTEXTS
from engine.pipeline import PIPELINE, expression_sites
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
