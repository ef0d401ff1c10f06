"""Whitelist, names and types: a parsed tree → a typed, resolved tree or issues.

The checker is the security boundary: any node type not handled here is
``E-EXPR-UNSAFE`` and never reaches the compiler or simpleeval. It also resolves
literal arguments once (durations to seconds, stage ids to indexes, patterns to
compiled re2 programs) so evaluation per lead does no parsing.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics import did_you_mean
from engine.durations import DurationError, parse_seconds
from engine.expr import types as T
from engine.expr.issues import ExprIssue, make_issue
from engine.expr.limits import MAX_EXPONENT
from engine.expr.parse import Parsed
from engine.expr.regex import PatternError, compile_pattern
from engine.expr.safety import BUILTINS, FORBIDDEN, whitelist
from engine.expr.types import Type
from engine.functions import (
    ACCOUNT_FIELDS,
    CONTEXT_PHRASES,
    FUNCTIONS,
    NAMES,
    Function,
    Name,
    Vocabulary,
    contexts_of,
)

_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_ORDERABLE = ("number", "datetime", "stage")
_SYMBOLS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def symbol(op: ast.cmpop) -> str:
    """The source spelling of a comparison operator."""
    return _SYMBOLS[type(op)]


@dataclass
class Checked:
    """A tree that passed: its type and what the compiler needs, keyed by ``id(node)``."""

    parsed: Parsed
    type: Type
    types: dict[int, Type] = field(default_factory=dict)
    resolved: dict[int, Any] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)


class Checker:
    """One pass over one tree; collects every issue rather than stopping at the first."""

    def __init__(self, parsed: Parsed, vocabulary: Vocabulary, context: str) -> None:
        if context not in CONTEXT_PHRASES:
            raise ValueError(f"unknown expression context {context!r}")
        self.parsed = parsed
        self.vocab = vocabulary
        self.context = context
        self.issues: list[ExprIssue] = []
        self.out = Checked(parsed, T.ANY)

    # -- helpers ------------------------------------------------------------------

    def issue(self, node: ast.AST, code: str, message: str, hint: str | None = None) -> Type:
        offset, length = self.parsed.span(node)
        self.issues.append(make_issue(self.parsed.source, code, message, offset, length, hint))
        return T.ANY

    def _typed(self, node: ast.AST, t: Type) -> Type:
        self.out.types[id(node)] = t
        return t

    def visit(self, node: ast.AST) -> Type:
        method = getattr(self, f"v_{type(node).__name__}", None)
        if method is None:
            what = FORBIDDEN.get(type(node), f"`{type(node).__name__}`")
            msg = f"{what}: not part of the expression language"
            return self.issue(node, "E-EXPR-UNSAFE", msg)
        return self._typed(node, method(node))

    def _available(self, node: ast.AST, entry: Name | Function) -> bool:
        if entry.available(self.context):
            return True
        where = ", ".join(contexts_of(entry))
        self.issue(
            node,
            "E-EXPR-CONTEXT",
            f"`{entry.name}` is not known while {CONTEXT_PHRASES[self.context]}",
            f"it is available in: {where}",
        )
        return False

    def _unknown_name(self, node: ast.AST, name: str, kind: str) -> Type:
        if name.startswith("__") or name in BUILTINS:
            return self.issue(node, "E-EXPR-UNSAFE", f"Python's `{name}` is not available in expressions")
        pool = FUNCTIONS if kind == "function" else NAMES
        candidates = [n for n, e in pool.items() if e.available(self.context)]
        return self.issue(node, "E-EXPR-NAME", f"unknown {kind} `{name}`", did_you_mean(name, candidates))

    # -- leaves -------------------------------------------------------------------

    def v_Constant(self, node: ast.Constant) -> Type:
        value = node.value
        if value is None:
            return T.NULL
        if isinstance(value, bool):
            return T.BOOL
        if isinstance(value, int | float):
            return T.NUMBER
        if isinstance(value, str):
            return T.STRING
        msg = f"{type(value).__name__} literals are not supported"
        return self.issue(node, "E-EXPR-UNSAFE", msg)

    def v_Name(self, node: ast.Name) -> Type:
        entry = NAMES.get(node.id)
        if entry is None:
            if node.id in FUNCTIONS:
                return self.issue(node, "E-EXPR-TYPE", f"`{node.id}` is a function; call it")
            return self._unknown_name(node, node.id, "name")
        if not self._available(node, entry):
            return T.ANY
        self.out.names.add(node.id)
        if entry.type == "record":
            return T.record(node.id)
        return T.parse_type(entry.type)

    def v_Attribute(self, node: ast.Attribute) -> Type:
        if node.attr.startswith("_"):
            return self.issue(node, "E-EXPR-UNSAFE", f"attribute `{node.attr}` is not accessible")
        base = node.value
        if not (
            isinstance(base, ast.Name)
            and NAMES.get(base.id, None) is not None
            and NAMES[base.id].type == "record"
        ):
            return self.issue(
                node,
                "E-EXPR-UNSAFE",
                "attribute access is only allowed on records (`lead.title`, `lists.partners`)",
            )
        self.visit(base)
        if base.id == "account":
            if node.attr not in ACCOUNT_FIELDS:
                return self.issue(node, "E-EXPR-NAME", f"unknown account value `account.{node.attr}`",
                                  did_you_mean(node.attr, list(ACCOUNT_FIELDS)))
            self.out.fields.add(f"account.{node.attr}")
            return T.parse_type(ACCOUNT_FIELDS[node.attr][0])
        if base.id == "lists":
            declared: Sequence[str] | None = self.vocab.lists
        else:
            lead_fields = self.vocab.lead_fields
            declared = None if lead_fields is None else list(lead_fields)
        if declared is not None and node.attr not in declared:
            what = "list" if base.id == "lists" else "lead field"
            return self.issue(
                node,
                "E-EXPR-NAME",
                f"unknown {what} `{base.id}.{node.attr}`",
                did_you_mean(node.attr, declared),
            )
        self.out.fields.add(f"{base.id}.{node.attr}")
        if base.id == "lists":
            return T.LIST_STRING
        if self.vocab.lead_fields is None:
            return T.ANY
        return T.parse_type(self.vocab.lead_fields[node.attr])

    def v_List(self, node: ast.List) -> Type:
        elem: Type | None = T.NULL
        for item in node.elts:
            t = self.visit(item)
            if t.kind in ("list", "record"):
                return self.issue(item, "E-EXPR-TYPE", f"a list cannot contain a {t}")
            assert elem is not None
            merged = T.unify(elem, t)
            if merged is None:
                return self.issue(item, "E-EXPR-TYPE", f"list mixes {elem} and {t}")
            elem = merged
        return Type("list", T.ANY if elem is None or elem == T.NULL else elem)

    # -- operators ----------------------------------------------------------------

    def v_UnaryOp(self, node: ast.UnaryOp) -> Type:
        t = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return self._want(node.operand, t, T.BOOL, "`not` needs a condition")
        if isinstance(node.op, ast.USub | ast.UAdd):
            return self._want(node.operand, t, T.NUMBER, "`-` needs a number")
        return self.issue(node, "E-EXPR-UNSAFE", "bitwise operators are not part of the language")

    def _want(self, node: ast.AST, actual: Type, expected: Type, message: str) -> Type:
        if not T.fits(actual, expected):
            self.issue(node, "E-EXPR-TYPE", f"{message}, got {actual}")
        return expected

    def v_BinOp(self, node: ast.BinOp) -> Type:
        if not isinstance(node.op, _ARITH):
            msg = "bitwise operators are not part of the language"
            return self.issue(node, "E-EXPR-UNSAFE", msg)
        left = self.visit(node.left)
        right = self.visit(node.right)
        if isinstance(node.op, ast.Pow):
            exponent = _literal_number(node.right)
            if exponent is None or abs(exponent) > MAX_EXPONENT:
                return self.issue(
                    node.right,
                    "E-EXPR-LIMIT",
                    f"`**` needs a literal exponent between -{MAX_EXPONENT} and {MAX_EXPONENT}",
                )
        for side, t in ((node.left, left), (node.right, right)):
            if not T.fits(t, T.NUMBER):
                hint = (
                    "`*` multiplies numbers; strings and lists cannot be repeated"
                    if isinstance(node.op, ast.Mult)
                    else None
                )
                self.issue(side, "E-EXPR-TYPE", f"arithmetic needs numbers, got {t}", hint)
        return T.NUMBER

    def v_BoolOp(self, node: ast.BoolOp) -> Type:
        word = "and" if isinstance(node.op, ast.And) else "or"
        for value in node.values:
            self._want(value, self.visit(value), T.BOOL, f"`{word}` needs conditions")
        return T.BOOL

    def v_IfExp(self, node: ast.IfExp) -> Type:
        self._want(node.test, self.visit(node.test), T.BOOL, "`if` needs a condition")
        body, orelse = self.visit(node.body), self.visit(node.orelse)
        merged = T.unify(body, orelse)
        if merged is None:
            return self.issue(node, "E-EXPR-TYPE", f"the branches differ: {body} vs {orelse}")
        return merged

    def v_Compare(self, node: ast.Compare) -> Type:
        left_node: ast.expr = node.left
        left = self.visit(left_node)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            self._compare(op, left_node, left, right_node, right)
            left_node, left = right_node, right
        return T.BOOL

    def _compare(self, op: ast.cmpop, ln: ast.expr, lt: Type, rn: ast.expr, rt: Type) -> None:
        sym = symbol(op)
        if isinstance(op, ast.Is | ast.IsNot):
            if not (_is_none(ln) or _is_none(rn)):
                self.issue(rn, "E-EXPR-TYPE", f"`{sym}` only compares with None; use == or !=")
            return
        if isinstance(op, ast.In | ast.NotIn):
            self._membership(ln, lt, rn, rt, sym)
            return
        if lt.kind == "stage" or rt.kind == "stage":
            self._stage_compare(ln, lt, rn, rt)
            return
        if lt.kind in ("record", "list", "duration") or rt.kind in ("record", "list", "duration"):
            self.issue(rn if lt.loose else ln, "E-EXPR-TYPE", f"cannot compare {lt} with {rt}")
            return
        if isinstance(op, _ORDERING):
            if lt == T.ANY or rt == T.ANY:
                return
            if lt.kind == "null" or rt.kind == "null":
                self.issue(
                    rn if rt.kind == "null" else ln,
                    "W-EXPR-NULL",
                    f"`{sym}` with None is always False",
                    "test for a missing value with `== None`",
                )
                return
            for n, t in ((ln, lt), (rn, rt)):
                if not t.loose and t.kind not in _ORDERABLE:
                    self.issue(
                        n,
                        "E-EXPR-TYPE",
                        f"`{sym}` orders numbers, datetimes and stages; "
                        f"{t} can only be compared with ==, != or in",
                    )
                    return
        if T.unify(lt, rt) is None:
            self.issue(rn, "E-EXPR-TYPE", f"cannot compare {lt} with {rt}")

    def _membership(self, ln: ast.expr, lt: Type, rn: ast.expr, rt: Type, sym: str) -> None:
        if rt.loose:
            return
        if rt.kind == "string":
            if not T.fits(lt, T.STRING):
                self.issue(ln, "E-EXPR-TYPE", f"`{sym}` a string needs a string, got {lt}")
            return
        if rt.kind != "list":
            self.issue(rn, "E-EXPR-TYPE", f"`{sym}` needs a list or a string, got {rt}")
            return
        assert rt.elem is not None
        if lt.kind == "stage" and isinstance(rn, ast.List):
            indexes = [self._stage_index(item) for item in rn.elts]
            if all(i is not None for i in indexes):
                self.out.resolved[id(rn)] = frozenset(indexes)
            return
        if not T.fits(lt, rt.elem):
            self.issue(ln, "E-EXPR-TYPE", f"`{sym}` {rt} needs a {rt.elem}, got {lt}")

    def _stage_compare(self, ln: ast.expr, lt: Type, rn: ast.expr, rt: Type) -> None:
        if lt.kind == "stage" and rt.kind == "stage":
            return
        other, ot = (rn, rt) if lt.kind == "stage" else (ln, lt)
        if ot.kind == "null":
            return
        if not (isinstance(other, ast.Constant) and isinstance(other.value, str)):
            self.issue(
                other,
                "E-EXPR-TYPE",
                f"a stage is compared with a stage id in quotes, got {ot}",
                f'e.g. stage >= "{self.vocab.stages[-1] if self.vocab.stages else "won"}"',
            )
            return
        self._stage_index(other)

    def _stage_index(self, node: ast.expr) -> int | None:
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            self.issue(node, "E-EXPR-TYPE", "a stage id must be a string literal")
            return None
        stages = list(self.vocab.stages)
        if node.value not in stages:
            self.issue(
                node,
                "E-EXPR-REF",
                f"unknown stage `{node.value}`",
                did_you_mean(node.value, stages) or f"stages are: {', '.join(stages)}",
            )
            return None
        index = stages.index(node.value)
        self.out.resolved[id(node)] = index
        return index

    # -- calls --------------------------------------------------------------------

    def v_Call(self, node: ast.Call) -> Type:
        if not isinstance(node.func, ast.Name):
            return self.issue(node.func, "E-EXPR-UNSAFE", "only catalogue functions can be called, by name")
        name = node.func.id
        fn = FUNCTIONS.get(name)
        if fn is None:
            if name in NAMES:
                return self.issue(node.func, "E-EXPR-TYPE", f"`{name}` is not a function")
            return self._unknown_name(node.func, name, "function")
        if not self._available(node.func, fn):
            return T.ANY
        self.out.functions.add(name)
        self._arguments(node, fn)
        return T.parse_type(fn.returns)

    def _arguments(self, node: ast.Call, fn: Function) -> None:
        params = list(fn.params)
        if fn.variadic:
            params += [params[-1]] * max(0, len(node.args) - len(params))
        required = [p for p in fn.params if not p.optional]
        bound: dict[str, ast.expr] = {}
        if len(node.args) > len(params) or (len(node.args) < len(required) and not node.keywords):
            self.issue(node, "E-EXPR-ARGS", f"wrong number of arguments: {fn.signature()}")
        for param, arg in zip(params, node.args, strict=False):
            bound[param.name] = arg
            self._argument(fn, param.kind, arg, param.name)
        event_type = node.args[0] if node.args and params[0].kind == "event_type" else None
        by_name = {p.name: p for p in fn.params}
        seen: set[str] = set()
        for kw in node.keywords:
            if kw.arg is None:
                self.issue(kw, "E-EXPR-UNSAFE", "`**` unpacking is not part of the language")
                continue
            known = by_name.get(kw.arg)
            if kw.arg in bound or kw.arg in seen:
                self.issue(kw, "E-EXPR-ARGS", f"`{kw.arg}` is given twice")
                continue
            seen.add(kw.arg)
            if known is not None and known.keyword:
                bound[kw.arg] = kw.value
                self._argument(fn, known.kind, kw.value, kw.arg)
            elif fn.field_keywords and known is None:
                self._field_filter(kw, event_type, [p.name for p in fn.params if p.keyword])
            else:
                hint = did_you_mean(kw.arg, [p.name for p in fn.params if p.keyword])
                self.issue(kw, "E-EXPR-ARGS", f"`{fn.name}` has no keyword `{kw.arg}`", hint)
        for param in fn.params:
            if param.kind == "event_field" and param.name in bound:
                self._event_field(bound[param.name], event_type)
        for param in required:
            if param.name not in bound and len(node.args) >= len(required):
                msg = f"missing argument `{param.name}`: {fn.signature()}"
                self.issue(node, "E-EXPR-ARGS", msg)

    def _argument(self, fn: Function, kind: str, arg: ast.expr, pname: str) -> None:
        t = self.visit(arg)
        literal = arg.value if isinstance(arg, ast.Constant) else None
        if kind in ("event_type", "stage_id", "persona_id", "duration", "event_field"):
            if not isinstance(literal, str):
                self.issue(
                    arg,
                    "E-EXPR-TYPE",
                    f"`{pname}` of {fn.name}() must be a quoted {kind.replace('_', ' ')}, got {t}",
                )
                return
            self._literal(kind, arg, literal)
            return
        expected = T.STRING if kind == "pattern" else T.parse_type(kind)
        if not T.fits(t, expected):
            self.issue(arg, "E-EXPR-TYPE", f"`{pname}` of {fn.name}() needs a {expected}, got {t}")
            return
        if kind == "pattern" and isinstance(literal, str):
            try:
                self.out.resolved[id(arg)] = compile_pattern(literal)
            except PatternError as exc:
                self.issue(
                    arg,
                    "E-EXPR-REGEX",
                    f"re2 rejects the pattern: {exc}",
                    "re2 has no backreferences or lookaround",
                )
        elif kind == "pattern":
            # Not a literal, but what it may evaluate to can be written in the playbook
            # ("(" if c else lead.x): check those strings here, so a broken one is a
            # diagnostic, not a reject of every lead at run time.
            for node, value in _whole_constants(arg):
                try:
                    compile_pattern(value)
                except PatternError as exc:
                    self.issue(
                        node,
                        "E-EXPR-REGEX",
                        f"re2 rejects the pattern {value!r}: {exc}",
                        "re2 has no backreferences or lookaround",
                    )

    def _literal(self, kind: str, arg: ast.expr, value: str) -> None:
        if kind == "event_field":  # checked against the call's event type in _arguments
            self.out.resolved[id(arg)] = value
            return
        if kind == "duration":
            try:
                self.out.resolved[id(arg)] = parse_seconds(value)
            except DurationError as exc:
                self.issue(arg, "E-EXPR-DURATION", str(exc))
            return
        if kind == "stage_id":
            if self._stage_index(arg) is not None:
                self.out.resolved[id(arg)] = value
                known = self.vocab.content_stages
                if known and value not in known:
                    self.issue(
                        arg,
                        "W-EXPR-CONTENT",
                        f"no content is mapped to stage `{value}`",
                        "this is always False; map content to the stage",
                    )
            return
        pool = list(self.vocab.event_fields) if kind == "event_type" else list(self.vocab.personas)
        what = "event type" if kind == "event_type" else "persona"
        if value not in pool:
            self.issue(arg, "E-EXPR-REF", f"unknown {what} `{value}`", did_you_mean(value, pool))
            return
        self.out.resolved[id(arg)] = value

    def _event_field(self, arg: ast.expr, event_type: ast.expr | None) -> None:
        """A field argument (``sum("deal", "amount")``): one the event type declares."""
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return  # already reported: not a quoted field
        if not (isinstance(event_type, ast.Constant) and isinstance(event_type.value, str)):
            return
        etype, name = event_type.value, arg.value
        if etype not in self.vocab.event_fields:
            return
        declared = list(self.vocab.event_fields[etype])
        if name not in declared:
            hint = did_you_mean(name, declared) or (
                f"`{etype}` has fields: {', '.join(declared)}" if declared
                else f"`{etype}` declares no fields"
            )
            self.issue(arg, "E-EXPR-REF", f"`{etype}` events have no field `{name}`", hint)

    def _field_filter(self, kw: ast.keyword, event_type: ast.expr | None, keywords: Sequence[str]) -> None:
        t = self.visit(kw.value)
        if t.kind in ("list", "record"):
            self.issue(kw.value, "E-EXPR-TYPE", f"`{kw.arg}=` needs a single value, got {t}")
        if not isinstance(event_type, ast.Constant) or not isinstance(event_type.value, str):
            return
        etype = event_type.value
        if etype not in self.vocab.event_fields:
            return
        assert kw.arg is not None
        declared = list(self.vocab.event_fields[etype])
        if kw.arg not in declared:
            hint = did_you_mean(kw.arg, [*declared, *keywords]) or (
                f"`{etype}` has fields: {', '.join(declared)}"
                if declared
                else f"`{etype}` declares no fields"
            )
            msg = f"`{etype}` events have no field `{kw.arg}`"
            self.issue(kw, "E-EXPR-REF", msg, hint)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _literal_number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _literal_number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else float(node.value)
    return None


_EXPECTED_WORDS = {"bool": "a condition (true/false)", "number": "a number"}


def check(
    parsed: Parsed, vocabulary: Vocabulary, context: str, expected: Type
) -> tuple[Checked | None, list[ExprIssue]]:
    """Type-check ``parsed`` in ``context``; the whole expression must fit ``expected``."""
    unsafe = whitelist(parsed)  # the security boundary comes first
    if unsafe:
        return None, unsafe
    checker = Checker(parsed, vocabulary, context)
    result = checker.visit(parsed.tree)
    if not T.fits(result, expected) and not any(i.severity == "error" for i in checker.issues):
        want = _EXPECTED_WORDS.get(expected.kind, str(expected))
        checker.issue(parsed.tree, "E-EXPR-TYPE", f"this expression must be {want}, got {result}")
    checker.out.type = result if result != T.ANY else expected
    if any(i.severity == "error" for i in checker.issues):
        return None, checker.issues
    return checker.out, checker.issues


def _whole_constants(node: ast.expr) -> list[tuple[ast.expr, str]]:
    """The strings written in the playbook that ``node`` may evaluate to as a whole:
    a literal, or (recursively) either branch of ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node, node.value)]
    if isinstance(node, ast.IfExp):
        return _whole_constants(node.body) + _whole_constants(node.orelse)
    return []
