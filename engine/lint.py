"""Checks that need compiled expressions: thresholds no rule set can reach, and the
seed-003 pitfall of routing on a score that email opens alone can fill.

They run after ``compile`` inside ``engine validate``; each is a small function
from a :class:`CompiledPlaybook` (and its document, for positions) to diagnostics.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator

from engine.compile import CompiledPlaybook, NodePath
from engine.diagnostics import Diagnostic, Severity
from engine.expr import CompiledExpression
from engine.load import Document
from engine.model import SECTIONS, Playbook

#: The event type whose points the opens-only lint looks at (seed 003).
EMAIL_OPEN = "email_open"


def _expressions(cp: CompiledPlaybook) -> Iterator[tuple[NodePath, CompiledExpression]]:
    for rule in cp.exclusions:
        if rule.expr is not None:
            yield rule.path, rule.expr
    for stage in cp.stages:
        if stage.rule.expr is not None:
            yield stage.rule.path, stage.rule.expr
    for handoff in cp.handoffs:
        if handoff.rule.expr is not None:
            yield handoff.rule.path, handoff.rule.expr
    for reason in cp.recycle:
        if reason.reenter is not None:
            yield (*reason.rule.path, "reenter_when"), reason.reenter


def max_fit(cp: CompiledPlaybook) -> float:
    """The highest fit score any lead can get: best branch of each rule, then the cap."""
    total = sum(max([0.0, *(points for _, points in rule.branches)]) for rule in cp.fit_rules)
    return min(total, cp.fit_cap) if cp.fit_cap is not None else total


def lint_unreachable_thresholds(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """`fit >= 70` under a cap of 60 can never hold: the rule is dead."""
    ceilings = {"fit": max_fit(cp)}
    if cp.engagement_cap is not None:
        ceilings["engagement"] = cp.engagement_cap
    for path, expr in _expressions(cp):
        for fact in expr.comparisons():
            ceiling = ceilings.get(fact.name)
            if ceiling is None:
                continue
            dead = (fact.op == ">=" and fact.value > ceiling) or (
                fact.op == ">" and fact.value >= ceiling
            ) or (fact.op == "==" and fact.value > ceiling)
            if dead:
                yield doc.diagnostic(
                    path, "E-THRESHOLD-UNREACHABLE",
                    f"`{fact.name} {fact.op} {fact.value:g}` can never hold: {fact.name} is at "
                    f"most {ceiling:g}",
                    hint=f"lower the threshold or raise the {fact.name} cap/points",
                )


def _engagement_only(node: ast.expr) -> bool:
    """True if ``node`` holds on engagement comparisons alone (no fit, stage, event test)."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return all(_engagement_only(v) for v in node.values)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        sides = [node.left, *node.comparators]
        names = [s.id for s in sides if isinstance(s, ast.Name)]
        consts = [s for s in sides if isinstance(s, ast.Constant)]
        return names == ["engagement"] and len(consts) == 1 and isinstance(
            node.ops[0], ast.Gt | ast.GtE
        )
    return False


def _disjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return [d for v in node.values for d in _disjuncts(v)]
    return [node]


def lint_opens_alone(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """Seed 003: "score ≥ 50 catches everyone" when opens add up; warn where sales gets them."""
    if EMAIL_OPEN not in cp.playbook.events:
        return
    opens = cp.weight_of_type(EMAIL_OPEN)
    if opens <= 0:
        return
    first_owner = cp.stages[0].owner
    targets: list[tuple[NodePath, CompiledExpression, str]] = [
        (h.rule.path, h.rule.expr, f"handoff `{h.rule.id}`")
        for h in cp.handoffs if h.rule.expr is not None
    ]
    targets += [
        (s.rule.path, s.rule.expr, f"stage `{s.rule.id}`")
        for s in cp.stages if s.rule.expr is not None and s.owner != first_owner
    ]
    for path, expr, what in targets:
        if any(_engagement_only(d) for d in _disjuncts(expr.tree)):
            yield doc.diagnostic(
                path, "W-OPENS-ONLY",
                f"{what} can be reached by email opens alone ({EMAIL_OPEN} scores {opens:g}, "
                "and nothing else is required)", severity=Severity.WARNING,
                hint="require fit or a consideration signal (content_stage, an enquiry) too",
            )


def lint_no_sql_form(cp: CompiledPlaybook, doc: Document) -> Iterable[Diagnostic]:
    """Constructs the SQL backends (``engine evaluate``'s default) cannot run; sqlglot-free."""
    from engine.sql.support import lint_no_sql_form as lint

    return lint(cp, doc)


def lint_owners(playbook: Playbook, doc: Document) -> Iterator[Diagnostic]:
    """Every section written must have someone to approve its changes (``engine approvals``).

    Run once the playbook is otherwise valid: ownership is a review concern, and a
    broken file's own errors come first.
    """
    meta = playbook.metadata
    written = [s for s in ("timezone", *SECTIONS) if s in playbook.model_fields_set]
    if not meta.owners:
        yield doc.diagnostic(
            ["metadata"], "W-UNOWNED-SECTION",
            "no `metadata.owners`: a change to this playbook needs nobody's approval",
            severity=Severity.WARNING, key=True,
            hint="add `owners: {default: [TEAM]}` under metadata (and per-section owners)",
        )
        return
    for section in written:
        if not meta.owners_of(section):
            yield doc.diagnostic(
                [section], "W-UNOWNED-SECTION",
                f"nobody owns `{section}`: a change to it needs nobody's approval",
                severity=Severity.WARNING, key=True,
                hint=f"add `default: [TEAM]` or `{section}: [TEAM]` under metadata.owners",
            )


Lint = Callable[[CompiledPlaybook, Document], Iterable[Diagnostic]]
LINTS: tuple[Lint, ...] = (lint_unreachable_thresholds, lint_opens_alone, lint_no_sql_form)


def run_lints(cp: CompiledPlaybook, doc: Document) -> list[Diagnostic]:
    """Every lint's findings."""
    return [d for lint in LINTS for d in lint(cp, doc)]
