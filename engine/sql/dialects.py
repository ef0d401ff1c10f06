"""Render the playbook query for one SQL dialect: sqlglot generates, we only choose.

Dialects are data (sqlglot's), not branches here. The differences we make:
``matches`` becomes a *search* in Snowflake, whose ``REGEXP_LIKE`` must match the
whole text, and epoch microseconds (``UNIX_MICROS``, DuckDB's ``EPOCH_US``) are
spelled ``DATE_PART(EPOCH_MICROSECOND, t)`` in Snowflake and from the exact
(NUMERIC) ``EXTRACT(EPOCH FROM t)`` in Postgres, which have no ``UNIX_MICROS``.
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
from engine.sql.query import build_query

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


def render(
    cp: CompiledPlaybook, target: str = "duckdb", as_of: datetime | None = None, pretty: bool = True
) -> str:
    """Formatted SQL for ``target``, headed by a comment saying what it reads and returns."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    query = build_query(cp, as_of)
    tree = _snowflake_search(query.tree) if target == "snowflake" else query.tree
    tree = _epoch_micros(tree, target)
    body = tree.sql(dialect=target, pretty=pretty)
    exprs = _expressions(cp)
    if target in _NOT_RE2 and any(FUNCTIONS[f].regex for e in exprs for f in e.functions):
        query.notes.append(
            f"matches() patterns run on {_NOT_RE2[target]}, not RE2: write patterns "
            "in the common subset (alternation, classes, (?i) prefix)"
        )
    if target in ("bigquery", "postgres") and any(
        isinstance(node, ast.Mod) for e in exprs for node in ast.walk(e.tree)
    ):
        query.notes.append(f"`%` on fractional numbers has no {target} form (MOD takes integers)")
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
