"""Bounds on what one expression may cost to parse, check and run.

Playbooks are reviewed but still untrusted text: a pasted 10 000-deep
parenthesis or ``9**9**9`` must become a diagnostic, never a RecursionError,
MemoryError or a hung CI job. Everything here is iterative and linear.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Callable

from engine.expr.issues import ExprIssue, make_issue

MAX_SOURCE_CHARS = 4000
MAX_DEPTH = 40
MAX_NODES = 400
#: ``**`` takes only a literal exponent with at most this magnitude.
MAX_EXPONENT = 10

SpanFn = Callable[[ast.AST], tuple[int, int]]


def source_issues(source: str, text: str) -> list[ExprIssue]:
    """Length, bracket depth and comments, checked with the tokenizer before parsing.

    ``text`` is ``source`` with newlines turned into spaces (same offsets).
    """
    if len(source) > MAX_SOURCE_CHARS:
        return [
            make_issue(
                source,
                "E-EXPR-LIMIT",
                f"expression is {len(source)} characters long; the limit is {MAX_SOURCE_CHARS}",
                0,
                len(source),
                "split it into named rules",
            )
        ]
    issues: list[ExprIssue] = []
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            offset = tok.start[1]
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    issues.append(
                        make_issue(
                            source,
                            "E-EXPR-LIMIT",
                            f"brackets nested more than {MAX_DEPTH} deep",
                            offset,
                            1,
                        )
                    )
                    break
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif tok.type == tokenize.COMMENT:
                issues.append(
                    make_issue(
                        source,
                        "E-EXPR-SYNTAX",
                        "comments are not allowed inside an expression",
                        offset,
                        len(tok.string),
                        "put the comment in YAML, outside the quoted expression",
                    )
                )
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # the parser reports it with a better message
    return issues


def tree_issues(source: str, tree: ast.AST, span: SpanFn) -> list[ExprIssue]:
    """Nesting depth and node count of a parsed tree, walked without recursion."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, ast.expr | ast.keyword):
            continue
        nodes += 1
        if depth > MAX_DEPTH:
            offset, length = span(node)
            msg = f"expression nested more than {MAX_DEPTH} levels deep"
            return [make_issue(source, "E-EXPR-LIMIT", msg, offset, length)]
        if nodes > MAX_NODES:
            msg = f"expression has more than {MAX_NODES} parts"
            return [make_issue(source, "E-EXPR-LIMIT", msg, 0, len(source))]
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return []
