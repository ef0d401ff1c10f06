"""Which playbook constructs have no SQL form — known at validate time, without sqlglot.

``engine validate`` must start in a few hundred milliseconds and sqlglot alone takes
over a hundred to import, so the compiler (:mod:`engine.sql.query`) cannot run there.
This module walks the same expression trees with the same rules as
:class:`engine.sql.expressions.Translator` and the query builder, and says where a
``--backend duckdb|spark`` run would stop with :class:`~engine.sql.NoSqlForm`, so
authors see it as a warning (``W-NO-SQL-FORM``) before anyone runs a batch.

It is a mirror, so a test (tests/test_sql_support.py) keeps it honest: over the
repository's playbooks and one variant per construct, this check finds a construct
exactly when ``build_query`` raises, with the same wording.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from engine.compile import CompiledPlaybook, NodePath
from engine.diagnostics import Diagnostic, Severity
from engine.expr import CompiledExpression
from engine.functions import FUNCTIONS
from engine.load import Document
from engine.pipeline import expression_sites

CODE = "W-NO-SQL-FORM"
#: Names the query has a column for (``engine.sql.query._Builder.names``).
SQL_NAMES = frozenset({"target_account", "target_lead", "recent", "prior", "fit", "engagement", "surge",
                       "stage", "engagement_since_recycle", "events_since_recycle"})
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_LITERALS = (type(None), bool, int, float, str)


def expressions(cp: CompiledPlaybook) -> Iterator[tuple[NodePath, str, CompiledExpression]]:
    """Every compiled expression, with its place in the document and the query's name for it."""
    for site in expression_sites(cp):
        where = site.section.key if site.rule is None else f"{site.section.key}.{site.rule}"
        path = site.path if site.branch is None else (*site.path, "first_of", site.branch)
        if site.role != "when":
            path, where = (*path, site.role), f"{where}.{site.role}"
        yield path, where, site.expr


def gaps(cp: CompiledPlaybook) -> Iterator[tuple[NodePath, str]]:
    """(where, what) for each construct the SQL backends cannot run, as NoSqlForm words it."""
    declared = bool(cp.playbook.lead.fields)
    for path, where, expr in expressions(cp):
        for what in _walk(expr.tree, declared):
            bare = what.startswith(("`lead.", "`")) and ("=` filter" in what or what.startswith("`lead."))
            yield path, f"{what} has no SQL form in this backend" if "=` filter" in what else (
                what if bare else f"{where}: {what} has no SQL form in this backend")
    for path, pattern in _globs(cp):
        if "[" in pattern:
            yield path, f"content pattern `{pattern}`: bracket globs have no SQL form in this backend"
    source = cp.playbook.lead.source
    if source is not None and cp.sources and source not in cp.playbook.lead.fields:
        yield ("lead", "source"), f"lead.source `{source}` must be a declared lead field for SQL"


def _globs(cp: CompiledPlaybook) -> Iterator[tuple[NodePath, str]]:
    for key in cp.playbook.content:
        yield ("content", key), key
    engagement = cp.playbook.scoring.engagement if cp.playbook.scoring else None
    for event_type, points in (engagement.points.items() if engagement is not None else ()):
        content = getattr(points, "content", None)
        if isinstance(content, dict):
            for key in content:
                yield ("scoring", "engagement", "points", event_type, "content", key), key


def _walk(node: ast.AST, declared: bool) -> Iterator[str]:
    """What in ``node`` has no SQL form (``Translator.value``'s cases, in its order)."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _LITERALS):
            yield f"a {type(node.value).__name__} literal"
    elif isinstance(node, ast.Name):
        if node.id not in SQL_NAMES:
            yield f"the name `{node.id}`"
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id == "lists":
            yield f"`lists.{node.attr}` outside `in`"
        elif node.value.id == "account":
            pass  # engine.sql.accounts
        elif not declared:
            yield f"`lead.{node.attr}`: the SQL backend needs the playbook to declare lead.fields"
    elif isinstance(node, ast.List):
        yield "a list outside `in`"
    elif isinstance(node, ast.UnaryOp):
        yield from _walk(node.operand, declared)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _walk(value, declared)
    elif isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            yield from _walk(part, declared)
    elif isinstance(node, ast.BinOp):
        yield from _walk(node.left, declared)
        yield from _walk(node.right, declared)
        if not isinstance(node.op, _OPERATORS):
            yield f"operator `{type(node.op).__name__}`"
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            yield from _walk(left, declared)
            if isinstance(op, ast.In | ast.NotIn):
                yield from _members(right, declared)
            else:
                yield from _walk(right, declared)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        yield from _call(node, declared)
    else:
        yield f"`{type(node).__name__}`"


def _members(node: ast.AST, declared: bool) -> Iterator[str]:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "lists":
        return
    if isinstance(node, ast.List):
        for item in node.elts:
            if not (isinstance(item, ast.Constant) and item.value is None):
                yield from _walk(item, declared)
        return
    if isinstance(node, ast.Constant) and node.value is None:
        return
    yield from _walk(node, declared)


def _call(node: ast.Call, declared: bool) -> Iterator[str]:
    """The registry entry's ``sql_gaps`` (its SQL form's refusals, without sqlglot)."""
    assert isinstance(node.func, ast.Name)
    fn = FUNCTIONS.get(node.func.id)
    if fn is None or fn.sql_gaps is None:
        yield f"function `{node.func.id}`"
        return
    yield from fn.sql_gaps(node, lambda child: _walk(child, declared))


def lint_no_sql_form(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """A warning at each construct ``--backend duckdb|spark`` would refuse (the Python path runs it)."""
    for path, what in gaps(cp):
        yield doc.diagnostic(path, CODE, f"{what} (`engine evaluate` needs --backend python for it)",
                             severity=Severity.WARNING, key=path[0] == "content" or "content" in path,
                             hint="rewrite it in a form the SQL backends support, or use --backend python")
