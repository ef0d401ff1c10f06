"""The reference interpreter: simpleeval, walking the tree per call, on purpose naive.

It shares only the checked tree and the catalogue's *signatures* with the
compiler; operators are re-implemented here, and functions run their registry
entry's ``reference`` form (scanning the whole history, no indexes), so the
property test comparing the two catches a mistake in either. Only ever run on
expressions the checker accepted.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import simpleeval

from engine.durations import parse_seconds
from engine.expr.scope import Scope
from engine.functions import FUNCTIONS

if TYPE_CHECKING:
    from engine.expr import CompiledExpression


class _Record:
    """``lead.title`` through simpleeval's attribute lookup; a missing field is None."""

    def __init__(self, mapping: Mapping[str, Any] | None) -> None:
        self._mapping = mapping or {}

    def __getattr__(self, name: str) -> Any:
        return self._mapping.get(name)


class _Stage:
    """The lead's stage; compares with stage ids by their position in ``order``."""

    def __init__(self, index: int, order: list[str]) -> None:
        self.index, self.order = index, order


def _plain(v: Any, order: list[str]) -> Any:
    return v.index if isinstance(v, _Stage) else v


def _stage_pair(a: Any, b: Any) -> tuple[Any, Any]:
    order = a.order if isinstance(a, _Stage) else b.order if isinstance(b, _Stage) else None
    if order is None:
        return a, b

    def idx(v: Any) -> Any:
        if isinstance(v, _Stage):
            return v.index
        if isinstance(v, str):
            return order.index(v)
        if isinstance(v, list | tuple):
            return [idx(x) for x in v]
        return v

    return idx(a), idx(b)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _arith(fn: Callable[[Any, Any], Any], guard_zero: bool = False) -> Callable[[Any, Any], Any]:
    def op(a: Any, b: Any) -> Any:
        if a is None or b is None or not _is_num(a) or not _is_num(b):
            return None
        if guard_zero and b == 0:
            return None
        try:
            return fn(a, b)
        except OverflowError:
            return None

    return op


def _pow(a: Any, b: Any) -> Any:
    if not (_is_num(a) and _is_num(b)):
        return None
    try:
        value = float(a) ** b
    except (OverflowError, ZeroDivisionError):
        return None
    return value if isinstance(value, float) else None


def _order(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def op(a: Any, b: Any) -> bool:
        a, b = _stage_pair(a, b)
        if a is None or b is None:
            return False
        try:
            return bool(fn(a, b))
        except TypeError:
            return False

    return op


def _equal(negate: bool) -> Callable[[Any, Any], bool]:
    def op(a: Any, b: Any) -> bool:
        a, b = _stage_pair(a, b)
        return bool(a != b) if negate else bool(a == b)

    return op


def _within(a: Any, b: Any, negate: bool) -> bool:
    a, b = _stage_pair(a, b)
    if a is None or b is None:
        return False
    try:
        found = a in b
    except TypeError:
        return False
    return not found if negate else found


OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: _arith(lambda a, b: a + b),
    ast.Sub: _arith(lambda a, b: a - b),
    ast.Mult: _arith(lambda a, b: a * b),
    ast.Div: _arith(lambda a, b: a / b, True),
    ast.FloorDiv: _arith(lambda a, b: a // b, True),
    ast.Mod: _arith(lambda a, b: a % b, True),
    ast.Pow: _pow,
    ast.USub: lambda a: -a if _is_num(a) else None,
    ast.UAdd: lambda a: a if _is_num(a) else None,
    ast.Not: lambda a: not a,
    ast.Eq: _equal(False),
    ast.NotEq: _equal(True),
    ast.Is: _equal(False),
    ast.IsNot: _equal(True),
    ast.Lt: _order(lambda a, b: a < b),
    ast.LtE: _order(lambda a, b: a <= b),
    ast.Gt: _order(lambda a, b: a > b),
    ast.GtE: _order(lambda a, b: a >= b),
    ast.In: lambda a, b: _within(a, b, False),
    ast.NotIn: lambda a, b: _within(a, b, True),
}


class _Evaluator(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with boolean ``and``/``or`` (it returns operands, we return bools)."""

    def _eval_boolop(self, node: ast.BoolOp) -> bool:
        if isinstance(node.op, ast.And):
            return all(bool(self._eval(v)) for v in node.values)
        return any(bool(self._eval(v)) for v in node.values)

    def _eval_ifexp(self, node: ast.IfExp) -> Any:
        return self._eval(node.body) if bool(self._eval(node.test)) else self._eval(node.orelse)


class _Naive:
    """What the registry's ``reference`` forms read: the whole history, scanned."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.events = scope.history.events
        self.as_of = scope.history.as_of

    def window(self, within: str | None) -> list[Any]:
        if within is None:
            return list(self.events)
        start = self.as_of - timedelta(seconds=parse_seconds(within))
        return [e for e in self.events if e.at > start]


def _functions(scope: Scope) -> dict[str, Callable[..., Any]]:
    naive = _Naive(scope)
    return {name: partial(fn.reference, naive) for name, fn in FUNCTIONS.items() if fn.reference}


class _Names(dict[str, Any]):
    """A name the scope does not provide reads as None, as in the compiled path."""

    def __missing__(self, key: str) -> None:
        return None


def evaluate(expr: CompiledExpression, scope: Scope) -> Any:
    """Evaluate a checked expression with simpleeval under the same semantics."""
    order = list(expr.vocabulary.stages)
    names: dict[str, Any] = _Names(scope.values)
    for record in ("lead", "lists", "account"):
        names[record] = _Record(scope.values.get(record))
    if isinstance(names.get("stage"), int):
        names["stage"] = _Stage(names["stage"], order)
    evaluator = _Evaluator(operators=OPERATORS, functions=_functions(scope), names=names)
    evaluator.ATTR_INDEX_FALLBACK = False
    value = evaluator.eval(expr.parsed.text.strip())
    return _plain(value, order)
