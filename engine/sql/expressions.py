"""A checked expression AST → a sqlglot expression with the language's NULL semantics.

The Python interpreters (``engine.expr.compile``) are the reference; every operator
here mirrors one there. Booleans are made two-valued at the points the language
tests them (``and``/``or``/``not``, ``if``, rule tests), comparisons are
NULL-safe or NULL-false exactly as ``engine.expr`` documents. A function call is
its registry entry's ``sql`` form (:mod:`engine.functions`); per-lead aggregates
(``sql_aggregate``) are delegated to the query builder, which computes them once
per lead in an aggregate CTE.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from engine.diagnostics import EngineError
from engine.functions import AGGREGATES, FUNCTIONS, Vocabulary

#: Functions computed per lead from the events (the query builder supplies them).
AGGREGATE_FUNCTIONS = AGGREGATES

#: The largest finite double: ``**`` overflowing it gives None, as in Python.
_DBL_MAX = "1.7976931348623157e308"


class NoSqlForm(EngineError):
    """A playbook construct the SQL backend cannot express with the same answers."""


def false() -> exp.Expr:
    return exp.false()


def lit(value: Any) -> exp.Expr:
    """A SQL literal for a Python constant; non-integral numbers are DOUBLE, never DECIMAL."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if value == int(value) and abs(value) < 2**53:
            return exp.Literal.number(int(value))
        return exp.cast(exp.Literal.number(repr(value)), "DOUBLE")
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise NoSqlForm(f"a {type(value).__name__} literal has no SQL form")


def two_valued(e: exp.Expr) -> exp.Expr:
    """A condition where NULL counts as False (the language's ``and``/``or``/``if`` rule)."""
    return e if never_null(e) else exp.Coalesce(this=e, expressions=[false()])


def never_null(e: exp.Expr) -> bool:
    """Whether a boolean expression is already two-valued (so no COALESCE is needed)."""
    if isinstance(e, (*_NEVER_NULL, exp.Boolean)):
        return True
    if isinstance(e, exp.Paren | exp.Not):
        return never_null(e.this)
    if isinstance(e, exp.And | exp.Or):
        return never_null(e.this) and never_null(e.expression)
    return False


