"""Expression diagnostics as plain data, positioned inside the expression text.

Positions are relative to the expression source, not the YAML file: ``line`` and
``col`` are 1-based (characters, not bytes), ``offset`` is the 0-based character
offset, ``length`` the number of characters to underline. The YAML layer adds
the scalar's own position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

#: Every code this package emits, with what it means.
CODES: dict[str, str] = {
    "E-EXPR-SYNTAX": "not a valid expression (parse error, comment, empty text)",
    "E-EXPR-LIMIT": "too long, too deep, too many nodes, or an unbounded `**`",
    "E-EXPR-UNSAFE": "a construct outside the language (attributes, subscripts, dunders, "
    "lambdas, comprehensions, f-strings, Python built-ins, ...)",
    "E-EXPR-NAME": "unknown name, function or record field",
    "E-EXPR-CONTEXT": "a name or function not known yet at this point of the pipeline",
    "E-EXPR-ARGS": "wrong number of arguments or an unknown keyword argument",
    "E-EXPR-TYPE": "a type error (string compared with number, arithmetic on strings, ...)",
    "E-EXPR-REF": "an unknown event type, event field, stage, persona or content stage",
    "E-EXPR-DURATION": "a malformed duration literal such as '14x'",
    "E-EXPR-REGEX": "a pattern re2 rejects (backreferences, lookaround, syntax errors)",
    "W-EXPR-NULL": "an ordering comparison with None, which is always False",
    "W-EXPR-CONTENT": "content_stage() of a stage no content is mapped to: always False",
}


@dataclass(frozen=True, slots=True)
class ExprIssue:
    """One problem in one expression; ``hint`` says how to fix it when we know."""

    code: str
    message: str
    line: int
    col: int
    length: int
    offset: int
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"{self.line}:{self.col}: {self.severity} {self.code}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, col) of the 0-based character ``offset`` in ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    start = source.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def make_issue(
    source: str,
    code: str,
    message: str,
    offset: int = 0,
    length: int = 0,
    hint: str | None = None,
) -> ExprIssue:
    """Build an issue at ``offset``; the severity follows the code's first letter."""
    line, col = position(source, offset)
    severity: Severity = "warning" if code.startswith("W-") else "error"
    return ExprIssue(code, message, line, col, max(length, 0), offset, hint, severity)
