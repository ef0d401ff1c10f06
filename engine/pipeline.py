"""The decision pipeline's sections, declared once, and every expression a playbook holds.

A decision runs personas → targets → fit → surge → exclusions → stages → handoffs →
recycle (``engine.functions.CONTEXTS``, where each section's expressions are checked).
:data:`PIPELINE` says what each is called in the playbook and in messages;
:func:`expression_sites` walks a compiled playbook's expressions in that order, once, for
every reader that needs them all (validate's SQL check, the SQL dialect notes, lint,
leakage): a new section is added here and they all see it.

Accounts (:mod:`engine.accounts`) are a step with no expressions of its own: the
account's target status is combined right after targets, and its values (``account.*``,
``account_persona``) right after exclusions, so they are known from stages on (their
registry entries say ``since="stage"``) and never in fit, surge or exclusions, which
they are computed from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.functions import CONTEXTS, Context

if TYPE_CHECKING:
    from engine.compile import CompiledPlaybook, NodePath
    from engine.expr import CompiledExpression


@dataclass(frozen=True)
class Section:
    """One section: its context (``engine.functions.CONTEXTS``), where it is written in a
    playbook (``key``, dotted), and how a message names one of its rules (``label``)."""

    context: Context
    key: str
    label: str


PIPELINE: tuple[Section, ...] = (
    Section("persona", "personas", "persona"),
    Section("target", "targets", "target"),
    Section("fit", "scoring.fit", "fit rule"),
    Section("surge", "scoring.surge", "surge"),
    Section("exclusion", "exclusions", "exclusion"),
    Section("stage", "stages", "stage"),
    Section("handoff", "handoffs", "handoff"),
    Section("recycle", "recycle", "recycle"),
)
assert tuple(s.context for s in PIPELINE) == CONTEXTS  # one order, the checker's

BY_CONTEXT: dict[str, Section] = {s.context: s for s in PIPELINE}

#: What an expression is to its rule: its condition, a fit branch's computed points, a
#: handoff's priority, or a recycle reason's re-entry condition.
Role = Literal["when", "points", "priority", "reenter_when"]


@dataclass(frozen=True)
class Site:
    """One expression of a playbook and where it sits.

    ``path`` is the rule's path as compiled (a condition's path ends at its ``when`` or
    ``entry``; the surge's is the surge's); ``branch`` is a fit rule's ``first_of``
    index when it has more than one branch, else None; ``rule`` is None for the surge."""

    section: Section
    rule: str | None
    role: Role
    path: NodePath
    branch: int | None
    expr: CompiledExpression


def expression_sites(cp: CompiledPlaybook) -> Iterator[Site]:
    """Every compiled expression of ``cp``, section by section in pipeline order."""
    persona, target, fit, surge, exclusion, stage, handoff, recycle = PIPELINE
    for rule in cp.personas:
        if rule.expr is not None:
            yield Site(persona, rule.id, "when", rule.path, None, rule.expr)
    for found in (cp.target_accounts, cp.target_leads):
        if found is not None and found.expr is not None:
            yield Site(target, found.id, "when", found.path, None, found.expr)
    for fit_rule in cp.fit_rules:
        many = len(fit_rule.branches) > 1
        for index, (expr, points) in enumerate(fit_rule.branches):
            yield Site(fit, fit_rule.id, "when", fit_rule.path, index if many else None, expr)
            if not isinstance(points, int | float):  # points computed by an expression
                yield Site(fit, fit_rule.id, "points", fit_rule.path, index if many else None, points)
    if cp.surge is not None and cp.surge.expr is not None:
        yield Site(surge, None, "when", cp.surge.path, None, cp.surge.expr)
    for rule in cp.exclusions:
        if rule.expr is not None:
            yield Site(exclusion, rule.id, "when", rule.path, None, rule.expr)
    for stage_rule in cp.stages:
        if stage_rule.rule.expr is not None:
            yield Site(stage, stage_rule.rule.id, "when", stage_rule.rule.path, None, stage_rule.rule.expr)
    for handoff_rule in cp.handoffs:
        if handoff_rule.rule.expr is not None:
            yield Site(handoff, handoff_rule.rule.id, "when", handoff_rule.rule.path, None,
                       handoff_rule.rule.expr)
        if handoff_rule.priority is not None:
            yield Site(handoff, handoff_rule.rule.id, "priority", handoff_rule.rule.path, None,
                       handoff_rule.priority)
    for reason in cp.recycle:
        if reason.reenter is not None:
            yield Site(recycle, reason.rule.id, "reenter_when", reason.rule.path, None, reason.reenter)
