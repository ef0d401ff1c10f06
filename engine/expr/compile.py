"""A checked tree → one Python closure per node, built once, called per lead.

No text is ever handed to ``eval``: each whitelisted node becomes a closure over
its children's closures and over the literals the checker resolved (stage
indexes, seconds, re2 programs). Constant operands get specialised closures so
the common ``engagement >= 40`` costs one dict lookup and one comparison.

The operators below *are* the null semantics documented in :mod:`engine.expr`;
:mod:`engine.expr.reference` implements the same rules independently.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from engine.expr.check import Checked
from engine.expr.scope import Scope
from engine.functions import FUNCTIONS

Fn = Callable[[Scope], Any]


def _num(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _arith(op: Callable[[Any, Any], Any], zero_is_none: bool) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if not (_num(a) and _num(b)) or (zero_is_none and b == 0):
            return None
        try:
            return op(a, b)
        except OverflowError:  # a huge int literal mixed with floats
            return None

    return apply


def power(a: Any, b: Any) -> float | None:
    """``**`` in floats, so nested powers cannot build a huge integer; overflow → None."""
    if not (_num(a) and _num(b)):
        return None
    try:
        result = float(a) ** b
    except (OverflowError, ZeroDivisionError):
        return None
    return None if isinstance(result, complex) else result


ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _arith(operator.add, False),
    ast.Sub: _arith(operator.sub, False),
    ast.Mult: _arith(operator.mul, False),
    ast.Div: _arith(operator.truediv, True),
    ast.FloorDiv: _arith(operator.floordiv, True),
    ast.Mod: _arith(operator.mod, True),
    ast.Pow: power,
}


def _ordering(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def apply(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return bool(op(a, b))
        except TypeError:  # e.g. an undeclared lead field holding text
            return False

    return apply


def _member(negate: bool) -> Callable[[Any, Any], bool]:
    def apply(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return (a not in b) if negate else (a in b)
        except TypeError:
            return False

    return apply


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _ne(a: Any, b: Any) -> bool:
    return bool(a != b)


COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _eq,
    ast.NotEq: _ne,
    ast.Is: _eq,
    ast.IsNot: _ne,
    ast.Lt: _ordering(operator.lt),
    ast.LtE: _ordering(operator.le),
    ast.Gt: _ordering(operator.gt),
    ast.GtE: _ordering(operator.ge),
    ast.In: _member(False),
    ast.NotIn: _member(True),
}


def _negate(v: Any) -> Any:
    return -v if _num(v) else None


def _plus(v: Any) -> Any:
    return v if _num(v) else None


def literal_list(values: list[Any]) -> frozenset[Any] | tuple[Any, ...]:
    """A list of literals as the value ``in`` tests: a frozenset, or a tuple if unhashable."""
    try:
        return frozenset(values)
    except TypeError:
        return tuple(values)


class _Const:
    """Marks a closure whose value is known at compile time (for specialising)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Compiler:
    """Turns the nodes of one :class:`Checked` tree into closures."""

    def __init__(self, checked: Checked) -> None:
        self.checked = checked

    def compile(self) -> Fn:
        return self._fn(self.c(self.checked.parsed.tree))

    @staticmethod
    def _fn(c: Fn | _Const) -> Fn:
        if isinstance(c, _Const):
            value = c.value
            return lambda s: value
        return c

    def c(self, node: ast.AST) -> Fn | _Const:
        resolved = self.checked.resolved
        if id(node) in resolved:
            return _Const(resolved[id(node)])
        method: Callable[[Any], Fn | _Const] = getattr(self, f"c_{type(node).__name__}")
        return method(node)

    def c_Constant(self, node: ast.Constant) -> Fn | _Const:
        return _Const(node.value)

    def c_Name(self, node: ast.Name) -> Fn:
        name = node.id
        return lambda s: s.values.get(name)

    def c_Attribute(self, node: ast.Attribute) -> Fn:
        assert isinstance(node.value, ast.Name)
        record, attr = node.value.id, node.attr

        def get(s: Scope) -> Any:
            mapping = s.values.get(record)
            return None if mapping is None else mapping.get(attr)

        return get

    def c_List(self, node: ast.List) -> Fn | _Const:
        items = [self.c(e) for e in node.elts]
        if all(isinstance(i, _Const) for i in items):
            return _Const(literal_list([i.value for i in items if isinstance(i, _Const)]))
        fns = [self._fn(i) for i in items]
        return lambda s: tuple(f(s) for f in fns)

    def c_UnaryOp(self, node: ast.UnaryOp) -> Fn | _Const:
        inner = self.c(node.operand)
        op: Callable[[Any], Any]
        if isinstance(node.op, ast.Not):
            op = operator.not_
        else:
            op = _negate if isinstance(node.op, ast.USub) else _plus
        if isinstance(inner, _Const):
            return _Const(op(inner.value))
        return lambda s: op(inner(s))

    def c_BinOp(self, node: ast.BinOp) -> Fn | _Const:
        op = ARITH[type(node.op)]
        left, right = self.c(node.left), self.c(node.right)
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _Const(op(left.value, right.value))
        if isinstance(right, _Const):
            rv, lf = right.value, left
            assert not isinstance(lf, _Const)
            return lambda s: op(lf(s), rv)
        lf2, rf = self._fn(left), right
        return lambda s: op(lf2(s), rf(s))

    def c_BoolOp(self, node: ast.BoolOp) -> Fn:
        fns = tuple(self._fn(self.c(v)) for v in node.values)
        if len(fns) == 2:  # the common case, without a generator per call
            a, b = fns
            if isinstance(node.op, ast.And):
                return lambda s: bool(a(s)) and bool(b(s))
            return lambda s: bool(a(s)) or bool(b(s))
        if isinstance(node.op, ast.And):
            return lambda s: all(f(s) for f in fns)
        return lambda s: any(f(s) for f in fns)

    def c_IfExp(self, node: ast.IfExp) -> Fn:
        test, body, orelse = (self._fn(self.c(n)) for n in (node.test, node.body, node.orelse))
        return lambda s: body(s) if test(s) else orelse(s)

    def c_Compare(self, node: ast.Compare) -> Fn:
        operands = [self.c(node.left), *(self.c(n) for n in node.comparators)]
        ops = [COMPARE[type(o)] for o in node.ops]
        if len(ops) == 1:
            op, left, right = ops[0], operands[0], operands[1]
            if isinstance(right, _Const) and not isinstance(left, _Const):
                rv = right.value
                return lambda s: op(left(s), rv)
            lf, rf = self._fn(left), self._fn(right)
            return lambda s: op(lf(s), rf(s))
        fns = [self._fn(o) for o in operands]
        pairs = list(zip(ops, fns[1:], strict=True))
        first = fns[0]

        def chain(s: Scope) -> bool:
            left = first(s)
            for cmp, f in pairs:
                right = f(s)
                if not cmp(left, right):
                    return False
                left = right
            return True

        return chain

    def c_Call(self, node: ast.Call) -> Fn:
        assert isinstance(node.func, ast.Name)
        fn = FUNCTIONS[node.func.id]
        params = list(fn.params)
        if fn.variadic:
            params += [params[-1]] * max(0, len(node.args) - len(params))
        # Positional slots (variadic ones repeat a name, so never key them by name).
        slots: list[ast.expr | None] = [*node.args, *[None] * (len(params) - len(node.args))]
        fields: dict[str, ast.expr] = {}
        for kw in node.keywords:
            assert kw.arg is not None
            names = [p.name for p in params]
            if kw.arg in names:
                slots[names.index(kw.arg)] = kw.value
            else:
                fields[kw.arg] = kw.value
        args = [_Const(None) if n is None else self.c(n) for n in slots]
        impl = fn.impl
        field_fns = {k: self.c(v) for k, v in fields.items()}
        if all(isinstance(a, _Const) for a in args) and all(
            isinstance(f, _Const) for f in field_fns.values()
        ):
            const_args = tuple(a.value for a in args if isinstance(a, _Const))
            if not fn.field_keywords:
                return lambda s: impl(s, *const_args)
            const_fields = {k: f.value for k, f in field_fns.items() if isinstance(f, _Const)}
            filt = const_fields or None
            return lambda s: impl(s, *const_args, fields=filt)
        arg_fns = [self._fn(a) for a in args]
        kw_fns = {k: self._fn(f) for k, f in field_fns.items()}
        if not fn.field_keywords:
            if len(arg_fns) == 2:  # matches(lead.title, "..."): no generator per call
                a0, a1 = arg_fns
                return lambda s: impl(s, a0(s), a1(s))
            if len(arg_fns) == 1:
                (a0,) = arg_fns
                return lambda s: impl(s, a0(s))
            return lambda s: impl(s, *(f(s) for f in arg_fns))
        return lambda s: impl(
            s, *(f(s) for f in arg_fns), fields={k: f(s) for k, f in kw_fns.items()} or None
        )


def compile_checked(checked: Checked) -> Fn:
    """The callable for a checked expression."""
    return Compiler(checked).compile()


def same_value(a: Any, b: Any) -> bool:
    """Equality for comparing the two interpreters: NaN equals NaN, 1 equals 1.0."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return (type(a) is type(b) and a == b) or (_num(a) and _num(b) and a == b)
