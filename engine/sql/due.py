"""The handoff anchor (:mod:`engine.due`) in SQL: per-lead columns and the ``CASE`` that picks one.

``due_anchor(lead_id, due__0, ...)`` has, per timed term, the instant its
plan needs: the first matching event (``first``), the last one (``after``, the query adds
the threshold), or the first event of the current run (``run``: a matching event whose
predecessor is more than the window earlier, found with ``LAG``). Only events at or before
as_of are read, as ``engine.due.anchor_us`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from engine.due import DuePlan, Term
from engine.sql.aggregates import US, col, epoch_us
from engine.sql.expressions import lit


class DueColumns:
    """The distinct terms of every plan, each a column of ``due_anchor``."""

    def __init__(self, plans: Sequence[DuePlan], event_columns: set[str]) -> None:
        self.plans = plans
        self.terms: list[Term] = []
        for plan in plans:
            for term in plan.terms:
                if term not in self.terms:
                    self.terms.append(term)
                    event_columns.update(name for name, _ in term.fields)

    def needed(self) -> bool:
        """Whether any handoff has an exact anchor (else due counts from ``last_at``)."""
        return any(plan.exact for plan in self.plans)

    def first_needed(self) -> bool:
        """Whether a handoff held since the lead's first activity (``first_at``, per lead)."""
        return any(plan.exact and not plan.terms for plan in self.plans)

    def ctes(self, live: exp.Expr) -> list[tuple[str, exp.Expr]]:
        """``due_events`` (the live events of the terms' types, with each run term's
        predecessor) and ``due_anchor``; none when no plan has a term."""
        if not self.terms:
            return []
        at_us = epoch_us(col("at"))
        selects: list[exp.Expr] = [col("lead_id"), col("at"), exp.alias_(at_us, "at_us")]
        for k, term in enumerate(self.terms):
            selects.append(exp.alias_(_match(term), f"match__{k}"))
            if term.kind == "run":
                previous = exp.Window(
                    this=exp.Lag(this=at_us.copy()),
                    partition_by=[col("lead_id"), _match(term)],
                    order=exp.Order(expressions=[exp.Ordered(this=at_us.copy())]),
                )
                selects.append(exp.alias_(previous, f"previous__{k}"))
        types = exp.In(this=col("type"), expressions=[lit(t) for t in sorted({t.type for t in self.terms})])
        events = exp.select(*selects).from_("history", copy=False).where(exp.and_(live, types), copy=False)
        columns: list[exp.Expr] = [col("lead_id")]
        for k, term in enumerate(self.terms):
            where: exp.Expr = col(f"match__{k}")
            if term.kind == "run":
                gap = exp.GT(this=exp.Sub(this=col("at_us"), expression=col(f"previous__{k}")),
                             expression=lit(term.seconds * US))
                where = exp.and_(where, exp.or_(exp.Is(this=col(f"previous__{k}"), expression=exp.null()),
                                                gap))
            agg = exp.Max if term.kind in ("after", "run") else exp.Min
            columns.append(exp.alias_(
                exp.Filter(this=agg(this=col("at")), expression=exp.Where(this=where)), f"due__{k}"))
        anchor = exp.select(*columns).from_("due_events", copy=False).group_by(col("lead_id"), copy=False)
        return [("due_events", events), ("due_anchor", anchor)]

    def facts(self) -> list[exp.Expr]:
        """The columns ``lead_facts`` takes from ``due_anchor`` (alias ``d``)."""
        return [col(f"due__{k}", "d") for k in range(len(self.terms))]

    def anchor(self, index: int, as_of: exp.Expr) -> exp.Expr:
        """Handoff ``index``'s anchor, a TIMESTAMPTZ (the handoff layer adds the SLA)."""
        plan = self.plans[index]
        if not plan.exact:
            return exp.Coalesce(this=col("last_at"), expressions=[as_of.copy()])
        if not plan.terms:
            return exp.Coalesce(this=col("first_at"), expressions=[as_of.copy()])
        starts: list[exp.Expr] = []
        for term in plan.terms:
            start: exp.Expr = col(f"due__{self.terms.index(term)}")
            if term.kind == "after":
                start = exp.TimestampAdd(this=start, expression=lit(term.seconds), unit=exp.var("SECOND"))
            starts.append(start)
        latest = starts[0] if len(starts) == 1 else exp.Greatest(this=starts[0], expressions=starts[1:])
        return exp.Coalesce(this=latest, expressions=[as_of.copy()])


def _match(term: Term) -> exp.Expr:
    cond: exp.Expr = exp.EQ(this=col("type"), expression=lit(term.type))
    for name, value in term.fields:
        test = (exp.Is(this=col(name), expression=exp.null()) if value is None
                else exp.EQ(this=col(name), expression=lit(value)))
        cond = exp.and_(cond, test)
    return cond

