"""Write learned points into the playbook's own text: a change a reviewer reads like any other.

The file goes through ``engine fmt``'s round trip (comments, order and quoting kept);
only numbers change, and proposed rules are appended to ``scoring.fit.rules``, each
with a comment saying it is a proposal and what it matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from engine.fmt import format_text, rewrite_text
from engine.measure.features import Feature

PROPOSAL_MARK = "proposed by engine learn"


@dataclass(frozen=True)
class Change:
    """One rule whose points the proposal changes (``old`` is None for an added rule)."""

    feature: Feature
    old: float | None
    new: int
    matched: int  # leads the rule applies to (events, for an engagement type)
    conversion: float | None  # of those leads

    @property
    def where(self) -> str:
        """Where the change is, as ``engine diff`` names it."""
        f = self.feature
        if f.kind == "engagement":
            return f"scoring.engagement.points.{f.event_type}"
        if f.kind == "candidate":
            return f"scoring.fit.rules.{f.rule_id} (new)"
        return f"scoring.fit.rules.{f.rule}" + (f".first_of[{f.branch}]" if f.branch is not None else "")


def changes_of(features: Sequence[Feature], points: Sequence[int], columns: Sequence[Sequence[float]],
               converted: Sequence[bool]) -> list[Change]:
    """The changes the proposal makes, in playbook order, with what each rule matched."""
    found = []
    for feature, new, column in zip(features, points, columns, strict=True):
        old = None if feature.kind == "candidate" else feature.points
        if (old is None and new == 0) or (old is not None and old == new):
            continue
        held = [c for c in column if c > 0]
        hits = sum(1 for c, y in zip(column, converted, strict=True) if c > 0 and y)
        matched = int(sum(column)) if feature.kind == "engagement" else len(held)
        found.append(Change(feature, old, new, matched, hits / len(held) if held else None))
    return found


def write_proposal(text: str, file: str, changes: Sequence[Change]) -> str:
    """The playbook's text with ``changes`` applied, in ``engine fmt`` layout."""

    def edit(data: Any) -> None:
        for change in changes:
            _apply(data, change)

    # A second pass puts any section the edit had to create in its canonical place.
    return format_text(rewrite_text(text, file, edit), file)


def _apply(data: Any, change: Change) -> None:
    feature = change.feature
    scoring = _child(data, "scoring")
    if feature.kind == "engagement":
        engagement = _child(scoring, "engagement")
        points = _child(engagement, "points")
        entry = points.get(feature.event_type)
        if isinstance(entry, dict):
            entry["points"] = change.new
        else:
            added = feature.event_type not in points
            points[feature.event_type] = change.new
            if added:
                _comment(points, feature.event_type, PROPOSAL_MARK)
        return
    rules = _child(_child(scoring, "fit"), "rules", CommentedSeq)
    if feature.kind == "fit":
        rule = next(r for r in rules if r.get("id") == feature.rule)
        target = rule if feature.branch is None else rule["first_of"][feature.branch]
        target["points"] = change.new
        return
    rule = CommentedMap([("id", feature.rule_id), ("when", SingleQuotedScalarString(feature.when or "")),
                         ("points", change.new)])
    rule.fa.set_flow_style()
    rules.append(rule)
    share = f", {change.conversion:.0%} converted" if change.conversion is not None else ""
    _comment(rules, len(rules) - 1, f"{PROPOSAL_MARK} ({change.matched} leads{share})")


def _comment(parent: Any, key: Any, text: str) -> None:
    """An end-of-line comment two spaces after the value. (``yaml_add_eol_comment`` puts
    it one space after when an earlier item has a comment, so the token is made here.)"""
    parent._yaml_add_eol_comment([CommentToken(f" # {text}", CommentMark(0), None), None], key)


def _child(parent: Any, key: str, kind: type = CommentedMap) -> Any:
    value = parent.get(key)
    if value is None:
        value = kind()
        parent[key] = value
    return value
