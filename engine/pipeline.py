"""The decision pipeline's sections, declared once, and every expression a playbook holds.

A decision runs personas → targets → fit → surge → exclusions → stages → handoffs →
recycle (``engine.functions.CONTEXTS``, where each section's expressions are checked).
:data:`PIPELINE` is that order and each :class:`Section` says what the readers need: its
playbook key (compile builds its rules' paths from it, the SQL query its messages), how
a message, explain's trace and coverage's report name it, how to get its compiled rules
from a :class:`~engine.compile.CompiledPlaybook`, and how a Decision says one held.

The backends (the generated kernel, the SQL query) walk the sections with :func:`walk`
(in :data:`DECISION_ORDER`: recycling is decided before the handoffs), one emitter per
section context, so a section a backend lacks stops it loudly instead of being skipped.
:func:`expression_sites` walks a compiled playbook's expressions in pipeline order, once,
for every reader that needs them all (validate's SQL check, the SQL dialect notes, lint,
leakage): a new section is added here and they all see it.

Accounts (:mod:`engine.accounts`) are a step with no expressions of its own: the
account's target status is combined right after targets, and its values (``account.*``,
``account_persona``) right after exclusions, so they are known from stages on (their
registry entries say ``since="stage"``) and never in fit, surge or exclusions, which
they are computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from engine.functions import CONTEXTS, Context

if TYPE_CHECKING:
    from engine.compile import CompiledPlaybook, NodePath
    from engine.decision import Decision
    from engine.expr import CompiledExpression

T = TypeVar("T")


class Named(Protocol):
    """A compiled rule as the readers of every section see it: its id, where it is
    written (under its section's ``path``) and its line."""

    @property
    def id(self) -> str: ...

    @property
    def path(self) -> NodePath: ...

    @property
    def line(self) -> int: ...


@dataclass(frozen=True)
class Section:
    """One section of the pipeline.

    ``context``: its checker context (``engine.functions.CONTEXTS``) and the key of its
    emitter in each backend; ``key``: where it is written in a playbook (dotted), the
    start of its rules' paths and of the SQL query's messages; ``label``: how a message
    names one of its rules; ``name``: how explain's trace and coverage's report name it;
    ``rules``: its compiled rules in a CompiledPlaybook; ``held``: the ids of its rules
    that held in a Decision, None when coverage does not count the section (targets and
    surge are inputs to other rules, not rules a fixture must exercise)."""

    context: Context
    key: str
    label: str
    name: str
    rules: Callable[[CompiledPlaybook], tuple[Named, ...]]
    held: Callable[[Decision], Iterable[str]] | None = None

    @property
    def path(self) -> tuple[str, ...]:
        """``key`` as a node path (``scoring.fit`` → ``("scoring", "fit")``)."""
        return tuple(self.key.split("."))

    @property
    def counted(self) -> bool:
        """Whether coverage counts its rules (``engine test --coverage``)."""
        return self.held is not None


def _present(*rules: Named | None) -> tuple[Named, ...]:
    return tuple(r for r in rules if r is not None)


PERSONAS = Section("persona", "personas", "persona", "personas", lambda cp: cp.personas,
                   lambda d: d.personas)
TARGETS = Section("target", "targets", "target", "targets",
                  lambda cp: _present(cp.target_accounts, cp.target_leads))
FIT = Section("fit", "scoring.fit", "fit rule", "fit", lambda cp: cp.fit_rules,
              lambda d: d.fit_breakdown)
SURGE = Section("surge", "scoring.surge", "surge", "surge", lambda cp: _present(cp.surge))
EXCLUSIONS = Section("exclusion", "exclusions", "exclusion", "exclusions", lambda cp: cp.exclusions,
                     lambda d: _present_ids(d.excluded))
STAGES = Section("stage", "stages", "stage", "stages", lambda cp: tuple(s.rule for s in cp.stages),
                 lambda d: (d.stage,))
HANDOFFS = Section("handoff", "handoffs", "handoff", "handoffs",
                   lambda cp: tuple(h.rule for h in cp.handoffs),
                   lambda d: _present_ids(d.handoff.rule if d.handoff else None))
RECYCLE = Section("recycle", "recycle", "recycle", "recycle", lambda cp: tuple(r.rule for r in cp.recycle),
                  lambda d: _present_ids(d.recycle.reason if d.recycle else None))


def _present_ids(rule_id: str | None) -> tuple[str, ...]:
    return (rule_id,) if rule_id else ()


PIPELINE: tuple[Section, ...] = (PERSONAS, TARGETS, FIT, SURGE, EXCLUSIONS, STAGES, HANDOFFS, RECYCLE)
assert tuple(s.context for s in PIPELINE) == CONTEXTS  # one order, the checker's

BY_CONTEXT: dict[str, Section] = {s.context: s for s in PIPELINE}

#: The order a decision is made in, which every backend's :func:`walk` follows:
#: :data:`PIPELINE`'s, but recycling before the handoffs, because a held lead is never
#: handed off. Only the order of what an expression may read differs: ``reenter_when``
#: may read all a handoff's condition may (``stage``), and nothing of a handoff.
DECISION_ORDER: tuple[Section, ...] = (PERSONAS, TARGETS, FIT, SURGE, EXCLUSIONS, STAGES, RECYCLE, HANDOFFS)
assert sorted(DECISION_ORDER, key=PIPELINE.index) == list(PIPELINE)  # each section once


class MissingSection(LookupError):
    """A backend has no emitter for a section of :data:`PIPELINE`: a bug, never a user's."""


def walk(emitters: Mapping[Section, T], backend: str) -> list[tuple[Section, T]]:
    """The sections in :data:`DECISION_ORDER`, each with its emitter in ``emitters``.

    Raises :class:`MissingSection` before anything is emitted when a section has none (a
    section added here and not yet to ``backend``), or when ``emitters`` has one for a
    section that is not in the pipeline."""
    missing = [s.context for s in PIPELINE if s not in emitters]
    unknown = sorted(s.context for s in emitters if s not in PIPELINE)
    if missing or unknown:
        raise MissingSection(
            f"{backend}: " + "; ".join(
                [*([f"no emitter for section(s) {', '.join(missing)}"] if missing else []),
                 *([f"an emitter for no section: {', '.join(unknown)}"] if unknown else [])]))
    return [(s, emitters[s]) for s in DECISION_ORDER]


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
    persona, target, fit, surge, exclusion, stage, handoff, recycle = (
        PERSONAS, TARGETS, FIT, SURGE, EXCLUSIONS, STAGES, HANDOFFS, RECYCLE)
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
