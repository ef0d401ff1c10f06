"""The handoff's life in SQL (docs/handoffs.md, ``engine.handoff_life``): accepted, overdue, nurture.

Each part is an aggregate per lead registered with the query's other aggregates (so it
reads live events only), then a layer after the handoff's: the latest acceptance by each
team and the latest work of each team (``MAX(at)``: some event is after an instant exactly
when the latest is), and whether each content a nurture track sends was consumed.
"""

from __future__ import annotations

from sqlglot import exp

from engine.compile import CompiledPlaybook
from engine.sql.aggregates import col
from engine.sql.expressions import lit, not_null, two_valued

Aggregates = dict[str, tuple[str, exp.Expr, exp.Expr]]
#: A CTE's name and the columns it adds (alias, expression, comment): ``engine.sql.query``'s Layer.
Columns = tuple[str, list[tuple[str, exp.Expr, str | None]]]


def _latest(aggregates: Aggregates, key: str, cond: exp.Expr) -> exp.Expr:
    """``MAX(at) FILTER (WHERE cond)`` as a per-lead column (registered once under ``key``)."""
    if key not in aggregates:
        agg = exp.Filter(this=exp.Max(this=col("at")), expression=exp.Where(this=cond))
        aggregates[key] = (f"life__{len(aggregates)}", agg, exp.null())
    return col(aggregates[key][0])


def _consumed(aggregates: Aggregates, content: str) -> exp.Expr:
    key = f"life:consumed:{content}"
    if key not in aggregates:
        cond = exp.EQ(this=col("content"), expression=lit(content))
        agg = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond))
        aggregates[key] = (f"life__{len(aggregates)}", agg, lit(0))
    return exp.GT(this=col(aggregates[key][0]), expression=lit(0))


def life_layers(cp: CompiledPlaybook, aggregates: Aggregates, as_of: exp.Expr) -> list[Columns]:
    """``handoff_accepted``, ``overdue_since``, ``nurture_track``, ``next_content`` columns."""
    life = cp.life
    accepted_ifs, overdue_ifs = [], []
    for index, handoff in enumerate(cp.handoffs):
        team = handoff.to
        if life.accepted is not None:
            cond = exp.and_(exp.EQ(this=col("type"), expression=lit(life.accepted)),
                            exp.EQ(this=col("team"), expression=lit(team)))
            at = _latest(aggregates, f"life:accepted:{team}", cond)
            after = exp.GT(this=at, expression=col("recycled_at")) if cp.recycle else exp.true()
            later = exp.or_(exp.Is(this=col("recycled_at"), expression=exp.null()), after) \
                if cp.recycle else exp.true()
            accepted_ifs.append(exp.If(this=lit(index), true=two_valued(exp.and_(not_null(at), later))))
        work = sorted(life.worked_by(team))
        if work:
            cond = exp.In(this=col("type"), expressions=[lit(t) for t in work])
            worked = _latest(aggregates, f"life:work:{team}", cond)
            start = exp.TimestampAdd(this=col("due"), expression=exp.Neg(this=col("handoff_sla")),
                                     unit=exp.var("SECOND"))
            since = two_valued(exp.GTE(this=worked, expression=start))
            overdue_ifs.append(exp.If(this=lit(index), true=since))
    accepted = exp.Case(this=col("handoff_index"), ifs=accepted_ifs, default=exp.false()) \
        if accepted_ifs else exp.false()
    worked_now = exp.Case(this=col("handoff_index"), ifs=overdue_ifs, default=exp.false()) \
        if overdue_ifs else exp.false()
    answered: Columns = ("handoff_answer", [
        ("handoff_accepted", accepted,
         "accepted: the handoff's team accepted it after the latest recycle trigger"),
        ("team_worked", worked_now,
         "the team worked the lead (an event `by:` it) since the handoff's start (due - SLA)")])
    late = exp.and_(not_null(col("due")), exp.LT(this=col("due"), expression=as_of.copy()),
                    exp.not_(col("handoff_accepted")), exp.not_(col("team_worked")))
    since = exp.Case(ifs=[exp.If(this=late, true=col("due"))])
    overdue: Columns = ("handoff_overdue", [  # (no column of a layer reads another: Postgres)
        ("overdue_since", since,
         "overdue: due passed, not accepted, no work by the team since the handoff's start"),
        ("overdue", not_null(since.copy()), None)])
    tracks, contents = [], []
    nurtured = exp.and_(exp.Is(this=col("excluded"), expression=exp.null()),
                        exp.Is(this=col("handoff_index"), expression=exp.null()))
    for index, rule in enumerate(cp.recycle):
        if rule.nurture is None:
            continue
        is_rule = exp.and_(nurtured.copy(), exp.EQ(this=col("recycle_rule"), expression=lit(index)))
        tracks.append(exp.If(this=is_rule, true=lit(rule.nurture)))
        for stage_index, stage in enumerate(cp.stages):
            for item in life.tracks.get(rule.nurture, {}).get(stage.rule.id, ()):
                here = exp.and_(is_rule.copy(), exp.EQ(this=col("stage_index"), expression=lit(stage_index)),
                                exp.not_(_consumed(aggregates, item)))
                contents.append(exp.If(this=here, true=lit(item)))
    nurture: Columns = ("nurture", [
        ("nurture_track", exp.Case(ifs=tracks, default=lit("")) if tracks else lit(""),
         "nurture: the latest recycle reason's track, for a lead not excluded nor handed off"),
        ("next_content", exp.Case(ifs=contents, default=lit("")) if contents else lit(""),
         "the first content of the track for the lead's stage that no event consumed")])
    return [answered, overdue, nurture]
