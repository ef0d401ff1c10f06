"""The whitelist: the security boundary every expression passes before anything runs.

simpleeval's history of escapes (``().__class__.__bases__``, ``str.format`` field
walks, generator frames, ``9**9**9``) comes from evaluating first and forbidding
later. Here a tree is rejected up front unless every node is of a type the
language defines, so neither interpreter ever sees anything else.
"""

from __future__ import annotations

import ast
import builtins

from engine.expr.issues import ExprIssue, make_issue
from engine.expr.parse import Parsed
from engine.functions import FUNCTIONS, NAMES

BUILTINS = frozenset(dir(builtins))
RECORDS = frozenset(n for n, e in NAMES.items() if e.type == "record")
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)

#: Friendly names for the constructs people try; all are outside the language.
FORBIDDEN = {
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "`:=`",
    ast.Starred: "`*` unpacking",
    ast.Subscript: "subscripts (`x[...]`)",
    ast.Slice: "slices",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.Tuple: "tuples",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_SAFE_NODES = (
    ast.Constant, ast.Name, ast.Attribute, ast.List, ast.UnaryOp, ast.BinOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Call, ast.keyword,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context,
)  # fmt: skip
_SAFE_OPS = (*_ARITH, ast.Not, ast.USub, ast.UAdd)


def whitelist(parsed: Parsed) -> list[ExprIssue]:
    """The security boundary, run before anything else looks at the tree.

    Only the node types below pass; attributes only on a record name and never
    with a leading underscore; calls only of a bare name; no Python built-ins or
    dunder names. Type checking and both interpreters assume this held.
    """
    issues: list[ExprIssue] = []

    def unsafe(node: ast.AST, message: str) -> None:
        offset, length = parsed.span(node)
        issues.append(make_issue(parsed.source, "E-EXPR-UNSAFE", message, offset, length))

    for node in ast.walk(parsed.tree):
        if not isinstance(node, _SAFE_NODES):
            what = FORBIDDEN.get(type(node), f"`{type(node).__name__}`")
            unsafe(node, f"{what}: not part of the expression language")
        elif isinstance(node, ast.operator | ast.unaryop) and not isinstance(node, _SAFE_OPS):
            pass  # reported on the BinOp/UnaryOp that holds it
        elif isinstance(node, ast.BinOp | ast.UnaryOp) and not isinstance(node.op, _SAFE_OPS):
            msg = "bitwise operators are not part of the language"
            unsafe(node, msg)
        elif isinstance(node, ast.Attribute):
            base = node.value
            if node.attr.startswith("_"):
                msg = f"attribute `{node.attr}` is not accessible"
                unsafe(node, msg)
            elif not (isinstance(base, ast.Name) and base.id in RECORDS):
                msg = "attribute access is only allowed on records (`lead.title`, `lists.partners`)"
                unsafe(node, msg)
        elif isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            msg = "only catalogue functions can be called, by name"
            unsafe(node.func, msg)
        elif isinstance(node, ast.keyword) and node.arg is None:
            unsafe(node, "`**` unpacking is not part of the language")
        elif isinstance(node, ast.Name) and node.id not in NAMES and node.id not in FUNCTIONS:
            if node.id.startswith("_") or node.id in BUILTINS:
                msg = f"Python's `{node.id}` is not available in expressions"
                unsafe(node, msg)
        elif isinstance(node, ast.Constant) and not (
            node.value is None or isinstance(node.value, bool | int | float | str)
        ):
            msg = f"{type(node.value).__name__} literals are not supported"
            unsafe(node, msg)
    return sorted(issues, key=lambda i: i.offset)
