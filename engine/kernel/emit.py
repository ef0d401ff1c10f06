"""One checked expression → Python source text, with the compiled closures' semantics.

The kernel's function is generated source, so expressions become source too. Two rules
keep that as safe as the closure compiler (``engine.expr.compile``):

* nothing the playbook wrote is ever spliced into the text: literals, field names,
  list contents and regex programs are bound as named constants (``k0``, ``k1``...),
  so the only text is what this module writes (operators, local names, integers);
* every operator keeps the null semantics of :mod:`engine.expr`: where an operand may
  be None or of an unexpected type, the very helpers the closures use are called
  (``ARITH``, ``COMPARE``); only operands known to be numbers are compared inline.

A call becomes what its registry entry's ``kernel`` form makes of it (:class:`_Call`):
history functions become aggregate variables that :mod:`engine.kernel.source` computes
in one pass over the events (the kinds below); a call whose arguments are not all
literals has no kernel form (:class:`NoKernel`, and the batch path keeps using ``decide``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.expr import CompiledExpression
from engine.expr.compile import ARITH, COMPARE, literal_list
from engine.expr.regex import Pattern
from engine.functions import FUNCTIONS, Function

#: Names a decision has computed by the time an expression may read them, as locals.
NUMBER_NAMES = frozenset({"recent", "prior", "fit", "engagement", "stage",
                          "engagement_since_recycle", "events_since_recycle"})
BOOL_NAMES = frozenset({"target_account", "target_lead", "surge"})
_INLINE_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
_INLINE_ORDER = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SAFE_INT = 2**53


class NoKernel(Exception):
    """This playbook (or construct) has no generated form; ``decide`` handles it."""


@dataclass(frozen=True)
class Aggregate:
    """One history function call with literal arguments: what the event loop computes."""

    #: the loop's kind: tally | latest | seen_stage | since_tally (after the recycle trigger) |
    #: units (a number field's total in 2**-32 units) | numbers (how many events carry one)
    fn: str
    type: str | None  # event type (tally, latest, units, numbers); None for seen_stage
    within: int | None  # window in seconds
    fields: tuple[tuple[str, Any], ...] = ()  # a tally's field=value filters
    stage: str | None = None  # seen_stage's stage id (content mapped to it)
    value: str | None = None  # the number field of units and numbers


@dataclass
class Namespace:
    """The constants and aggregates generated code refers to, by generated name."""

    constants: dict[str, Any] = field(default_factory=dict)
    aggregates: dict[Aggregate, str] = field(default_factory=dict)
    personas: dict[str, str] = field(default_factory=dict)
    temps: int = 0
    _by_id: dict[int, str] = field(default_factory=dict)

    def constant(self, value: Any) -> str:
        """The name of a constant holding ``value`` (hashable values are shared)."""
        if type(value) is int and abs(value) < _SAFE_INT:
            return repr(value)  # an int we can write as text exactly
        key = id(value)
        try:
            for name, existing in self.constants.items():
                if type(existing) is type(value) and existing == value:
                    return name
        except Exception:
            pass
        if key in self._by_id:
            return self._by_id[key]
        name = f"k{len(self.constants)}"
        self.constants[name] = value
        self._by_id[key] = name
        return name

    def aggregate(self, aggregate: Aggregate) -> str:
        name = self.aggregates.get(aggregate)
        if name is None:
            name = self.aggregates[aggregate] = f"a{len(self.aggregates)}"
        return name


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class Emitted:
    """Source text of a value, and what is known of it (to inline what is safe)."""

    text: str
    number: bool = False  # always an int or float (never None)
    boolean: bool = False  # always a bool
    scalar: bool = False  # a str / number / bool / None constant: == on it is a plain bool
    members: bool = False  # a constant frozenset without None: `in` is plain membership


class Emitter:
    """Emits one expression; names are looked up in ``locals_`` (name → local variable)."""

    def __init__(self, expr: CompiledExpression, ns: Namespace, lists: Mapping[str, Any],
                 stages: list[str]) -> None:
        self.expr, self.ns, self.lists, self.stages = expr, ns, lists, stages
        self.resolved = expr.resolved

    def emit(self) -> str:
        return self._out(self.node(self.expr.tree)).text

    def _out(self, value: Emitted | _Const) -> Emitted:
        if isinstance(value, _Const):
            v = value.value
            number = (type(v) is int and abs(v) < _SAFE_INT) or type(v) is float
            return Emitted(self.ns.constant(v), number=number, boolean=type(v) is bool,
                           scalar=v is None or type(v) in (str, int, float, bool),
                           members=type(v) is frozenset and None not in v)
        return value

    def helper(self, fn: Callable[..., Any]) -> str:
        return self.ns.constant(fn)

    def node(self, node: ast.AST) -> Emitted | _Const:
        if id(node) in self.resolved:
            return _Const(self.resolved[id(node)])
        method: Callable[[Any], Emitted | _Const] | None = getattr(self, f"n_{type(node).__name__}", None)
        if method is None:
            raise NoKernel(f"no kernel form for {type(node).__name__}")
        return method(node)

    def n_Constant(self, node: ast.Constant) -> _Const:
        return _Const(node.value)

    def n_Name(self, node: ast.Name) -> Emitted:
        name = node.id
        if name in NUMBER_NAMES:
            return Emitted(f"v_{name}", number=True)
        if name in BOOL_NAMES:
            return Emitted(f"v_{name}", boolean=True)
        if name == "lead":
            return Emitted("lead")
        if name == "lists":
            return Emitted(self.ns.constant(self.lists))
        raise NoKernel(f"no kernel form for the name {name!r}")

    def n_Attribute(self, node: ast.Attribute) -> Emitted | _Const:
        assert isinstance(node.value, ast.Name)
        record, attr = node.value.id, node.attr
        if record == "lists":
            return _Const(self.lists.get(attr))
        if record == "lead":
            return Emitted(f"lead_get({self.ns.constant(attr)})")
        raise NoKernel(f"no kernel form for {record}.{attr}")

    def n_List(self, node: ast.List) -> Emitted | _Const:
        items = [self.node(e) for e in node.elts]
        if all(isinstance(i, _Const) for i in items):
            return _Const(literal_list([i.value for i in items if isinstance(i, _Const)]))
        texts = [self._out(i).text for i in items]
        return Emitted("(" + "".join(f"{t}, " for t in texts) + ")")

    def n_UnaryOp(self, node: ast.UnaryOp) -> Emitted | _Const:
        from engine.expr.compile import _negate, _plus

        inner = self.node(node.operand)
        if isinstance(node.op, ast.Not):
            if isinstance(inner, _Const):
                return _Const(not inner.value)
            return Emitted(f"(not {inner.text})", boolean=True)
        op = _negate if isinstance(node.op, ast.USub) else _plus
        if isinstance(inner, _Const):
            return _Const(op(inner.value))
        if inner.number:
            return Emitted(f"({'-' if op is _negate else '+'}{inner.text})", number=True)
        return Emitted(f"{self.helper(op)}({inner.text})")

    def n_BinOp(self, node: ast.BinOp) -> Emitted | _Const:
        op = ARITH[type(node.op)]
        left, right = self.node(node.left), self.node(node.right)
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _Const(op(left.value, right.value))
        a, b = self._out(left), self._out(right)
        symbol = _INLINE_ARITH.get(type(node.op))
        if symbol is not None and a.number and b.number:
            return Emitted(f"({a.text} {symbol} {b.text})", number=True)
        return Emitted(f"{self.helper(op)}({a.text}, {b.text})")

    def n_BoolOp(self, node: ast.BoolOp) -> Emitted:
        parts = [self._out(self.node(v)) for v in node.values]
        word = " and " if isinstance(node.op, ast.And) else " or "
        texts = [p.text if p.boolean else f"bool({p.text})" for p in parts]
        return Emitted("(" + word.join(texts) + ")", boolean=True)

    def n_IfExp(self, node: ast.IfExp) -> Emitted:
        test, body, orelse = (self._out(self.node(n)) for n in (node.test, node.body, node.orelse))
        return Emitted(f"({body.text} if {test.text} else {orelse.text})",
                       number=body.number and orelse.number, boolean=body.boolean and orelse.boolean)

    def n_Compare(self, node: ast.Compare) -> Emitted:
        operands = [self._out(self.node(n)) for n in (node.left, *node.comparators)]
        if len(node.ops) == 1:
            return Emitted(self._compare(node.ops[0], operands[0], operands[1]), boolean=True)
        # a < b < c: each operand once, left to right, stopping at the first False
        # (as the closures do): a generated lambda per operand keeps the order.
        ops = self.ns.constant(tuple(COMPARE[type(op)] for op in node.ops))
        thunks = ", ".join(f"lambda: {o.text}" for o in operands)
        return Emitted(f"{self.helper(_chain)}({ops}, ({thunks},))", boolean=True)

    def _compare(self, op: ast.cmpop, a: Emitted, b: Emitted) -> str:
        """Inline where Python's operator gives the closures' answer or raises.

        A lead field holding a value of another type than declared makes an inline
        ``x >= 10`` raise TypeError; the kernel checks that this is the case and hands the
        lead to ``decide``, which gives the closures' answer (False).
        """
        symbol = _INLINE_ORDER.get(type(op))
        if symbol is not None:
            if a.number and b.number:
                return f"({a.text} {symbol} {b.text})"
            if b.number and b.text.isdigit():  # field >= 1000: None is False, as in _ordering
                temp = self.temp()
                return f"(({temp} := {a.text}) is not None and {temp} {symbol} {b.text})"
        if isinstance(op, ast.Eq | ast.NotEq) and (b.scalar or a.scalar):
            return f"({a.text} {'==' if isinstance(op, ast.Eq) else '!='} {b.text})"
        if isinstance(op, ast.In) and b.members:  # None is in no such set: False, as _member
            return f"({a.text} in {b.text})"
        if isinstance(op, ast.NotIn) and b.members:  # but `None not in` is False in _member too
            temp = self.temp()
            return f"(({temp} := {a.text}) is not None and {temp} not in {b.text})"
        return f"{self.helper(COMPARE[type(op)])}({a.text}, {b.text})"

    def temp(self) -> str:
        self.ns.temps += 1
        return f"t_{self.ns.temps}"

    def n_Call(self, node: ast.Call) -> Emitted | _Const:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        fn = FUNCTIONS[name]
        params = list(fn.params)
        if fn.variadic:
            params += [params[-1]] * max(0, len(node.args) - len(params))
        slots: list[ast.expr | None] = [*node.args, *[None] * (len(params) - len(node.args))]
        fields: dict[str, ast.expr] = {}
        names = [p.name for p in params]
        for kw in node.keywords:
            assert kw.arg is not None
            if kw.arg in names:
                slots[names.index(kw.arg)] = kw.value
            else:
                fields[kw.arg] = kw.value
        args = [_Const(None) if n is None else self.node(n) for n in slots]
        if fn.kernel is None:
            raise NoKernel(f"{name}() has no kernel form")
        emitted: Emitted = fn.kernel(_Call(self, fn, args, {k: self.node(v) for k, v in fields.items()}))
        return emitted


class _Call:
    """One call as the registry's kernel form sees it (:class:`engine.functions.KernelCall`)."""

    def __init__(self, emitter: Emitter, fn: Function, args: list[Emitted | _Const],
                 fields: dict[str, Emitted | _Const]) -> None:
        self.emitter, self.fn, self.args, self.fields = emitter, fn, args, fields

    def literals(self) -> list[Any]:
        if not all(isinstance(a, _Const) for a in [*self.args, *self.fields.values()]):
            raise NoKernel(f"{self.fn.name}() with a non-literal argument has no kernel form")
        return [a.value for a in self.args if isinstance(a, _Const)]

    def filters(self) -> tuple[tuple[str, Any], ...]:
        self.literals()
        return tuple(sorted((k, v.value) for k, v in self.fields.items() if isinstance(v, _Const)))

    def aggregate(self, kind: str, type_: str | None, within: int | None,
                  fields: tuple[tuple[str, Any], ...] = (), stage: str | None = None,
                  value: str | None = None) -> str:
        return self.emitter.ns.aggregate(Aggregate(kind, type_, within, fields, stage, value))

    def persona(self, persona_id: str) -> str:
        persona = self.emitter.ns.personas.get(persona_id)
        if persona is None:
            raise NoKernel(f"persona {persona_id!r} is not computed before its use")
        return persona

    def emitted(self, text: str, number: bool = False, boolean: bool = False) -> Emitted:
        return Emitted(text, number=number, boolean=boolean)

    def call(self, boolean: bool = False) -> Emitted:
        texts = ", ".join(self.emitter._out(a).text for a in self.args)
        return Emitted(f"{self.emitter.helper(self.fn.impl)}(None, {texts})", boolean=boolean)

    def literal_search(self) -> Emitted | None:
        """A literal pattern: one memoised call, not three (see :func:`_searcher`)."""
        text, pattern = self.args
        if not (isinstance(pattern, _Const) and isinstance(pattern.value, Pattern)):
            return None
        out = self.emitter._out(text).text
        return Emitted(f"{self.emitter.helper(_searcher(pattern.value))}({out})", boolean=True)


#: Texts whose answer one ``matches`` call site remembers (titles and domains repeat
#: across an export; once full, the first ones seen stay: no churn on unique emails).
_MATCH_MEMO = 4096


def _searcher(pattern: Pattern) -> Callable[[Any], bool]:
    """``matches(text, <literal pattern>)``: False for a text that is not a string.

    Remembers its answers: a lead field is a scalar, so hashable (anything else raises,
    and the kernel hands that lead to ``decide``). A string never equals a non-string
    key, and every non-string answers False, so the memo cannot mix them up.
    """
    search = pattern.search
    memo: dict[Any, bool] = {}
    remembered = memo.get

    def matches(text: Any) -> bool:
        found = remembered(text)
        if found is None:
            found = isinstance(text, str) and search(text)
            if len(memo) < _MATCH_MEMO:
                memo[text] = found
        return found

    return matches


def _chain(ops: tuple[Callable[[Any, Any], bool], ...], thunks: tuple[Callable[[], Any], ...]) -> bool:
    left = thunks[0]()
    for cmp, thunk in zip(ops, thunks[1:], strict=True):
        right = thunk()
        if not cmp(left, right):
            return False
        left = right
    return True
