"""Source text → Python ``ast`` expression, with limits and character positions.

Python's own parser (``mode="eval"``) gives us the grammar users already know
from simpleeval; :mod:`engine.expr.check` then whitelists the node types. YAML
block scalars may span lines, so newlines are turned into spaces before parsing
(same length, so offsets still index the original text).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from engine.expr.issues import ExprIssue, make_issue
from engine.expr.limits import source_issues, tree_issues


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed expression: the original text, its one-line form and its tree."""

    source: str
    text: str
    tree: ast.expr

    def span(self, node: ast.AST) -> tuple[int, int]:
        """0-based character offset and length of ``node`` in the source."""
        start = _char_offset(self.text, getattr(node, "col_offset", 0))
        end_byte = getattr(node, "end_col_offset", None)
        end = _char_offset(self.text, end_byte) if end_byte is not None else start + 1
        return start, max(end - start, 1)


def _char_offset(text: str, byte_offset: int) -> int:
    """The AST reports UTF-8 byte columns; diagnostics want characters (e.g. 部長)."""
    if text.isascii():
        return byte_offset
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def parse(source: str) -> tuple[Parsed | None, list[ExprIssue]]:
    """Parse ``source``; return the tree or the issues that stopped it."""
    text = source.replace("\r", " ").replace("\n", " ")
    if not text.strip():
        return None, [make_issue(source, "E-EXPR-SYNTAX", "the expression is empty")]
    issues = source_issues(source, text)
    if any(i.severity == "error" for i in issues):
        return None, issues
    try:
        module = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        return None, [_syntax_issue(source, text, exc)]
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        # CPython raises these for pathological input the tokenizer let through.
        msg = f"the expression cannot be parsed: {type(exc).__name__}"
        return None, [make_issue(source, "E-EXPR-LIMIT", msg, 0, len(source))]
    lead = len(text) - len(text.lstrip())
    if lead:  # positions must index the unstripped text
        for node in ast.walk(module):
            if isinstance(node, ast.expr | ast.keyword):
                node.col_offset += lead
                if node.end_col_offset is not None:
                    node.end_col_offset += lead
    parsed = Parsed(source, text, module.body)
    limit = tree_issues(source, module.body, parsed.span)
    if limit:
        return None, limit
    return parsed, []


_GENERIC_HINT = 'expressions use Python syntax, e.g. `fit >= 30 and count("inquiry") > 0`'
#: Operators from other languages, and what to write instead.
_FOREIGN = (
    ("&&", "write `and`"),
    ("||", "write `or`"),
    ("=<", "write `<=`"),
    ("=>", "write `>=`"),
    ("<>", "write `!=`"),
    ("!", "write `not`"),
    ("=", "compare with `==`"),
)


def _syntax_issue(source: str, text: str, exc: SyntaxError) -> ExprIssue:
    lead = len(text) - len(text.lstrip())
    message = exc.msg
    if not exc.offset:  # CPython gives 0 when the input ends before the expression does
        offset, length = len(text.rstrip()), 0
        if message == "invalid syntax":
            message = "the expression ends too early"
    else:
        offset = lead + exc.offset - 1
        end = exc.end_offset if exc.end_offset and exc.end_offset > exc.offset else None
        length = end - exc.offset if end else 1
    hint = _GENERIC_HINT
    for spelling, advice in _FOREIGN if exc.offset else ():
        # CPython points at the first or the second character of `&&` / `||`.
        at = next((o for o in (offset, offset - 1) if text.startswith(spelling, max(o, 0))), None)
        if at is not None and not (
            spelling == "=" and (text.startswith("==", at) or (at > 0 and text[at - 1] in "=<>!"))
        ):
            hint, offset, length = advice, max(at, 0), len(spelling)
            break
    return make_issue(source, "E-EXPR-SYNTAX", message, offset, length, hint)
