"""``engine backtest``: a playbook's decisions at capacity, measured against outcomes.

Measurement consumes decisions, it never re-decides: each ``--as-of`` runs the normal
``engine evaluate`` (either backend) into a private folder, and every figure is computed
from its decision rows joined to the outcomes (:mod:`engine.measure.outcomes`). Several
``--as-of`` instants make a time split: each decision sees only the history before its
instant, and an outcome counts when its date falls in ``(as_of, as_of + horizon]``.
The report's keys are documented in docs/backtest.md and kept stable.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.batch import BatchRequest, Summary, evaluate_export
from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError, Severity
from engine.io import Mapping
from engine.io.mapping import in_zone_unless_set
from engine.load import Document
from engine.measure.leakage import mapping_diagnostics
from engine.measure.metrics import auc, cut, queue_order
from engine.measure.outcomes import Outcomes, read_created, read_outcomes

#: Decision columns a backtest reads (the rest of the row is not needed).
_COLUMNS = ("lead_id", "excluded", "stage", "route", "handoff_rule", "due", "priority", "score")
_NO_DUE = math.inf


@dataclass(frozen=True)
class BacktestRequest:
    """What to measure: the export, its outcomes, the instants and the capacity."""

    leads: Path
    mapping: Mapping
    as_of: tuple[datetime, ...]
    events: Path | None = None
    outcomes: Path | None = None
    #: ``"N"`` handoffs per team, ``"P%"`` of the measured leads, or None: each team's capacity.
    capacity: str | None = None
    horizon_seconds: int | None = None
    backend: str = "duckdb"
    encoding: str | None = None
    #: Per-rule figures for fit rules and engagement types (engine.measure.rule_effects):
    #: decides the export once more per such rule.
    per_rule: bool = False


@dataclass
class Split:
    """One as-of instant's decision rows with their outcomes, as arrays (measured leads only)."""

    as_of: datetime
    summary: Summary
    lead_id: NDArray[Any]
    excluded: NDArray[Any]
    stage: NDArray[Any]
    route: NDArray[Any]
    rule: NDArray[Any]
    due: NDArray[np.float64]
    priority: NDArray[np.float64]  # NaN: the handoff has none (the queue calls it last)
    score: NDArray[np.float64]
    row: NDArray[np.int64]
    label: NDArray[np.bool_]
    left_out: dict[str, int] = field(default_factory=dict)
    #: With --per-rule: per measured lead, the fit rules/branches and engagement types it
    #: scored on; and the split decided without each such rule.
    fired: list[frozenset[tuple[str, str]]] | None = None
    without: dict[tuple[str, str], Split] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.label.size)


def parse_capacity(text: str | None) -> tuple[int | None, float | None]:
    """``"120"`` → (120, None); ``"20%"`` → (None, 20.0); None → (None, None)."""
    if text is None:
        return None, None
    raw = text.strip()
    try:
        if raw.endswith("%"):
            share = float(raw[:-1])
            if not 0 < share <= 100:
                raise ValueError
            return None, share
        number = int(raw)
        if number < 0:
            raise ValueError
        return number, None
    except ValueError:
        raise EngineError(f"--capacity: {text!r} is neither a number of handoffs (120) nor a share "
                          "of the leads (20%)") from None


def run_backtest(cp: CompiledPlaybook, doc: Document, request: BacktestRequest, *,
                 playbook_name: str = "") -> dict[str, Any]:
    """Decide at each ``as_of``, join outcomes, measure; the report as a JSON-ready dict."""
    found = mapping_diagnostics(cp, doc, request.mapping)
    errors = [d for d in found if d.severity is Severity.ERROR]
    if errors:
        raise EngineError(f"{playbook_name or cp.source}: a rule could read an outcome; nothing measured",
                          errors)
    warnings = [f"{d.file}:{d.line}: {d.message}" for d in found]
    parse_capacity(request.capacity)  # a bad value fails before any work
    # Naive outcome dates are read like the export's: in the playbook's zone unless the mapping says.
    request = replace(request, mapping=in_zone_unless_set(request.mapping, cp.playbook.timezone))
    outcomes = read_outcomes(request.mapping, request.leads, request.outcomes, encoding=request.encoding)
    warnings += _outcome_warnings(outcomes, request)
    created = read_created(request.mapping, request.leads, encoding=request.encoding) \
        if len(request.as_of) > 1 or outcomes.dated else {}
    splits = []
    with tempfile.TemporaryDirectory(prefix="engine-backtest-") as scratch:
        for index, as_of in enumerate(request.as_of):
            out = Path(scratch) / f"decisions-{index}.csv"
            summary = _evaluate(cp, request, as_of, out, playbook_name)
            split = _split(out, summary, as_of, outcomes, created, request.horizon_seconds)
            if request.per_rule:
                _rule_effects(cp, request, split, Path(scratch), outcomes, created, playbook_name)
            splits.append(split)
    return _report(cp, splits, outcomes, request, warnings, playbook_name)


