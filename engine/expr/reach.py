"""Where an expression can hold: the stages it allows, and conjunctions that never hold.

Static reasoning for the lints, over-approximate on purpose: a lint may only warn about
what the expression's own comparisons prove, so anything this module cannot read (a
function call, a field, arithmetic) counts as "may be true and may be false".
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.expr.check import symbol
from engine.expr.facts import numeric_comparisons

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True, slots=True)
class _Reach:
    """The stages where the expression may be true, and where it may be false."""

    true: frozenset[int]
    false: frozenset[int]


def _stage_atom(node: ast.Compare, order: Sequence[str]) -> frozenset[int] | None:
    """The stages where ``stage OP "id"`` (or ``stage in [...]``) holds; None if not one."""
    if len(node.ops) != 1:
        return None
    left, right, sym = node.left, node.comparators[0], symbol(node.ops[0])
    if isinstance(right, ast.Name) and right.id == "stage" and sym in _FLIP:
        left, right, sym = right, left, _FLIP[sym]
    if not (isinstance(left, ast.Name) and left.id == "stage"):
        return None
    every = range(len(order))
    if sym in ("in", "not in") and isinstance(right, ast.List | ast.Tuple):
        ids = [e.value for e in right.elts if isinstance(e, ast.Constant)]
        if len(ids) != len(right.elts) or not all(i in order for i in ids):
            return None
        inside = frozenset(order.index(i) for i in ids)
        return inside if sym == "in" else frozenset(every) - inside
    if not (isinstance(right, ast.Constant) and right.value in order):
        return None
    k = order.index(right.value)
    tests = {"<": k.__gt__, "<=": k.__ge__, ">": k.__lt__, ">=": k.__le__, "==": k.__eq__,
             "!=": k.__ne__}
    test = tests.get(sym)
    return None if test is None else frozenset(i for i in every if test(i))


def _reach(node: ast.expr, order: Sequence[str]) -> _Reach:
    every = frozenset(range(len(order)))
    if isinstance(node, ast.BoolOp):
        parts = [_reach(v, order) for v in node.values]
        trues, falses = [p.true for p in parts], [p.false for p in parts]
        if isinstance(node.op, ast.And):
            return _Reach(frozenset.intersection(*trues), frozenset.union(*falses))
        return _Reach(frozenset.union(*trues), frozenset.intersection(*falses))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _reach(node.operand, order)
        return _Reach(inner.false, inner.true)
    if isinstance(node, ast.Compare):
        held = _stage_atom(node, order)
        if held is not None:
            return _Reach(held, every - held)
    return _Reach(every, every)


def stages_where_possible(tree: ast.expr, order: Sequence[str]) -> frozenset[int]:
    """Indexes of the stages (``order``) at which ``tree`` may hold, from its stage tests.

    >>> tree = ast.parse('stage >= "b" or (x and not stage == "a")', mode="eval").body
    >>> sorted(stages_where_possible(tree, ["a", "b", "c"]))
    [1, 2]
    """
    return _reach(tree, order).true


def stages_where_certain(tree: ast.expr, order: Sequence[str]) -> frozenset[int]:
    """Indexes of the stages at which ``tree`` surely holds (its stage tests alone decide).

    >>> tree = ast.parse('stage >= "b"', mode="eval").body
    >>> sorted(stages_where_certain(tree, ["a", "b", "c"]))
    [1, 2]
    """
    return frozenset(range(len(order))) - _reach(tree, order).false


def _conjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [c for v in node.values for c in _conjuncts(v)]
    return [node]


def _disjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return [d for v in node.values for d in _disjuncts(v)]
    return [node]


def _empty_bounds(atoms: list[ast.expr]) -> str | None:
    """The name whose numeric comparisons, all required together, admit no value."""
    bounds: dict[str, tuple[float, bool, float, bool]] = {}
    for atom in atoms:
        if not isinstance(atom, ast.Compare):
            continue
        for fact in numeric_comparisons(atom):
            low, low_open, high, high_open = bounds.get(fact.name, (-math.inf, False, math.inf, False))
            v = fact.value
            if fact.op in (">", ">=", "==") and (v > low or (v == low and fact.op == ">")):
                low, low_open = v, fact.op == ">"
            if fact.op in ("<", "<=", "==") and (v < high or (v == high and fact.op == "<")):
                high, high_open = v, fact.op == "<"
            bounds[fact.name] = (low, low_open, high, high_open)
            if low > high or (low == high and (low_open or high_open)):
                return fact.name
    return None


def never_holds(tree: ast.expr) -> str | None:
    """The name that makes every alternative of ``tree`` impossible, if there is one.

    Each ``or`` alternative is read as a conjunction of comparisons with numbers;
    ``fit >= 50 and fit < 20`` never holds. Only the top-level ``and``/``or`` shape is
    read, so ``not`` and nested mixtures are left alone (no false alarms).

    >>> never_holds(ast.parse("fit >= 50 and fit < 20", mode="eval").body)
    'fit'
    >>> never_holds(ast.parse("fit >= 50 and fit < 20 or x", mode="eval").body) is None
    True
    """
    names = [_empty_bounds(_conjuncts(d)) for d in _disjuncts(tree)]
    return names[0] if names and all(n is not None for n in names) else None
