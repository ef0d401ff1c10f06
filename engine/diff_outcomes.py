"""Outcome impact of a rule change: each team's queue at capacity measured before → after.

A reviewer asks whether a change is *better*, not only what it moves. When the export
comes with outcomes (the mapping's ``outcomes`` section, ``--outcomes FILE``), this
observer of :func:`engine.diff_impact.impact` takes the decisions the impact already
computes — it never re-decides — and, for every team, measures the leads in its queue
cut at weekly capacity on each side (the very cut whose churn the impact reports):
precision, recall and lift with 95% intervals, and the AUC of the whole ranking (the
decision row's ``score``). The maths is :mod:`engine.measure.metrics`, as in
``engine backtest``; a lead is measured as there (an outcome dated at or before
``--as-of`` was already known and is left out, and so is a lead created after it).

Both sides are measured on the same leads with the same outcomes, so recall's
denominator and the base rate are shared and the two columns compare directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.compile import CompiledPlaybook
from engine.decision import Decision, rank_score
from engine.diff_impact import QueueCut
from engine.measure.outcomes import Outcomes

#: Why a decided lead is not measured (counted, and said in the report).
LEFT_OUT = ("no_outcome", "converted_before_as_of", "created_after_as_of")


def _score(decision: Decision) -> float:
    """The decision row's ``score`` column (``engine.decision.rank_score``)."""
    priority = decision.handoff.priority if decision.handoff is not None else None
    return rank_score(decision.excluded, decision.fit, decision.engagement, priority)


class OutcomeImpact:
    """Observer: labels each decided lead, then measures both sides' queues in ``report``.

    ``queues`` is the impact's own :class:`QueueCut` (fed by :func:`impact`), so the
    queue measured here is exactly the one whose entered/left counts the plan shows.
    """

    name = "outcomes"

    def __init__(self, queues: QueueCut, outcomes: Outcomes, as_of: datetime,
                 created: Mapping[str, datetime] | None = None, warnings: tuple[str, ...] = ()) -> None:
        self.queues, self.outcomes, self.as_of = queues, outcomes, as_of
        self.created = created or {}
        self.warnings = list(warnings)
        self.labels: dict[str, bool] = {}
        self.scores: tuple[list[float], list[float]] = ([], [])
        self.measured: list[bool] = []
        self.left_out = dict.fromkeys(LEFT_OUT, 0)

    def observe(self, row: int, old: Decision, new: Decision) -> None:
        """Label the lead from its outcome, or count why it cannot be measured."""
        lead_id = old.lead_id
        born = self.created.get(lead_id)
        outcome = self.outcomes.get(lead_id)
        label = None
        if born is not None and born > self.as_of:
            self.left_out["created_after_as_of"] += 1
        elif outcome is None:
            self.left_out["no_outcome"] += 1
        else:
            label = outcome.converted_within(self.as_of if self.outcomes.dated else None, None)
            if label is None:
                self.left_out["converted_before_as_of"] += 1
        if label is None:
            return
        self.labels[lead_id] = label
        self.scores[0].append(_score(old))
        self.scores[1].append(_score(new))
        self.measured.append(label)

    def report(self) -> dict[str, Any]:
        """``export_impact.outcomes``: per team before → after, the AUC, what was left out."""
        import numpy as np

        from engine.measure.metrics import auc, cut

        labels = np.array(self.measured, dtype=np.bool_)
        measured, positives = int(labels.size), int(labels.sum())
        base = positives / measured if measured else 0.0
        teams = []
        for queue, members in zip(self.queues.results(), self.queues.members(), strict=True):
            sides = []
            for ids in members:
                hits = [self.labels[i] for i in ids if i in self.labels]
                flags = np.array(hits, dtype=np.bool_)
                figures = cut(np.arange(flags.size), flags, None, positives, base).to_dict()
                figures["queued_without_outcome"] = len(ids) - len(hits)
                sides.append(figures)
            teams.append({"team": queue.team, "capacity_before": queue.capacity_before,
                          "capacity_after": queue.capacity_after,
                          "before": sides[0], "after": sides[1]})
        scores = [np.array(s, dtype=np.float64) for s in self.scores]
        warnings = list(self.warnings)
        if not self.outcomes.dated:
            warnings.append("outcomes carry no dates: a conversion before --as-of cannot be told from "
                            "one after it")
        if self.outcomes.rejected:
            first = "; ".join(f"{r.file}:{r.row}: {r.column}: {r.reason}" for r in self.outcomes.rejects[:3])
            warnings.append(f"{self.outcomes.rejected:,} outcome row(s) rejected, their leads not "
                            f"measured (first: {first})")
        for key, value in self.left_out.items():
            if value:
                warnings.append(f"{value:,} decided lead(s) not measured: {key.replace('_', ' ')}")
        return {
            "source": self.outcomes.source,
            "leads": measured,
            "converted": positives,
            "base_rate": _r(base),
            "left_out": dict(self.left_out),
            "auc": {"before": _r(auc(labels, scores[0])), "after": _r(auc(labels, scores[1]))},
            "teams": teams,
            "warnings": warnings,
        }


def _r(value: float | None) -> float | None:
    """Six decimals, as ``engine backtest`` reports them (stable JSON)."""
    return None if value is None else round(value, 6)


def after_contact_reads(cp: CompiledPlaybook, late: Mapping[str, str]) -> list[str]:
    """Rules of ``cp`` reading a lead field the mapping marks ``after_contact`` (sorted, unique)."""
    from engine.measure.leakage import expressions

    found = set()
    for _, what, expr in expressions(cp):
        for name in expr.fields:
            if name.startswith("lead.") and name.removeprefix("lead.") in late:
                found.add(f"{what} reads `{name.removeprefix('lead.')}`")
    return sorted(found)