def _rule_effects(cp: CompiledPlaybook, request: BacktestRequest, split: Split, scratch: Path,
                  outcomes: Outcomes, created: dict[str, datetime], playbook_name: str) -> None:
    """--per-rule: what each lead scored on, and the split re-decided without each rule."""
    from engine.measure.rule_effects import fired, removable, without

    found = fired(cp, request.leads, request.events, request.mapping, split.as_of, request.encoding)
    split.fired = [found.get(lead_id, frozenset()) for lead_id in split.lead_id.tolist()]
    for index, key in enumerate(removable(cp)):
        out = scratch / f"without-{index}.csv"
        summary = _evaluate(without(cp, key), request, split.as_of, out, playbook_name)
        split.without[key] = _split(out, summary, split.as_of, outcomes, created, request.horizon_seconds)


def _evaluate(cp: CompiledPlaybook, request: BacktestRequest, as_of: datetime, out: Path,
              playbook_name: str) -> Summary:
    batch = BatchRequest(leads=request.leads, events=request.events, mapping=request.mapping, as_of=as_of,
                         out=out, encoding=request.encoding)
    if request.backend == "python":
        return evaluate_export(cp, batch, playbook_name=playbook_name)
    from engine.sql.batch import evaluate_export_sql

    return evaluate_export_sql(cp, batch, backend=request.backend, playbook_name=playbook_name)


def _split(path: Path, summary: Summary, as_of: datetime, outcomes: Outcomes,
           created: dict[str, datetime], horizon: int | None) -> Split:
    """The decision rows of one run, kept when their outcome is measurable at ``as_of``."""
    from datetime import timedelta

    end = as_of + timedelta(seconds=horizon) if horizon is not None else None
    columns: dict[str, list[Any]] = {name: [] for name in (*_COLUMNS, "row", "label")}
    left_out = {"no_outcome": 0, "converted_before_as_of": 0, "created_after_as_of": 0}
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle)):
            lead_id = row["lead_id"]
            born = created.get(lead_id)
            if born is not None and born > as_of:
                left_out["created_after_as_of"] += 1
                continue
            outcome = outcomes.get(lead_id)
            if outcome is None:
                left_out["no_outcome"] += 1
                continue
            label = outcome.converted_within(as_of if outcomes.dated else None, end)
            if label is None:
                left_out["converted_before_as_of"] += 1
                continue
            for name in _COLUMNS:
                columns[name].append(row[name])
            columns["row"].append(number)
            columns["label"].append(label)
    due = [datetime.fromisoformat(d).timestamp() if d else _NO_DUE for d in columns["due"]]
    return Split(
        as_of=as_of, summary=summary,
        lead_id=np.array(columns["lead_id"], dtype=object),
        excluded=np.array(columns["excluded"], dtype=object),
        stage=np.array(columns["stage"], dtype=object),
        route=np.array(columns["route"], dtype=object),
        rule=np.array(columns["handoff_rule"], dtype=object),
        due=np.array(due, dtype=np.float64),
        priority=np.array([float(p) if p else math.nan for p in columns["priority"]], dtype=np.float64),
        score=np.array(columns["score"], dtype=np.float64),
        row=np.array(columns["row"], dtype=np.int64),
        label=np.array(columns["label"], dtype=np.bool_),
        left_out=left_out,
    )