def double(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DOUBLE")


def is_null(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=e.copy(), expression=exp.null())


def not_null(e: exp.Expr) -> exp.Expr:
    return exp.not_(is_null(e))


_NEVER_NULL = (exp.Coalesce, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is)


@dataclass
class Environment:
    """What names and per-lead aggregates mean in the query being built.

    ``name(n)`` gives the column of a catalogue name (fit, stage...), ``lead(f)``
    the column of a lead field, ``aggregate(fn, call, where)`` the column of a
    per-lead aggregate, ``persona(id)`` the persona's column.
    """

    vocabulary: Vocabulary
    lists: Mapping[str, frozenset[str]]
    name: Callable[[str], exp.Expr]
    lead: Callable[[str], exp.Expr]
    persona: Callable[[str], exp.Expr]
    aggregate: Callable[[str, ast.Call, str], exp.Expr]


class Translator:
    """Translates one expression tree; ``where`` names it in error messages."""

    def __init__(self, env: Environment, where: str) -> None:
        self.env = env
        self.where = where

    def fail(self, what: str) -> NoSqlForm:
        return NoSqlForm(f"{self.where}: {what} has no SQL form in this backend")

    # -- entry points ------------------------------------------------------------

    def value(self, node: ast.AST) -> exp.Expr:
        method = getattr(self, f"t_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"`{type(node).__name__}`")
        result: exp.Expr = method(node)
        return result

    def condition(self, node: ast.AST) -> exp.Expr:
        """A rule test: True only when the expression is True (None is False)."""
        return two_valued(self.value(node))

    # -- leaves ------------------------------------------------------------------

    def t_Constant(self, node: ast.Constant) -> exp.Expr:
        return lit(node.value)

    def t_Name(self, node: ast.Name) -> exp.Expr:
        return self.env.name(node.id)

    def t_Attribute(self, node: ast.Attribute) -> exp.Expr:
        assert isinstance(node.value, ast.Name)
        if node.value.id == "lists":
            raise self.fail(f"`lists.{node.attr}` outside `in`")
        if node.value.id == "account":
            return self.env.name(f"account.{node.attr}")
        return self.env.lead(node.attr)

    def t_List(self, node: ast.List) -> exp.Expr:
        raise self.fail("a list outside `in`")

    # -- operators ---------------------------------------------------------------

    def t_UnaryOp(self, node: ast.UnaryOp) -> exp.Expr:
        if isinstance(node.op, ast.Not):
            return exp.not_(self.condition(node.operand))
        inner = self.value(node.operand)
        return exp.Neg(this=exp.paren(inner)) if isinstance(node.op, ast.USub) else inner

    def t_BoolOp(self, node: ast.BoolOp) -> exp.Expr:
        parts = [exp.paren(self.condition(v)) for v in node.values]
        combine = exp.and_ if isinstance(node.op, ast.And) else exp.or_
        return exp.paren(combine(*parts))

    def t_IfExp(self, node: ast.IfExp) -> exp.Expr:
        return exp.Case(
            ifs=[exp.If(this=self.condition(node.test), true=self.value(node.body))],
            default=self.value(node.orelse),
        )

    def t_BinOp(self, node: ast.BinOp) -> exp.Expr:
        a, b = exp.paren(self.value(node.left)), exp.paren(self.value(node.right))
        op = node.op
        if isinstance(op, ast.Add):
            return exp.Add(this=a, expression=b)
        if isinstance(op, ast.Sub):
            return exp.Sub(this=a, expression=b)
        if isinstance(op, ast.Mult):
            return exp.Mul(this=a, expression=b)
        if isinstance(op, ast.Div):
            return exp.Div(this=double(a), expression=exp.Nullif(this=b, expression=lit(0)))
        if isinstance(op, ast.FloorDiv):
            quotient = exp.Div(this=double(a), expression=exp.Nullif(this=b, expression=lit(0)))
            return exp.Floor(this=quotient)
        if isinstance(op, ast.Mod):
            return self._mod(a, b)
        if isinstance(op, ast.Pow):
            return self._pow(a, b)
        raise self.fail(f"operator `{type(op).__name__}`")

    def _mod(self, a: exp.Expr, b: exp.Expr) -> exp.Expr:
        """Python's ``%``: the result has the divisor's sign (SQL's has the dividend's)."""
        m = exp.Mod(this=double(a), expression=exp.Nullif(this=b, expression=lit(0)))
        lt0 = exp.LT(this=m.copy(), expression=lit(0))
        b_lt0 = exp.LT(this=b.copy(), expression=lit(0))
        wrong_sign = exp.and_(
            exp.NEQ(this=m.copy(), expression=lit(0)),
            exp.NEQ(this=exp.paren(lt0), expression=exp.paren(b_lt0)),
        )
        return exp.Case(
            ifs=[exp.If(this=wrong_sign, true=exp.Add(this=m.copy(), expression=b.copy()))], default=m
        )

    def _pow(self, a: exp.Expr, b: exp.Expr) -> exp.Expr:
        """``**`` in floats; 0 to a negative power, complex results and overflow give None."""
        raw = exp.Pow(this=double(a), expression=b)
        bad = exp.or_(
            exp.and_(exp.EQ(this=a.copy(), expression=lit(0)), exp.LT(this=b.copy(), expression=lit(0))),
            exp.and_(
                exp.LT(this=a.copy(), expression=lit(0)),
                exp.NEQ(this=b.copy(), expression=exp.Floor(this=b.copy())),
            ),
        )
        overflow = exp.GT(this=exp.Abs(this=raw.copy()), expression=double(exp.Literal.number(_DBL_MAX)))
        return exp.Case(
            ifs=[exp.If(this=bad, true=exp.null()), exp.If(this=overflow, true=exp.null())], default=raw
        )

    # -- comparisons -------------------------------------------------------------

    def t_Compare(self, node: ast.Compare) -> exp.Expr:
        operands = [node.left, *node.comparators]
        parts = [
            self._compare(op, left, right)
            for op, left, right in zip(node.ops, operands, operands[1:], strict=False)
        ]
        return parts[0] if len(parts) == 1 else exp.paren(exp.and_(*[exp.paren(p) for p in parts]))

    def _operand(self, node: ast.expr, other: ast.expr) -> exp.Expr:
        """A side of a comparison; a stage id facing ``stage`` becomes its index."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _is_stage(other):
            return lit(list(self.env.vocabulary.stages).index(node.value))
        return self.value(node)

    def _compare(self, op: ast.cmpop, left: ast.expr, right: ast.expr) -> exp.Expr:
        if isinstance(op, ast.In | ast.NotIn):
            return self._membership(left, right, negate=isinstance(op, ast.NotIn))
        a, b = self._operand(left, right), self._operand(right, left)
        if isinstance(op, ast.Eq | ast.Is):
            return exp.NullSafeEQ(this=a, expression=b)
        if isinstance(op, ast.NotEq | ast.IsNot):
            return exp.NullSafeNEQ(this=a, expression=b)
        cls: type[exp.Expr] = {ast.Lt: exp.LT, ast.LtE: exp.LTE, ast.Gt: exp.GT, ast.GtE: exp.GTE}[type(op)]
        return two_valued(cls(this=a, expression=b))

    def _membership(self, left: ast.expr, right: ast.expr, negate: bool) -> exp.Expr:
        a = self.value(left)
        items = self._items(right, stage=_is_stage(left))
        if items is None:  # `x in "text"`: a substring test
            haystack = self.value(right)
            found = exp.GT(this=exp.StrPosition(this=haystack, substr=a), expression=lit(0))
            test: exp.Expr = exp.not_(found) if negate else found
            return two_valued(exp.and_(not_null(a), not_null(haystack), test))
        constants = [i for i in items if isinstance(i, exp.Literal | exp.Boolean)]
        if len(constants) == len(items):  # None never equals a value: drop it
            if not items:
                return not_null(a) if negate else false()
            member: exp.Expr = exp.In(this=a.copy(), expressions=items)
        else:
            member = exp.or_(*[exp.NullSafeEQ(this=a.copy(), expression=i) for i in items])
        body = exp.not_(exp.paren(member)) if negate else member
        return exp.paren(exp.and_(not_null(a), exp.paren(body)))

    def _items(self, node: ast.expr, stage: bool) -> list[exp.Expr] | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "lists":
            return [lit(v) for v in sorted(self.env.lists[node.attr])]
        if isinstance(node, ast.List):
            out: list[exp.Expr] = []
            for item in node.elts:
                if isinstance(item, ast.Constant) and item.value is None:
                    continue
                out.append(self._operand(item, ast.Name(id="stage")) if stage else self.value(item))
            return out
        if isinstance(node, ast.Constant) and node.value is None:
            return []
        return None

    # -- calls -------------------------------------------------------------------

    def t_Call(self, node: ast.Call) -> exp.Expr:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        fn = FUNCTIONS.get(name)
        if fn is not None and fn.sql_aggregate is not None:
            return self.env.aggregate(name, node, self.where)
        if fn is None or fn.sql is None:
            raise self.fail(f"function `{name}`")
        result: exp.Expr = fn.sql(_Call(self, node))
        return result


class _Call:
    """One scalar call as the registry's SQL form sees it (:class:`engine.functions.SqlCall`)."""

    exp = exp

    def __init__(self, translator: Translator, node: ast.Call) -> None:
        self.translator, self.node = translator, node

    def value(self, node: ast.expr) -> exp.Expr:
        return self.translator.value(node)

    def persona(self, persona_id: str) -> exp.Expr:
        return self.translator.env.persona(persona_id)

    def fail(self, what: str) -> NoSqlForm:
        return self.translator.fail(what)

    lit = staticmethod(lit)
    two_valued = staticmethod(two_valued)
    is_null = staticmethod(is_null)
    not_null = staticmethod(not_null)


def _is_stage(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "stage"


def _literal_str(node: ast.expr) -> str:
    assert isinstance(node, ast.Constant) and isinstance(node.value, str)
    return node.value


def keyword_filters(call: ast.Call, params: Sequence[str]) -> dict[str, Any]:
    """The ``field=value`` filters of a count; values must be literal strings or None."""
    filters: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None or kw.arg in params:
            continue
        value = kw.value
        if not (isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str))):
            raise NoSqlForm(
                f"`{kw.arg}=` filter with a value that is not a literal string or None "
                "has no SQL form in this backend"
            )
        filters[kw.arg] = value.value
    return filters
