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
