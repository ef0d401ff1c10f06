"""Render the playbook query for one SQL dialect: sqlglot generates, we only choose.

Dialects are data (sqlglot's), not branches here. The differences we make:
``matches`` becomes a *search* in Snowflake, whose ``REGEXP_LIKE`` must match the
whole text, and epoch microseconds (``UNIX_MICROS``, DuckDB's ``EPOCH_US``) are
spelled ``DATE_PART(EPOCH_MICROSECOND, t)`` in Snowflake and from the exact
(NUMERIC) ``EXTRACT(EPOCH FROM t)`` in Postgres, which have no ``UNIX_MICROS``.
Postgres and BigQuery have no modulo of doubles, so ``%`` is an exact ``fmod`` written in
double arithmetic; Postgres computes each step (CTE) once (``MATERIALIZED``) instead of
inlining them into each other. The Postgres form runs on a real server in CI
(tests/test_sql_postgres.py); Snowflake's and BigQuery's are only parsed back.
Regex flavours differ (DuckDB and BigQuery use RE2 like the Python path; Spark
Java, Postgres ARE, Snowflake POSIX): the header says so.
"""

from __future__ import annotations

import ast
from datetime import datetime

from sqlglot import exp

from engine.compile import CompiledPlaybook
from engine.expr import CompiledExpression
from engine.functions import FUNCTIONS
from engine.sql import TARGETS
from engine.sql.numeric import FMOD_QUOTIENT_LIMIT, fmod_exact
from engine.sql.query import build_query

#: Dialects whose MOD takes integers only: ``%`` becomes :func:`engine.sql.numeric.fmod_exact`.
_NO_FLOAT_MOD = ("postgres", "bigquery")
#: Where ``matches`` runs a regex engine other than RE2.
_NOT_RE2 = {"spark": "Java regex", "postgres": "POSIX ARE", "snowflake": "POSIX ERE"}


def _snowflake_search(tree: exp.Expr) -> exp.Expr:
    """REGEXP_LIKE(text, p) is a full match in Snowflake: use REGEXP_INSTR(...) > 0."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.RegexpLike):
            return node
        pattern = node.expression
        args: list[exp.Expr] = [node.this, pattern]
        if isinstance(pattern, exp.Literal) and pattern.this.startswith("(?i)"):
            args = [
                node.this,
                exp.Literal.string(pattern.this[4:]),
                exp.Literal.number(1),
                exp.Literal.number(1),
                exp.Literal.number(0),
                exp.Literal.string("i"),
            ]
        return exp.GT(
            this=exp.Anonymous(this="REGEXP_INSTR", expressions=args), expression=exp.Literal.number(0)
        )

    return tree.transform(fix, copy=False)


def _epoch_micros(tree: exp.Expr, target: str) -> exp.Expr:
    """UNIX_MICROS(t) in the dialects that lack it (Snowflake, Postgres)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.UnixMicros):
            return node
        if target == "snowflake":
            return exp.Extract(this=exp.var("EPOCH_MICROSECOND"), expression=node.this)
        seconds = exp.Extract(this=exp.var("EPOCH"), expression=node.this)  # NUMERIC since Postgres 14
        return exp.cast(exp.Mul(this=seconds, expression=exp.Literal.number(1_000_000)), "BIGINT")

    if target not in ("snowflake", "postgres"):
        return tree
    return tree.transform(fix, copy=False)


def _float_mod(tree: exp.Expr) -> exp.Expr:
    """``%`` of doubles where MOD takes only integers (Postgres, BigQuery): an exact ``fmod``."""

    def fix(node: exp.Expr) -> exp.Expr:
        return fmod_exact(node.this, node.expression) if isinstance(node, exp.Mod) else node

    return tree.transform(fix, copy=False)


def _sorted_lists(tree: exp.Expr) -> exp.Expr:
    """``array_to_string(array_sort(array_agg(x)), sep)`` (an account's listed contacts) where
    Postgres has no ``array_sort``: ``string_agg(x, sep ORDER BY x COLLATE "C")`` — code point
    order, as Python's ``sorted``, whatever the database's collation."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.ArrayToString) and isinstance(node.this, exp.ArraySort)
                and isinstance(node.this.this, exp.ArrayAgg)):
            return node
        value = node.this.this.this
        ordered = exp.Ordered(this=exp.Collate(this=value.copy(), expression=exp.Identifier(this="C",
                                                                                            quoted=True)))
        return exp.GroupConcat(this=exp.Order(this=value.copy(), expressions=[ordered]),
                               separator=node.expression.copy())

    return tree.transform(fix, copy=False)


def _materialized(tree: exp.Expr) -> exp.Expr:
    """Postgres inlines a CTE read once into its reader; the query's steps each read the one before
    several times, so inlined they nest exponentially and planning runs out of memory. Each step
    is computed once instead (``AS MATERIALIZED``, Postgres 12+), as DuckDB and Spark do."""
    for cte in tree.find_all(exp.CTE):
        cte.set("materialized", True)
    return tree


def render(
    cp: CompiledPlaybook, target: str = "duckdb", as_of: datetime | None = None, pretty: bool = True
) -> str:
    """Formatted SQL for ``target``, headed by a comment saying what it reads and returns."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    query = build_query(cp, as_of)
    tree = _snowflake_search(query.tree) if target == "snowflake" else query.tree
    tree = _epoch_micros(tree, target)
    if target == "postgres":
        tree = _sorted_lists(_materialized(tree))
    if target in _NO_FLOAT_MOD:
        tree = _float_mod(tree)
    body = tree.sql(dialect=target, pretty=pretty)
    exprs = _expressions(cp)
    if target in _NOT_RE2 and any(FUNCTIONS[f].regex for e in exprs for f in e.functions):
        query.notes.append(
            f"matches() patterns run on {_NOT_RE2[target]}, not RE2: write patterns "
            "in the common subset (alternation, classes, (?i) prefix)"
        )
    if target in _NO_FLOAT_MOD and any(isinstance(node, ast.Mod) for e in exprs for node in ast.walk(e.tree)):
        query.notes.append(f"`%` is an exact fmod in double arithmetic ({target}'s MOD takes integers); "
                           f"NULL when |a / b| >= 2**{FMOD_QUOTIENT_LIMIT.bit_length() - 1}")
    if target == "postgres":
        query.notes.append("a product, quotient or power whose result underflows a double (below about "
                           "1e-308) stops with Postgres' 'value out of range: underflow' (Python gives 0.0); "
                           "one that overflows it stops with '... overflow' (Python gives inf)")
    pb = cp.playbook
    lead_cols = ", ".join(["lead_id", *(f"{k} {v}" for k, v in query.lead_columns.items())])
    event_cols = ", ".join(
        ["lead_id", "event_id", "occurred_at TIMESTAMPTZ", "type", "seq", *query.event_columns]
    )
    header = [
        f"-- playbook {pb.metadata.name} {pb.metadata.version} ({cp.source}), target {target}",
        f"-- reads leads({lead_cols})",
        f"--       events({event_cols})",
        "-- returns one row per lead: the columns of Decision.to_row() (timestamps as TIMESTAMPTZ)",
        *(f"-- note: {n}" for n in query.notes),
    ]
    if as_of is None:
        header.append("-- parameter :as_of: the decision instant (TIMESTAMPTZ)")
    return "\n".join(header) + "\n" + body + ";\n"


def _expressions(cp: CompiledPlaybook) -> list[CompiledExpression]:
    """Every compiled expression of the playbook."""
    from engine.pipeline import expression_sites

    return [site.expr for site in expression_sites(cp)]
