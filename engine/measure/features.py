"""The table ``engine learn`` fits: one column per point rule a playbook has, or could have.

A column is what a rule contributes per point: 1 when a fit rule (or one branch of a
``first_of`` group) gave its points, the decayed number of events of a type for an
engagement type, and for a proposed rule 1 when its condition holds. The score the
engine computes is then ``sum(points × column)`` (caps aside), so fitted coefficients,
rounded, *are* points a reviewer can read, and a proposed rule is written as an
expression the engine evaluates exactly as the column was computed here.

Pure Python (no numpy): the fitting lives in :mod:`engine.measure.learn`.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engine.accounts import refuse_accounts
from engine.compile import CompiledPlaybook, FitPoints
from engine.evaluate import decide
from engine.events import Event
from engine.expr import CompiledExpression
from engine.history import History
from engine.io import LeadRecord
from engine.model import EventPoints
from engine.pipeline import FIT

Kind = Literal["fit", "engagement", "candidate"]

#: At most this many values of one string field become candidate rules (the most frequent).
MAX_VALUES_PER_FIELD = 40
#: Number fields are cut at these quantiles of their present values (deciles).
QUANTILES = 10


@dataclass(frozen=True)
class Feature:
    """One point rule: where it lives in the playbook and its current points."""

    kind: Kind
    label: str
    points: float
    rule: str | None = None  # fit rule id
    branch: int | None = None  # index in the rule's first_of; None for a `when`/`points` rule
    event_type: str | None = None
    when: str | None = None  # a proposed rule's condition
    rule_id: str | None = None  # a proposed rule's id (unique in the playbook)


@dataclass
class FeatureTable:
    """Columns aligned with ``lead_ids``; ``excluded`` leads rank last whatever their points."""

    features: list[Feature]
    columns: list[list[float]]
    lead_ids: list[str]
    excluded: list[bool]
    notes: list[str] = field(default_factory=list)

    def select(self, keep: Sequence[bool]) -> FeatureTable:
        """The same table for the leads where ``keep`` is true (e.g. those with an outcome)."""
        rows = [i for i, wanted in enumerate(keep) if wanted]
        return FeatureTable(self.features, [[col[i] for i in rows] for col in self.columns],
                            [self.lead_ids[i] for i in rows], [self.excluded[i] for i in rows],
                            list(self.notes))


@dataclass
class _Lead:
    lead_id: str
    fields: dict[str, Any]
    fired: set[str]  # fit trace labels that held
    counts: dict[str, float]  # decayed events per learnable type
    excluded: bool


def build_table(cp: CompiledPlaybook, leads: Iterable[tuple[LeadRecord, Sequence[Event]]], as_of: datetime,
                *, propose: bool = True, min_support: int | None = None) -> FeatureTable:
    """Decide every lead with the engine and lay out one column per point rule.

    ``propose`` adds candidate rules from the declared lead fields (values of a
    category, thresholds of a number at its deciles, missing values) seen in at least
    ``min_support`` leads and not in all but that many [default: 0.5% of leads, ≥ 20].
    """
    refuse_accounts(cp, "engine learn")
    learnable = _learnable_types(cp)
    decided = [_decide(cp, lead, events, as_of, learnable) for lead, events in leads]
    features: list[Feature] = []
    columns: list[list[float]] = []
    for feature, label in _fit_features(cp):
        features.append(feature)
        columns.append([1.0 if label in lead.fired else 0.0 for lead in decided])
    for event_type, points in learnable.items():
        features.append(Feature("engagement", event_type, points, event_type=event_type))
        columns.append([lead.counts.get(event_type, 0.0) for lead in decided])
    notes = _notes(cp)
    if propose:
        support = min_support if min_support is not None else max(20, math.ceil(0.005 * len(decided)))
        taken = {r.id for r in cp.fit_rules}
        fit = cp.playbook.scoring.fit
        existing = {(r.when or "").strip() for r in fit.rules} if fit else set()
        for name, kind in cp.playbook.lead.fields.items():
            if kind == "datetime":
                notes.append(f"lead.{name} is a datetime: no rules are proposed from it")
                continue
            values = [lead.fields.get(name) for lead in decided]
            for when, rule_id, column in _candidates(name, kind, values, support):
                if when in existing:
                    continue
                rule_id = _unique(rule_id, taken)
                features.append(Feature("candidate", when, 0.0, when=when, rule_id=rule_id))
                columns.append(column)
    return FeatureTable(features, columns, [lead.lead_id for lead in decided],
                        [lead.excluded for lead in decided], notes)


def _learnable_types(cp: CompiledPlaybook) -> dict[str, float]:
    """Event type → current points per event, for types whose points are one number.

    Only when the playbook has an engagement section; a type with per-content points
    is left as written (its points depend on the content, not the type).
    """
    engagement = cp.playbook.scoring.engagement
    if engagement is None:
        return {}
    learnable: dict[str, float] = {}
    for event_type in cp.playbook.events:
        entry = engagement.points.get(event_type, 0.0)
        if isinstance(entry, EventPoints):
            if entry.content is not None:
                continue
            entry = entry.points
        learnable[event_type] = float(entry)
    return learnable


def _decide(cp: CompiledPlaybook, lead: LeadRecord, events: Sequence[Event], as_of: datetime,
            learnable: dict[str, float]) -> _Lead:
    decision = decide(cp, lead.fields, events, as_of, lead_id=lead.lead_id, trace=True, detail=False)
    fired = {step.rule for step in decision.trace if step.section == FIT.name and step.result is True}
    counts: dict[str, float] = {}
    if learnable:
        history = History(events, as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=cp.tz))
        half_life = cp.half_life_seconds
        for event in history.in_window(None, cp.engagement_window_seconds):
            if event.type in learnable:
                weight = 0.5 ** ((history.as_of - event.at).total_seconds() / half_life) if half_life else 1.0
                counts[event.type] = counts.get(event.type, 0.0) + weight
    return _Lead(lead.lead_id, lead.fields, fired, counts, decision.excluded is not None)


def _fit_features(cp: CompiledPlaybook) -> Iterable[tuple[Feature, str]]:
    """Each fit rule, or each branch of a first_of group, with its trace label."""
    fit = cp.playbook.scoring.fit
    for rule, written in zip(cp.fit_rules, fit.rules if fit else [], strict=True):
        if rule.computed:  # points computed from the lead: left as written (see _notes)
            continue
        if written.first_of is None:
            yield Feature("fit", rule.id, _written(rule.branches[0][1]), rule=rule.id), rule.id
            continue
        for index, (_expr, points) in enumerate(rule.branches):
            label = rule.id if len(rule.branches) == 1 else f"{rule.id}[{index}]"
            yield Feature("fit", f"{rule.id}[{index}]", _written(points), rule=rule.id, branch=index), label


def _written(points: FitPoints) -> float:
    """A branch's written points (rules with computed points never get here)."""
    assert not isinstance(points, CompiledExpression)
    return points


