"""The playbook expression language: parse → check → compile, plus a reference.

Expressions (``when``, ``entry``, ``priority``, ``reenter_when``) use Python's
syntax as simpleeval does: comparisons (chained too), ``and``/``or``/``not``,
``+ - * / // %``, unary ``-``, ``**`` with a literal exponent (|e| <= 10),
``in``/``not in``, literals (numbers, strings, True/False/None, lists),
``a if c else b``, record fields (``lead.title``, ``lists.competitors``) and calls
of catalogue functions (:mod:`engine.functions`), keywords where declared. Nothing
else parses into something runnable: no other attributes, subscripts, dunders,
lambdas, comprehensions, f-strings, walrus, starred, Python built-ins.

Stages: ``stage`` compares by stage *order*: ``stage >= "promising"`` compiles to
comparing stage indexes; the quoted id must be a declared stage.

**Null semantics** (both interpreters; lead fields and some functions give None):

- ``==`` / ``!=`` are total: ``x == None`` is True exactly when x is missing
  (``is None`` / ``is not None`` mean the same).
- ``< <= > >=``, ``in`` and ``not in`` with None on either side are False (like
  SQL, so ``x not in L`` is *not* ``not (x in L)`` when x is None).
- Arithmetic with a None operand gives None; so do ``/``, ``//``, ``%`` by zero
  and any overflow. ``**`` computes in floats. Numbers are ints or floats; bools
  are not numbers (``True + 1`` is a type error).
- ``and``/``or``/``not`` and the test of ``if``/``else`` treat None as False and
  return booleans.
- ``matches(None, p)`` is False; ``lower(None)``, ``min``/``max`` with a None, and
  ``days_since``/``last`` of a type never seen are None.
- Values whose run-time type contradicts the declared one (an undeclared lead
  field holding text compared with a number) behave as None: False / None.

**Diagnostics** are :class:`ExprIssue` with a code from
:data:`engine.expr.issues.CODES`: E-EXPR-SYNTAX, E-EXPR-LIMIT, E-EXPR-UNSAFE,
E-EXPR-NAME, E-EXPR-CONTEXT, E-EXPR-ARGS, E-EXPR-TYPE, E-EXPR-REF,
E-EXPR-DURATION, E-EXPR-REGEX (errors) and W-EXPR-NULL, W-EXPR-CONTENT
(warnings). ``line``/``col`` are 1-based within the expression text, ``offset``
is the 0-based character offset, ``length`` the characters to underline.

Examples:
    >>> from datetime import datetime, timezone
    >>> from engine.events import Event
    >>> from engine.history import History
    >>> vocab = Vocabulary(event_fields={"call": ["outcome"], "inquiry": []},
    ...                    stages=["lead", "nurturing", "promising"])
    >>> expr, issues = compile_expression(
    ...     'stage >= "promising" or count("inquiry", within="14d") > 0',
    ...     vocab, "handoff", "bool")
    >>> sorted(expr.names), sorted(expr.functions)
    (['stage'], ['count'])
    >>> t = datetime(2026, 1, 10, tzinfo=timezone.utc)
    >>> history = History([Event("inquiry", datetime(2026, 1, 5, tzinfo=timezone.utc))], t)
    >>> expr(Scope({"stage": 1}, history)), expr.reference(Scope({"stage": 1}, history))
    (True, True)
    >>> _, issues = compile_expression('stage >= "promissing"', vocab, "stage", "bool")
    >>> [(i.code, i.col, i.length) for i in issues]
    [('E-EXPR-CONTEXT', 1, 5)]
    >>> _, issues = compile_expression('count("inquiri") > 0', vocab, "fit", "bool")
    >>> print(issues[0])
    1:7: error E-EXPR-REF: unknown event type `inquiri` (did you mean `inquiry`?)
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.expr import types as T
from engine.expr.check import check
from engine.expr.compile import compile_checked
from engine.expr.facts import Comparison, numeric_comparisons
from engine.expr.issues import CODES, ExprIssue
from engine.expr.parse import Parsed, parse
from engine.expr.scope import Scope
from engine.expr.types import Type
from engine.functions import Vocabulary

__all__ = [
    "CODES",
    "Comparison",
    "CompiledExpression",
    "ExprIssue",
    "Scope",
    "Type",
    "Vocabulary",
    "compile_expression",
]


@dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A checked expression ready to run: ``expr(scope)`` evaluates it for one lead.

    ``names`` are catalogue names used (``lead``, ``fit``, ...), ``fields`` the
    record fields (``lead.title``), ``functions`` the catalogue functions called,
    ``warnings`` the non-fatal issues found while checking.
    """

    source: str
    type: Type
    context: str
    names: frozenset[str]
    fields: frozenset[str]
    functions: frozenset[str]
    warnings: tuple[ExprIssue, ...]
    vocabulary: Vocabulary
    parsed: Parsed = field(repr=False)
    _fn: Callable[[Scope], Any] = field(repr=False)
    #: Literal arguments the checker resolved, by ``id(node)`` of ``tree``'s nodes
    #: (durations → seconds, stage ids → indexes, patterns → re2 programs).
    resolved: Mapping[int, Any] = field(default_factory=dict, repr=False)

    def __call__(self, scope: Scope) -> Any:
        return self._fn(scope)

    @property
    def tree(self) -> ast.expr:
        """The checked Python AST (read-only by convention)."""
        return self.parsed.tree

    def reference(self, scope: Scope) -> Any:
        """Evaluate with the simpleeval reference interpreter (slow; for tests)."""
        from engine.expr.reference import evaluate

        return evaluate(self, scope)

    def comparisons(self) -> tuple[Comparison, ...]:
        """``name op number`` facts, e.g. ``engagement >= 40`` → ("engagement", ">=", 40)."""
        return numeric_comparisons(self.parsed.tree)


def compile_expression(
    source: str,
    vocabulary: Vocabulary,
    context: str,
    expected_type: Type | str = "bool",
) -> tuple[CompiledExpression | None, list[ExprIssue]]:
    """Parse, check and compile ``source`` where ``context`` says it sits.

    Args:
        source: the expression text as written in the YAML scalar.
        vocabulary: what the playbook declares (events, stages, personas, lists, fields).
        context: one of :data:`engine.functions.CONTEXTS`.
        expected_type: ``"bool"`` for conditions, ``"number"`` for priorities.

    Returns:
        The compiled expression (None if there are errors) and every issue found.
    """
    expected = T.parse_type(expected_type) if isinstance(expected_type, str) else expected_type
    parsed, issues = parse(source)
    if parsed is None:
        return None, issues
    checked, issues = check(parsed, vocabulary, context, expected)
    if checked is None:
        return None, issues
    compiled = CompiledExpression(
        source=source,
        type=checked.type,
        context=context,
        names=frozenset(checked.names),
        fields=frozenset(checked.fields),
        functions=frozenset(checked.functions),
        warnings=tuple(issues),
        vocabulary=vocabulary,
        parsed=parsed,
        _fn=compile_checked(checked),
        resolved=dict(checked.resolved),
    )
    return compiled, issues
