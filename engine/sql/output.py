"""The output row: ``Decision.to_row()``'s columns, in its order, from the pipeline's columns."""

from __future__ import annotations

from sqlglot import exp

from engine.accounts import uses_accounts
from engine.compile import CompiledPlaybook
from engine.decision import EXCLUDED_SCORE_OFFSET, ROW_COLUMNS
from engine.sql.aggregates import col
from engine.sql.expressions import lit, not_null


def _by_handoff(values: list[str], default: str) -> exp.Expr:
    """``CASE handoff_index WHEN 0 THEN … ELSE default END``; just the default for a
    playbook without handoffs (a CASE with no WHEN is a syntax error)."""
    if not values:
        return lit(default)
    ifs = [exp.If(this=lit(i), true=lit(v)) for i, v in enumerate(values)]
    return exp.Case(this=col("handoff_index"), ifs=ifs, default=lit(default))


def output_select(cp: CompiledPlaybook, as_of: exp.Expr) -> exp.Select:
    """The last SELECT: ``Decision.to_row()``'s columns, in its order, from the pipeline's CTEs."""
    personas = [
        exp.Case(ifs=[exp.If(this=col(f"persona__{i}"), true=lit(f";{r.id}"))], default=lit(""))
        for i, r in enumerate(cp.personas)
    ]
    persona_list = exp.Substring(this=exp.Concat(expressions=personas), start=lit(2)) if personas else lit("")
    stage = exp.Case(
        this=col("stage_index"),
        ifs=[exp.If(this=lit(i), true=lit(s.rule.id)) for i, s in enumerate(cp.stages)],
    )
    owner = exp.Case(
        this=col("stage_index"),
        ifs=[exp.If(this=lit(i), true=lit(s.owner)) for i, s in enumerate(cp.stages)],
    )
    pick = [(h.rule.id, h.to) for h in cp.handoffs]
    route = _by_handoff([to for _, to in pick], "none")
    rule = _by_handoff([rid for rid, _ in pick], "")
    active = col("recycle_active")
    reason = exp.Case(ifs=[exp.If(this=active, true=col("recycle_reason"))], default=lit(""))
    rules = exp.Concat(
        expressions=[
            exp.Case(
                ifs=[
                    exp.If(
                        this=not_null(col("excluded")),
                        true=exp.Concat(expressions=[lit("exclusion:"), col("excluded"), lit(";")]),
                    )
                ],
                default=lit(""),
            ),
            lit("stage:"),
            stage.copy(),
            exp.Case(
                ifs=[
                    exp.If(
                        this=active.copy(),
                        true=exp.Concat(expressions=[lit(";recycle:"), col("recycle_reason")]),
                    )
                ],
                default=lit(""),
            ),
            exp.Case(
                ifs=[
                    exp.If(
                        this=not_null(col("handoff_index")),
                        true=exp.Concat(expressions=[lit(";handoff:"), rule.copy()]),
                    )
                ],
                default=lit(""),
            ),
        ]
    )
    columns: dict[str, exp.Expr] = {
        "lead_id": col("lead_id"),
        "as_of": as_of.copy(),
        "excluded": exp.Coalesce(this=col("excluded"), expressions=[lit("")]),
        "personas": persona_list,
        "target_account": col("target_account"),
        "target_lead": col("target_lead"),
        "fit": col("fit"),
        "engagement": col("engagement"),
        "surge": col("surge"),
        "stage": stage,
        "owner": owner,
        "recycle_reason": reason,
        "recycle_until": exp.Case(ifs=[exp.If(this=active.copy(), true=col("recycle_until"))]),
        "route": route,
        "handoff_rule": rule,
        "due": col("due"),
        "priority": col("priority"),
        "score": _score(),
        "rules": rules,
        **_account_columns(cp),
        "handoff_accepted": col("handoff_accepted"),
        "overdue": col("overdue"),
        "overdue_since": col("overdue_since"),
        "nurture_track": col("nurture_track"),
        "next_content": col("next_content"),
        # the week's columns: filled over the whole export (engine.sql.decisions.place_queues)
        "queue": lit(""),
        "queue_team": lit(""),
    }
    return exp.select(*(_named(columns[name], name) for name in ROW_COLUMNS))


def _account_columns(cp: CompiledPlaybook) -> dict[str, exp.Expr]:
    """The account columns (engine.sql.accounts); empty text for a playbook without accounts."""
    if not uses_accounts(cp):
        return {"account": lit(""), "account_primary": lit(""), "account_contacts": lit("")}
    return {"account": col("account_key"), "account_primary": col("account_primary"),
            "account_contacts": col("account_contacts")}


def _named(e: exp.Expr, name: str) -> exp.Expr:
    """A column under its row name (a column of that name as it is)."""
    return e if isinstance(e, exp.Column) and e.name == name else exp.alias_(e, name)


def _score() -> exp.Expr:
    """``engine.evaluate.rank_score``: priority, else fit + engagement; excluded leads lowest."""
    excluded = exp.Sub(this=col("score_base"), expression=exp.cast(lit(EXCLUDED_SCORE_OFFSET), "DOUBLE"))
    return exp.Case(
        ifs=[exp.If(this=not_null(col("excluded")), true=excluded),
             exp.If(this=not_null(col("priority")), true=col("priority"))],
        default=col("score_base"),
    )
