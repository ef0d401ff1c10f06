"""Catalogue functions over a lead's events as aggregate columns (one per distinct call).

``count``, ``last``, ``days_since``, ``content_stage`` and ``count_since_recycle``
read the history CTE, whose ``age_us`` is the integer microseconds from an event to
as_of, so "within D" (``as_of - D < at``) is an exact integer comparison, as in
:class:`engine.history.History`.
"""

from __future__ import annotations

import ast

from sqlglot import exp

from engine.durations import parse_seconds
from engine.sql.expressions import NoSqlForm, double, keyword_filters, lit

#: Microseconds per second: ages are integer microseconds, as datetimes are.
US = 1_000_000


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table)


def epoch_us(timestamp: exp.Expr) -> exp.Expr:
    """Integer microseconds from the Unix epoch to a TIMESTAMPTZ instant (any session zone).

    Ages are differences of these: DuckDB's ``DATE_DIFF`` on TIMESTAMPTZ goes through
    the ICU calendar per row (~0.2 s per million events), ``EPOCH_US`` is a read.
    """
    return exp.UnixMicros(this=timestamp)


def age_us(as_of_us: exp.Expr, at: exp.Expr) -> exp.Expr:
    """``at`` to as_of in integer microseconds (``as_of_us`` already in epoch microseconds)."""
    return exp.Sub(this=as_of_us, expression=epoch_us(at))


def cmp_seconds(column: str, seconds: int) -> exp.Expr:
    """``as_of - seconds < at``, exactly, on integer microseconds."""
    return exp.LT(this=col(column), expression=lit(seconds * US))


def aggregate_sql(fn: str, call: ast.Call, event_columns: set[str]) -> tuple[exp.Expr, exp.Expr]:
    """(aggregate over the lead's events, its value when the lead has no events).

    Adds the event columns the aggregate reads to ``event_columns``.
    """
    first = call.args[0]
    assert isinstance(first, ast.Constant)
    if fn == "content_stage":
        stage = lit(first.value)
        cond: exp.Expr = exp.EQ(this=col("content_stage"), expression=stage)
        within = within_seconds(call, 1)
        if within is not None:
            cond = exp.and_(cond, cmp_seconds("age_us", within))
        event_columns.add("content")
        count = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond))
        return exp.GT(this=count, expression=lit(0)), exp.false()
    cond = exp.EQ(this=col("type"), expression=lit(first.value))
    if fn in ("count", "count_since_recycle"):
        within = within_seconds(call, 1) if fn == "count" else None
        if within is not None:
            cond = exp.and_(cond, cmp_seconds("age_us", within))
        for name, value in keyword_filters(call, ("within",)).items():
            event_columns.add(name)
            test = (
                exp.Is(this=col(name), expression=exp.null())
                if value is None
                else exp.EQ(this=col(name), expression=lit(value))
            )
            cond = exp.and_(cond, test)
        count = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond))
        return count, lit(0)
    if fn == "last":
        return exp.Max(this=exp.Case(ifs=[exp.If(this=cond, true=col("at"))])), exp.null()
    if fn == "days_since":
        youngest = exp.Min(this=exp.Case(ifs=[exp.If(this=cond, true=col("age_us"))]))
        days = exp.Div(
            this=exp.Div(this=double(youngest), expression=double(lit(US))),
            expression=double(lit(86400)),
        )
        return days, exp.null()
    raise NoSqlForm(f"function `{fn}` has no SQL form in this backend")


def within_seconds(call: ast.Call, position: int) -> int | None:
    """The ``within=`` window of a call in seconds (positional or keyword), if any."""
    node = (
        call.args[position]
        if len(call.args) > position
        else next((kw.value for kw in call.keywords if kw.arg == "within"), None)
    )
    if node is None:
        return None
    assert isinstance(node, ast.Constant) and isinstance(node.value, str)
    return parse_seconds(node.value)