def _capacities(split: Split, request: BacktestRequest) -> dict[str, int | None]:
    number, share = parse_capacity(request.capacity)
    teams = split.summary.teams
    if number is not None:
        return dict.fromkeys(teams, number)
    if share is not None:
        return dict.fromkeys(teams, round(split.size * share / 100))
    return {team: queue.capacity for team, queue in teams.items()}


def _handed(split: Split, team: str, capacity: int | None,
            without: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
    """Which measured leads the team calls: its routed leads in its work queue's order, cut at
    capacity — the same leads `engine evaluate --queues` and `engine diff` put in the queue."""
    routed = split.route == team
    if without is not None:
        routed &= ~without
    index = np.flatnonzero(routed)
    order = index[queue_order(split.priority[index], split.due[index], split.lead_id[index],
                              split.row[index])]
    mask = np.zeros(split.size, dtype=np.bool_)
    mask[order if capacity is None else order[:capacity]] = True
    return mask


def _team_ranking(split: Split, team: str) -> NDArray[np.float64]:
    """The team's ranking as one number: its routed leads first (by score), then the rest."""
    routed = split.route == team
    if not split.size:
        return split.score
    span = float(split.score.max() - split.score.min()) + 1.0
    return split.score + np.where(routed, span, 0.0)


def _report(cp: CompiledPlaybook, splits: Sequence[Split], outcomes: Outcomes, request: BacktestRequest,
            warnings: list[str], playbook_name: str) -> dict[str, Any]:
    labels = np.concatenate([s.label for s in splits])
    measured = int(labels.size)
    positives = int(labels.sum())
    base = positives / measured if measured else 0.0
    included = np.concatenate([s.excluded == "" for s in splits])
    scores = np.concatenate([s.score for s in splits])
    teams = list(splits[0].summary.teams)
    capacities = [_capacities(s, request) for s in splits]
    report_teams: dict[str, Any] = {}
    for team in teams:
        handed = np.concatenate([_handed(s, team, caps[team])
                                 for s, caps in zip(splits, capacities, strict=True)])
        figures = cut(np.flatnonzero(handed), labels, None, positives, base).to_dict()
        ranking = np.concatenate([_team_ranking(s, team) for s in splits])
        figures["auc"] = _r(auc(labels[included], ranking[included]))
        figures["curve"] = lift_curve(labels, ranking, base)
        caps = {c[team] for c in capacities}
        report_teams[team] = {
            "capacity": caps.pop() if len(caps) == 1 else sorted(c for c in caps if c is not None),
            "routed": int(sum(int((s.route == team).sum()) for s in splits)),
            **figures,
        }
    left_out: dict[str, int] = {}
    for split in splits:
        for key, value in split.left_out.items():
            left_out[key] = left_out.get(key, 0) + value
    decided = sum(s.summary.decided for s in splits)
    matched = len({lead for s in splits for lead in s.lead_id.tolist() if lead in outcomes.by_lead})
    if outcomes.by_lead and matched < len(outcomes.by_lead) and len(splits) == 1:
        warnings.append(f"{len(outcomes.by_lead) - matched:,} outcome row(s) name a lead that was not "
                        "decided (not in the leads file, or rejected): not measured")
    for key, value in left_out.items():
        if value:
            warnings.append(f"{value:,} decided lead(s) left out: {key.replace('_', ' ')}")
    if not request.per_rule:
        warnings.append("per-rule figures for fit rules and engagement types are not computed: the "
                        "decision rows carry no per-rule breakdown (pass --per-rule: it decides the "
                        "export once more per rule)")
    return {
        "playbook": playbook_name,
        "backend": request.backend,
        "as_of": [s.as_of.astimezone(cp.tz).isoformat() for s in splits],
        "horizon_days": request.horizon_seconds / 86400 if request.horizon_seconds is not None else None,
        "decided": decided,
        "leads": measured,
        "converted": positives,
        "base_rate": _r(base),
        "outcomes_matched": matched,
        "left_out": left_out,
        "auc": _r(auc(labels[included], scores[included])),
        "teams": report_teams,
        "rules": _rules(cp, splits, capacities, labels, base),
        "splits": [_split_summary(s, caps, cp) for s, caps in zip(splits, capacities, strict=True)],
        "warnings": warnings,
    }


#: Points of a lift curve: every 2% of the measured leads.
CURVE_POINTS = 50


def lift_curve(labels: NDArray[np.bool_], ranking: NDArray[np.float64], base: float) -> list[dict[str, Any]]:
    """Precision and lift of the top ``share`` of leads by a team's ranking, at every 2%.

    The same ranking as the team's AUC (its routed leads first, by score); ties keep the
    decision rows' order, so the curve is the same on every run and backend.
    """
    size = int(labels.size)
    if not size:
        return []
    order = np.argsort(-ranking, kind="stable")
    hits = np.cumsum(labels[order])
    points = []
    for step in range(1, CURVE_POINTS + 1):
        worked = max(1, -(-size * step // CURVE_POINTS))
        precision = float(hits[worked - 1]) / worked
        points.append({"share": _r(worked / size), "leads": worked, "precision": _r(precision),
                       "lift": _r(precision / base) if base else None})
    return points


def _split_summary(split: Split, caps: dict[str, int | None], cp: CompiledPlaybook) -> dict[str, Any]:
    positives = int(split.label.sum())
    base = positives / split.size if split.size else 0.0
    included = split.excluded == ""
    teams = {}
    for team, capacity in caps.items():
        handed = _handed(split, team, capacity)
        figures = cut(np.flatnonzero(handed), split.label, None, positives, base).to_dict()
        teams[team] = {"capacity": capacity, **{key: figures[key] for key in
                                                ("handoffs", "precision", "recall", "lift")}}
    return {"as_of": split.as_of.astimezone(cp.tz).isoformat(), "leads": split.size,
            "converted": positives, "base_rate": _r(base),
            "auc": _r(auc(split.label[included], split.score[included])), "teams": teams}


def _rules(cp: CompiledPlaybook, splits: Sequence[Split], capacities: Sequence[dict[str, int | None]],
           labels: NDArray[np.bool_], base: float) -> list[dict[str, Any]]:
    """Per rule: leads it matched, their conversion and lift; what removing it costs where the
    decision rows can tell (handoff rules), else null with a note."""

    def column(name: str) -> NDArray[Any]:
        return np.concatenate([getattr(s, name) for s in splits])

    excluded, stage, rule = column("excluded"), column("stage"), column("rule")
    rows: list[dict[str, Any]] = []
    not_from_rows = "needs re-deciding: the decision rows cannot tell where its leads would go"
    for exclusion in cp.exclusions:
        rows.append(_rule_row("exclusion", exclusion.id, excluded == exclusion.id, labels, base, None,
                              not_from_rows))
    per_rule = all(s.fired is not None for s in splits)

    def matched(key: tuple[str, str]) -> NDArray[np.bool_] | None:
        if not per_rule:
            return None
        return np.array([key in found for s in splits for found in s.fired or ()], dtype=np.bool_)

    removal = ("lift lost: the lift of the handoffs at capacity (of the teams with one) minus the "
               "same with the playbook re-decided without this rule")
    for fit in cp.fit_rules:
        lost = _removal_lift_lost(splits, capacities, ("fit", fit.id)) if per_rule else None
        rows.append(_rule_row("fit", fit.id, matched(("fit", fit.id)), labels, base, lost,
                              removal if per_rule else "no per-rule breakdown in decision rows (--per-rule)"))
        if per_rule and len(fit.branches) > 1:
            for index in range(len(fit.branches)):
                branch = f"{fit.id}[{index}]"
                lost = _removal_lift_lost(splits, capacities, ("fit", branch))
                rows.append(_rule_row("fit", branch, matched(("fit", branch)), labels, base, lost,
                                      "lift lost: as for a rule, with only this first_of branch removed "
                                      "(a lead it matched may then match a later branch)"))
    typed = {key[1] for key in splits[0].without if key[0] == "engagement"} if per_rule else set()
    for event_type in cp.playbook.events:
        if cp.weight_of_type(event_type) != 0 or event_type in typed:
            key = ("engagement", event_type)
            lost = _removal_lift_lost(splits, capacities, key) if key in splits[0].without else None
            note = removal if per_rule else "no per-type breakdown in decision rows (--per-rule)"
            rows.append(_rule_row("engagement", event_type, matched(key), labels, base, lost, note))
    for stage_rule in cp.stages:
        rows.append(_rule_row("stage", stage_rule.rule.id, stage == stage_rule.rule.id, labels, base, None,
                              not_from_rows))
    for handoff in cp.handoffs:
        lost = _handoff_lift_lost(splits, capacities, handoff.rule.id, handoff.to, labels, base)
        rows.append(_rule_row("handoff", handoff.rule.id, rule == handoff.rule.id, labels, base, lost,
                              f"lift lost: {handoff.to}'s lift at capacity minus its lift with this rule's "
                              "leads removed and the cut refilled from the team's other routed leads"))
    return rows


def _all_handed(split: Split, capacities: dict[str, int | None]) -> NDArray[np.bool_]:
    """The leads the teams with a capacity call at it (every team's routed leads when none has
    one): where a rule's points matter, by ranking leads into or out of a queue."""
    capped = {team: c for team, c in capacities.items() if c is not None} or capacities
    mask = np.zeros(split.size, dtype=np.bool_)
    for team, capacity in capped.items():
        mask |= _handed(split, team, capacity)
    return mask


def _removal_lift_lost(splits: Sequence[Split], capacities: Sequence[dict[str, int | None]],
                       key: tuple[str, str]) -> float | None:
    """The lift of all handoffs at capacity, minus the same when decided without ``key``."""
    def lift(parts: Sequence[Split]) -> float | None:
        labels = np.concatenate([p.label for p in parts])
        positives = int(labels.sum())
        base = positives / labels.size if labels.size else 0.0
        handed = np.concatenate([_all_handed(p, c) for p, c in zip(parts, capacities, strict=True)])
        return cut(np.flatnonzero(handed), labels, None, positives, base).lift

    before = lift(splits)
    after = lift([s.without[key] for s in splits])
    if before is None:
        return None
    return _r(before - (after or 0.0))


def _handoff_lift_lost(splits: Sequence[Split], capacities: Sequence[dict[str, int | None]], rule_id: str,
                       team: str, labels: NDArray[np.bool_], base: float) -> float | None:
    positives = int(labels.sum())
    with_rule = np.concatenate([_handed(s, team, c.get(team))
                                for s, c in zip(splits, capacities, strict=True)])
    without = np.concatenate([_handed(s, team, c.get(team), s.rule == rule_id)
                              for s, c in zip(splits, capacities, strict=True)])
    before = cut(np.flatnonzero(with_rule), labels, None, positives, base).lift
    after = cut(np.flatnonzero(without), labels, None, positives, base).lift
    if before is None:
        return None
    return _r(before - (after or 0.0))


def _rule_row(kind: str, rule_id: str, matched: NDArray[np.bool_] | None, labels: NDArray[np.bool_],
              base: float, lift_lost: float | None, note: str) -> dict[str, Any]:
    if matched is None:
        return {"kind": kind, "id": rule_id, "matched": None, "converted": None, "conversion": None,
                "lift": None, "lift_lost": None, "note": note}
    n = int(matched.sum())
    k = int(labels[matched].sum())
    conversion = k / n if n else None
    return {"kind": kind, "id": rule_id, "matched": n, "converted": k, "conversion": _r(conversion),
            "lift": _r(conversion / base) if conversion is not None and base > 0 else None,
            "lift_lost": lift_lost, "note": note}


def _outcome_warnings(outcomes: Outcomes, request: BacktestRequest) -> list[str]:
    found = []
    if outcomes.rejected:
        first = "; ".join(f"{r.file}:{r.row}: {r.column}: {r.reason}" for r in outcomes.rejects[:3])
        found.append(f"{outcomes.rejected:,} outcome row(s) rejected, their leads not measured "
                     f"(first: {first})")
    if not outcomes.dated:
        found.append("outcomes carry no dates: a conversion before --as-of cannot be told from one after it"
                     + ("; --horizon is ignored" if request.horizon_seconds is not None else ""))
    return found


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


__all__ = ["BacktestRequest", "Split", "parse_capacity", "run_backtest"]
