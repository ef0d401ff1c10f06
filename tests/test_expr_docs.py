"""The ``>>>`` examples in the expression modules' docstrings run and hold."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import engine.expr
import engine.expr.reach
import engine.functions
import engine.history

MODULES = [engine.expr, engine.expr.reach, engine.functions, engine.history]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if module is engine.expr:
        assert result.attempted >= 5