def _candidates(name: str, kind: str, values: list[Any],
                support: int) -> Iterable[tuple[str, str, list[float]]]:
    """(condition, rule id, column) for the candidate rules of one declared field."""
    n = len(values)

    def enough(column: list[float]) -> bool:
        held = sum(column)
        return support <= held <= n - support

    if kind == "string":
        counts = Counter(v for v in values if isinstance(v, str))
        common = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_VALUES_PER_FIELD]
        for value, _count in sorted(common, key=lambda kv: kv[0]):
            column = [1.0 if v == value else 0.0 for v in values]
            if enough(column):
                literal = json.dumps(value, ensure_ascii=False)
                yield f"lead.{name} == {literal}", f"{name}-{_slug(value)}", column
    elif kind == "bool":
        column = [1.0 if v is True else 0.0 for v in values]
        if enough(column):
            yield f"lead.{name} == True", f"{name}-yes", column
    elif kind == "number":
        present = sorted(float(v) for v in values if _is_number(v))
        if present:
            cuts = sorted({present[(i * len(present)) // QUANTILES] for i in range(1, QUANTILES)})
            for cut in cuts:
                if cut <= present[0]:
                    continue  # holds for every present value: the missing-value rule says it
                column = [1.0 if _is_number(v) and v >= cut else 0.0 for v in values]
                if enough(column):
                    text = _number(cut)
                    yield f"lead.{name} >= {text}", f"{name}-{_slug(text)}-or-more", column
    missing = [1.0 if v is None else 0.0 for v in values]
    if enough(missing):
        yield f"lead.{name} == None", f"{name}-missing", missing


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> str:
    """A threshold as a reviewer writes it: ``900``, ``2.5``."""
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _unique(wanted: str, taken: set[str]) -> str:
    """A valid rule id (``^[a-z][a-z0-9_-]{0,63}$``) not used yet; records it as taken."""
    base = re.sub(r"[^a-z0-9_\-]+", "-", wanted.lower()).strip("-_")[:56] or "rule"
    if not base[0].isalpha():
        base = f"r-{base}"[:56]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _notes(cp: CompiledPlaybook) -> list[str]:
    """What learn leaves as written, so the report can say so."""
    notes = []
    engagement = cp.playbook.scoring.engagement
    if engagement is not None:
        for event_type, entry in engagement.points.items():
            if isinstance(entry, EventPoints) and entry.content is not None:
                notes.append(f"engagement points of {event_type!r} depend on the content: left as written")
            if isinstance(entry, EventPoints) and entry.cap is not None:
                notes.append(f"engagement of {event_type!r} is capped at {entry.cap:g}; the points are "
                             "fitted uncapped")
    for rule in cp.fit_rules:
        if rule.computed:
            notes.append(f"fit rule {rule.id!r} computes its points from the lead: left as written, "
                         "and left out of the fitted model and of its before/after figures")
        elif rule.cap is not None:
            notes.append(f"fit rule {rule.id!r} is capped at {rule.cap:g}; its points are fitted uncapped")
    scores = {"fit", "engagement"}
    readers = [f"stages.{s.rule.id}" for s in cp.stages if s.rule.expr and scores & s.rule.expr.names]
    readers += [f"handoffs.{h.rule.id}" for h in cp.handoffs
                if scores & (h.rule.expr.names if h.rule.expr else frozenset())
                | (h.priority.names if h.priority else frozenset())]
    readers += [f"exclusions.{r.id}" for r in cp.exclusions if r.expr and scores & r.expr.names]
    if readers:
        notes.append("thresholds on fit or engagement are not rescaled; review them with the new points: "
                     + ", ".join(readers))
    return notes
