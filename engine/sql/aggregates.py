"""Catalogue functions over a lead's events as aggregate columns (one per distinct call).

Each is its registry entry's ``sql_aggregate`` form (:mod:`engine.functions`) over
the history CTE, whose ``age_us`` is the integer microseconds from an event to
as_of, so "within D" (``as_of - D < at``) is an exact integer comparison, as in
:class:`engine.history.History`.
"""

from __future__ import annotations

import ast

from sqlglot import exp

from engine.durations import parse_seconds
from engine.functions import FUNCTIONS
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
    """(aggregate over the lead's events, its value when the lead has no events): the
    registry entry's ``sql_aggregate`` form. Adds the event columns it reads to ``event_columns``."""
    entry = FUNCTIONS.get(fn)
    if entry is None or entry.sql_aggregate is None:
        raise NoSqlForm(f"function `{fn}` has no SQL form in this backend")
    return entry.sql_aggregate(_Aggregate(call, event_columns))


class _Aggregate:
    """One aggregate call as its SQL form sees it (:class:`engine.functions.SqlAggregateCall`)."""

    exp = exp
    us = US

    def __init__(self, node: ast.Call, event_columns: set[str]) -> None:
        self.node, self.event_columns = node, event_columns

    lit = staticmethod(lit)
    double = staticmethod(double)

    def col(self, name: str) -> exp.Expr:
        return col(name)

    def within(self, position: int) -> exp.Expr | None:
        seconds = within_seconds(self.node, position)
        return None if seconds is None else cmp_seconds("age_us", seconds)

    def filters(self) -> dict[str, object]:
        found = keyword_filters(self.node, ("within",))
        self.event_columns.update(found)
        return found

    def read(self, column: str) -> None:
        self.event_columns.add(column)


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
