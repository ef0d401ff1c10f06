"""What ``engine learn`` tells a reviewer: each change old → new, and the figures before and after.

One :class:`LearnReport`, three renderers (text for a terminal, markdown for a pull
request, json with stable keys for tools); a format changes how, never what.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.measure.learn import Metrics, Result, Settings
from engine.measure.proposal import Change


@dataclass
class LearnReport:
    """Everything one run found, ready to render."""

    playbook: str
    proposal: str
    settings: Settings
    result: Result
    changes: list[Change]
    leads_read: int
    leads_rejected: int
    without_outcome: int
    outcome_rejects: int
    features: int
    candidates: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready with stable keys (documented in docs/learn.md)."""
        s, r = self.settings, self.result
        return {
            "playbook": self.playbook,
            "proposal": self.proposal,
            "leads": {"read": self.leads_read, "rejected": self.leads_rejected,
                      "without_outcome": self.without_outcome, "outcome_rejects": self.outcome_rejects,
                      "learned_from": r.after.leads, "converted": r.after.converted},
            "settings": {"folds": s.folds, "capacity": str(s.capacity), "max_rules": s.max_rules,
                         "top_points": s.top_points, "seed": s.seed, "regularisation": r.regularisation,
                         "rules_considered": self.features, "rules_proposed_from_fields": self.candidates},
            "before": r.before.to_dict(),
            "after": r.after.to_dict(),
            "fold_rules": list(r.fold_rules),
            "changes": [
                {"where": c.where, "rule": c.feature.label, "kind": c.feature.kind,
                 "old": c.old, "new": c.new,
                 "matched": c.matched,
                 "conversion": round(c.conversion, 4) if c.conversion is not None else None}
                for c in self.changes
            ],
            "notes": list(self.notes) + list(r.notes),
        }


_RULE6 = "| --- | --- | --- | --- | --- | --- |"


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _ci(pair: tuple[float, float]) -> str:
    return f"[{pair[0]:.1%}–{pair[1]:.1%}]"


def _rows(report: LearnReport) -> list[tuple[str, Metrics]]:
    return [("current points", report.result.before), ("proposed points", report.result.after)]


def _old(change: Change) -> str:
    return "new rule" if change.old is None else f"{change.old:g}"


def _headline(report: LearnReport) -> list[str]:
    r, s = report.result, report.settings
    base = r.after.converted / r.after.leads
    return [
        f"leads: {report.leads_read:,} read, {report.leads_rejected:,} rejected, {report.without_outcome:,} "
        f"without an outcome ({report.outcome_rejects:,} outcome row(s) rejected); learned from "
        f"{r.after.leads:,} ({r.after.converted:,} converted, base rate {_pct(base)})",
        f"fitted: {report.features} point rules ({report.candidates} proposed from lead fields); L1 "
        f"regularisation C={r.regularisation:g} chosen by {s.folds}-fold cross-validation; points rounded "
        f"to integers (largest {s.top_points}), at most {s.max_rules} non-zero",
        f"out-of-fold at capacity {s.capacity} ({r.after.selected:,} of {r.after.leads:,} leads over the "
        f"folds; ties at the cut shared pro rata), 95% Wilson intervals:",
    ]


def render_text(report: LearnReport) -> str:
    """For a terminal."""
    lines = [f"engine learn: {report.playbook} → {report.proposal}", *_headline(report)]
    lines.append(f"  {'':<16} {'precision':<24} {'recall':<24} {'lift':>5}  {'AUC (fold range)':<20} rules")
    for name, m in _rows(report):
        lines.append(f"  {name:<16} {_pct(m.precision) + ' ' + _ci(m.precision_ci):<24} "
                     f"{_pct(m.recall) + ' ' + _ci(m.recall_ci):<24} {m.lift:5.2f}  "
                     f"{f'{m.auc:.3f} ({m.auc_range[0]:.3f}–{m.auc_range[1]:.3f})':<20} {m.rules}")
    lines.append(f"changes ({len(report.changes)}), old → new points:")
    width = max((len(c.where) for c in report.changes), default=0)
    for c in report.changes:
        share = f", {c.conversion:.0%} converted" if c.conversion is not None else ""
        unit = "events" if c.feature.kind == "engagement" else "leads"
        what = f"  {c.feature.label}" if c.feature.kind == "candidate" else ""
        lines.append(f"  {c.where:<{width}}  {_old(c):>8} → {c.new:<4} ({c.matched:,} {unit}{share}){what}")
    notes = report.to_dict()["notes"]
    if notes:
        lines.append("notes:")
        lines += [f"  - {note}" for note in notes]
    return "\n".join(lines) + "\n"


def render_markdown(report: LearnReport) -> str:
    """For a pull request description."""
    lines = [f"### engine learn: `{report.playbook}` → `{report.proposal}`", ""]
    lines += [f"- {line.rstrip(':')}" for line in _headline(report)]
    lines += ["", "| points | precision | recall | lift | AUC (fold range) | rules |", _RULE6]
    for name, m in _rows(report):
        auc = f"{m.auc:.3f} ({m.auc_range[0]:.3f}–{m.auc_range[1]:.3f})"
        lines.append(f"| {name} | {_pct(m.precision)} {_ci(m.precision_ci)} "
                     f"| {_pct(m.recall)} {_ci(m.recall_ci)} | {m.lift:.2f} | {auc} | {m.rules} |")
    lines += ["", "| where | rule | old | new | matched | converted |", _RULE6]
    for c in report.changes:
        share = f"{c.conversion:.0%}" if c.conversion is not None else ""
        label = c.feature.label.replace("|", "\\|")
        lines.append(f"| `{c.where}` | `{label}` | {_old(c)} | {c.new} | {c.matched:,} | {share} |")
    notes = report.to_dict()["notes"]
    if notes:
        lines += ["", *[f"- note: {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def render_json(report: LearnReport) -> str:
    """For tools."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[LearnReport], str]] = {
    "text": render_text, "json": render_json, "markdown": render_markdown,
}
