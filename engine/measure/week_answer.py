"""What the funnel reads of a decision, and a kernel that builds only that.

The funnel decides each lead at every week end (≈24 decisions a lead); profiled, a
tenth of that time went to building full :class:`~engine.decision.Decision` objects
(a dict of 18 entries, breakdowns) that the funnel reads six attributes of. The
same generated kernel, handed :func:`answer` as its ``Decision`` builder, computes
exactly what it computed before and keeps only those six: the stage, exclusion and
handoff (team, rule, due, priority) are the kernel's own values, not recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from engine.compile import CompiledPlaybook
from engine.decision import Decision, Handoff, priority_of


class WeekAnswer(NamedTuple):
    """A decision as the funnel reads it (attribute names as on :class:`Decision`)."""

    stage: str
    excluded: str | None
    handoff: Handoff | None
    personas: tuple[str, ...]
    target_account: bool
    target_lead: bool

    @classmethod
    def of(cls, decision: Decision | WeekAnswer) -> WeekAnswer:
        """The answer of a full decision (``decide_for_row``'s, where the kernel declines)."""
        if isinstance(decision, WeekAnswer):
            return decision
        return cls(decision.stage, decision.excluded, decision.handoff, decision.personas,
                   decision.target_account, decision.target_lead)


def answer(lead_id: str, as_of: str, excluded: str | None, personas: tuple[str, ...],
           target_account: bool, target_lead: bool, fit: float, fit_breakdown: Any, engagement: float,
           engagement_breakdown: Any, recent: int, prior: int, surge: bool, stage: str, owner: str,
           recycle: Any, handoff: Handoff | None, nurture: Any = None) -> WeekAnswer:
    """:meth:`Decision.from_values`'s arguments → the funnel's answer."""
    return _new(WeekAnswer, (stage, excluded, handoff, personas, target_account, target_lead))


_new = tuple.__new__  # NamedTuple's own __new__ is a lambda around it: one call less a decision


#: Handoffs and priorities made so far, shared (a Handoff is frozen): a handoff whose
#: priority moves with engagement is built at ~0.5 M (lead, week) frames of 100k leads,
#: from a few thousand distinct (rule, team, priority) values.
_HANDOFFS: dict[tuple[str, str, str | None, float | None], Handoff] = {}
_PRIORITIES: dict[float, float | None] = {}
_MEMO_LIMIT = 1 << 16


def _priority(value: Any) -> float | None:
    """:func:`~engine.decision.priority_of`, remembered for a float (equal floats give
    the same priority: ``score(float(value))``)."""
    if value.__class__ is not float:
        return priority_of(value)
    found = _PRIORITIES.get(value, _MISSING)
    if found is _MISSING:
        if len(_PRIORITIES) >= _MEMO_LIMIT:
            _PRIORITIES.clear()
        found = _PRIORITIES[value] = priority_of(value)
    return found  # type: ignore[return-value]


def _handoff(rule: str, to: str, due: str | None, priority: float | None) -> Handoff:
    """:meth:`Handoff.from_values`, one object per distinct value (the funnel reads its
    fields; nothing compares handoffs by identity but to skip work). A zero or no
    priority is not remembered (0.0 and -0.0 are one key)."""
    if not priority:
        return Handoff.from_values(rule, to, due, priority)
    key = (rule, to, due, priority)
    found = _HANDOFFS.get(key)
    if found is None:
        if len(_HANDOFFS) >= _MEMO_LIMIT:
            _HANDOFFS.clear()
        found = _HANDOFFS[key] = Handoff.from_values(rule, to, due, priority)
    return found


_MISSING = object()
_BUILDERS: dict[str, Callable[..., Any]] = {"new_handoff": _handoff, "priority_of": _priority}


def week_kernel(cp: CompiledPlaybook) -> Any:
    """The playbook's kernel answering :class:`WeekAnswer` (built once), or None when the
    playbook has no generated form. Its ``decide`` returns a WeekAnswer or None."""
    from engine.kernel import kernel_for

    return kernel_for(cp, decision=answer, builders=_BUILDERS)
