"""One lead at one instant → :class:`Decision`: a pure function of (playbook, lead, events, t).

No clock, no randomness, no hidden state: events after ``t`` are ignored, events are
ordered and deduplicated by :class:`History`, and every score is an aggregate of the
history as of ``t``. The order of evaluation is the order of the expression
contexts (personas → targets → fit → surge → engagement → exclusions → stages →
recycle → handoff), so each expression sees exactly what is known at its point.

Rounding: fit, engagement and priority are rounded to two decimals with Python's
``round`` — correctly rounded on the binary value, ties to even. Every backend
must round the same way. Engagement is summed exactly: each event's decayed points
become a whole number of 2**-32 points (``floor(points * 2**32 + 0.5)``), integers
add the same in any order, and the total is divided back. So no backend has to
reproduce Python's order of floating-point additions (SQL's ``SUM`` has no order at
all). 2**-32 is fine enough that the rounded score matches a plain floating-point sum
(an error of about 1e-10 per event) and coarse enough for 64-bit integers (1,000
points, the most one event can score, are 2**42).

Recycling: the latest triggering event (a ``disposition`` whose ``reason`` is the
recycle key, or an event of the reason's ``on`` type) starts a cooldown; the lead
is held (never handed off) until the cooldown ends or ``reenter_when`` holds.

Due times count from the instant the handoff's condition first held, continuously up
to ``t`` (:mod:`engine.due`: exact for the forms it lists, else the latest activity)
— or from the end of a recycle cooldown, when that came later — plus the handoff's
SLA, or the lead source's follow-up time when that is shorter (seed 001: an enquiry
is called at once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from math import floor
from typing import Any

from engine.accounts import AccountFacts, Early
from engine.compile import CompiledPlaybook, FitRule, Rule
from engine.decision import (  # the decision types live below decide and the kernel
    _MEMO_LIMIT,
    Decision,
    Handoff,
    Recycle,
    TraceStep,
    _iso,
    computed_points,
    handoff_of,
    recycle_state,
    score,
)
from engine.due import DuePlan, anchor_us, plans
from engine.events import Event, epoch_us
from engine.expr import CompiledExpression, Scope
from engine.expr.regex import DataPatternError
from engine.handoff_life import nurture_of, with_life
from engine.history import History
from engine.pipeline import EXCLUSIONS, FIT, HANDOFFS, PERSONAS, RECYCLE, STAGES, SURGE, TARGETS, Section

#: Decision and its parts are re-exported: callers of decide import them from here.
__all__ = ["Decision", "Handoff", "KernelBug", "Recycle", "TraceStep", "decide", "decide_for_row", "score"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUANTUM = 4294967296  # 2**32: engagement is summed in units of 2**-32 points (see the module docstring)

class _Evaluation:
    """The state of one evaluation; exists only to share the scope and the trace."""

    def __init__(self, cp: CompiledPlaybook, lead: Mapping[str, Any], history: History,
                 trace: bool) -> None:
        self.cp = cp
        self.history = history
        self.tracing = trace
        self.steps: list[TraceStep] = []
        self.values: dict[str, Any] = {"lead": lead, "lists": cp.lists}
        self._personas: dict[str, bool] = {}
        self.recycled_at: datetime | None = None  # the latest recycle trigger's instant
        self.scope = Scope(self.values, history, self.persona, cp.content_stage_of)

    def persona(self, persona_id: str) -> bool:
        if persona_id not in self._personas:
            rule = next(r for r in self.cp.personas if r.id == persona_id)
            self._personas[persona_id] = bool(self.test(PERSONAS, rule))
        return self._personas[persona_id]

    def run(self, expr: CompiledExpression) -> Any:
        return expr(self.scope)

    def test(self, section: Section, rule: Rule, expr: CompiledExpression | None = None) -> Any:
        expr = expr or rule.expr
        if expr is None:
            return True
        result = expr(self.scope)
        if self.tracing:
            self.record(section, rule.id, rule.line, expr, result)
        return result

    def record(self, section: Section, rule_id: str, line: int, expr: CompiledExpression,
               result: Any) -> None:
        seen: dict[str, Any] = {}
        for name in sorted(expr.names - {"lead", "lists"}):
            seen[name] = self.values.get(name)
        if isinstance(seen.get("stage"), int):  # stages compare by order; people read names
            seen["stage"] = self.cp.stages[seen["stage"]].rule.id
        lead = self.values["lead"]
        for dotted in sorted(expr.fields):
            base, _, attr = dotted.partition(".")
            if base == "lead":
                seen[dotted] = lead.get(attr)
        self.steps.append(TraceStep(section.name, rule_id, line, expr.source, result, seen))


def _fit(ev: _Evaluation) -> tuple[float, dict[str, float]]:
    breakdown: dict[str, float] = {}
    for rule in ev.cp.fit_rules:
        for index, (expr, points) in enumerate(rule.branches):
            held = expr(ev.scope)
            if ev.tracing:
                ev.record(FIT, _label(rule, index), rule.line, expr, held)
            if held is True:
                if not isinstance(points, CompiledExpression):  # written points
                    breakdown[rule.id] = points if rule.cap is None else min(points, rule.cap)
                    if ev.tracing and rule.cap is not None and points > rule.cap:
                        _record_cap(ev, rule, index, points)
                else:
                    breakdown[rule.id] = _points(ev, rule, index, points)
                break
    total = 0.0
    for points in breakdown.values():  # left to right: sum() compensates on Python 3.12+
        total += points
    if ev.cp.fit_cap is not None:
        total = min(total, ev.cp.fit_cap)
    return score(total), breakdown


def _label(rule: FitRule, index: int) -> str:
    return rule.id if len(rule.branches) == 1 else f"{rule.id}[{index}]"


def _points(ev: _Evaluation, rule: FitRule, index: int, expr: CompiledExpression) -> float:
    """What a branch whose points are computed adds: the expression's value made points
    (:func:`engine.decision.computed_points`), then the rule's cap."""
    value = expr(ev.scope)
    points = computed_points(value)
    if ev.tracing:  # explain shows the expression's value and the points it gave
        ev.record(FIT, f"{_label(rule, index)}.points", rule.line, expr, points)
        ev.steps[-1].seen["value"] = value
    if rule.cap is not None and points > rule.cap:
        if ev.tracing:
            _record_cap(ev, rule, index, points)
        return rule.cap
    return points


def _record_cap(ev: _Evaluation, rule: FitRule, index: int, points: float) -> None:
    assert rule.cap is not None
    ev.steps.append(TraceStep(FIT.name, f"{_label(rule, index)}.cap", rule.line, f"cap {rule.cap:g} bit",
                              rule.cap, {"points": points}))


def _engagement(cp: CompiledPlaybook, history: History, after: datetime | None = None,
                breakdown: dict[str, int] | None = None) -> float:
    """Decayed points of the events in the window (after ``after``), capped and rounded.

    Each event adds its decayed points in whole 2**-32 units (an exact integer sum,
    the same in any order and in SQL). A type with a cap (``cp.type_caps``) adds at
    most its cap: its events' units are summed apart, capped, then added; the overall
    ``cap`` applies to the total after that (docs/scoring.md). With ``breakdown``, also adds them under the
    event's type (and content) — the slow part, so the per-lead export path leaves it out.
    """
    events = history.in_window(None, cp.engagement_window_seconds)
    if after is not None:  # both are suffixes of the history: the shorter is the intersection
        since = history.since(None, after)
        events = since if len(since) < len(events) else events
    half_life = cp.half_life_seconds
    as_of = history.as_of
    plain = cp.plain_weights
    memo = cp.content_weights
    weight = cp.weight
    capped = cp.capped_types
    by_bucket: dict[tuple[str, int], int] = {}
    total = 0
    for event in events:
        points = plain.get(event.type)
        if points is None:  # weight reads only the type and the content
            content = event.fields.get("content")
            if type(content) is str:
                key = (event.type, content)
                points = memo.get(key)
                if points is None:
                    points = weight(event)
                    if len(memo) < _MEMO_LIMIT:
                        memo[key] = points
            else:
                points = weight(event)
        if not points:
            continue
        if half_life:
            points *= 0.5 ** ((as_of - event.at).total_seconds() / half_life)
        units = floor(points * 4294967296.0 + 0.5)
        if capped and event.type in capped:
            bucket = (event.type, cp.cap_bucket(event.type, event.fields.get("content")))
            by_bucket[bucket] = by_bucket.get(bucket, 0) + units
        else:
            total += units
        if breakdown is not None:
            content = event.fields.get("content")
            label = f"{event.type}:{content}" if content else event.type
            breakdown[label] = breakdown.get(label, 0) + units
    if by_bucket:
        total += _capped_units(cp, by_bucket, breakdown)
    points_total = total / QUANTUM
    if cp.engagement_cap is not None:
        points_total = min(points_total, cp.engagement_cap)
    return score(points_total)


def _capped_units(cp: CompiledPlaybook, by_bucket: dict[tuple[str, int], int],
                  breakdown: dict[str, int] | None) -> int:
    """The capped types' units: each capped content glob's units capped, added to the type's
    other units, then the type's cap. With ``breakdown``, what each cap took away (explain)."""
    total = 0
    for event_type in cp.capped_types:
        units = by_bucket.get((event_type, 0), 0)
        for index, (glob, cap) in enumerate(cp.content_caps.get(event_type, {}).items(), 1):
            found = by_bucket.get((event_type, index), 0)
            if found > cap and breakdown is not None:
                breakdown[f"{event_type}:{glob} (cap)"] = cap - found
            units += min(found, cap)
        type_cap = cp.type_caps.get(event_type)
        if type_cap is not None and units > type_cap:
            if breakdown is not None:
                breakdown[f"{event_type} (cap)"] = type_cap - units
            units = type_cap
        total += units
    return total


def _surge_counts(cp: CompiledPlaybook, history: History) -> tuple[int, int]:
    window = timedelta(seconds=cp.surge_window_seconds)
    t = history.as_of
    if cp.surge_events is None:
        return history.count_between(t - window, t), history.count_between(t - 2 * window, t - window)
    recent = prior = 0
    for event in history.since(None, t - 2 * window):
        if event.type in cp.surge_events:
            if event.at > t - window:
                recent += 1
            else:
                prior += 1
    return recent, prior


def _stage_index(ev: _Evaluation) -> int:
    found = 0
    if ev.tracing:
        for index, stage in enumerate(ev.cp.stages):
            if index and ev.test(STAGES, stage.rule) is True:
                found = index
        return found
    scope = ev.scope  # the same calls as ev.test, without a frame per stage
    for index, stage in enumerate(ev.cp.stages):
        expr = stage.rule.expr
        if index and (expr is None or expr(scope) is True):
            found = index
    return found


def _recycle(ev: _Evaluation) -> tuple[Recycle | None, bool, datetime | None]:
    """The latest recycle trigger at or before t, whether it holds the lead now, and
    when its cooldown ran out (if it did, without an early re-entry)."""
    cp, history = ev.cp, ev.history
    latest: tuple[Event, Any] | None = None
    rejected = cp.life.rejected  # a rejected handoff recycles with its reason (docs/handoffs.md)
    for rule in cp.recycle:
        for kind in (rule.on,) if rejected in (None, rule.on) else (rule.on, rejected):
            reasoned = kind in ("disposition", rejected)
            for event in reversed(history.of_type(kind)):
                if reasoned and event.fields.get("reason") != rule.rule.id:
                    continue
                if latest is None or event.sort_key() > latest[0].sort_key():
                    latest = (event, rule)
                break
    if latest is None:
        return None, False, None
    event, rule = latest
    ev.recycled_at = event.at
    reentered = False
    if rule.reenter is not None:
        ev.values["recycled_at"] = event.at
        ev.values["engagement_since_recycle"] = _engagement(cp, history, after=event.at)
        ev.values["events_since_recycle"] = len(history.since(None, event.at))
        reentered = ev.test(RECYCLE, rule.rule, rule.reenter) is True
    return recycle_state(cp, rule, event.at, history.as_of, reentered)


def _handoff(ev: _Evaluation, lead: Mapping[str, Any], released: datetime | None,
             account: AccountFacts | None) -> Handoff | None:
    history = ev.history

    def latest() -> datetime:
        last = history.last()
        return last.at if last is not None else history.as_of

    def account_latest() -> datetime:  # an account handoff: the account's latest activity
        return account.latest if account is not None and account.latest is not None else latest()

    for index, handoff in enumerate(ev.cp.handoffs):
        if ev.test(HANDOFFS, handoff.rule) is not True:
            continue
        value = ev.run(handoff.priority) if handoff.priority is not None else None
        anchor = account_latest if handoff.per_account else partial(_anchor, plans(ev.cp)[index], history)
        made = handoff_of(ev.cp, handoff, lead, value, anchor, released)
        return with_life(ev.cp, handoff, made, lead, history.as_of, history.events, ev.recycled_at)
    return None


def _anchor(plan: DuePlan, history: History) -> datetime:
    """When the handoff's condition first held (:mod:`engine.due`)."""
    events = history.events
    first = anchor_us(plan, [epoch_us(e.at) for e in events], [e.type for e in events],
                      lambda i, name: events[i].fields.get(name), epoch_us(history.as_of))
    return _EPOCH + timedelta(microseconds=first)


def decide(
    cp: CompiledPlaybook,
    lead: Mapping[str, Any],
    events: Sequence[Event] | History,
    as_of: datetime,
    *,
    lead_id: str = "",
    trace: bool = False,
    detail: bool = True,
    account: AccountFacts | None = None,
) -> Decision:
    """The playbook's decision for one lead at ``as_of`` (aware; naive means the playbook's zone).

    ``detail=False`` leaves ``engagement_breakdown`` empty (every other field is the
    same): building it per event is most of the engagement cost, and exports
    (``to_row``) never show it. ``account`` is the lead's account at ``as_of``
    (:mod:`engine.accounts`); without it ``account.*`` reads as missing.
    """
    decision = _decide(cp, lead, events, as_of, lead_id, trace, detail, account, early=False)
    assert isinstance(decision, Decision)
    return decision


def early_facts(cp: CompiledPlaybook, lead: Mapping[str, Any], events: Sequence[Event] | History,
                as_of: datetime, account: AccountFacts | None) -> Early:
    """The lead's own target status, fit, engagement, exclusion and personas (the account
    step's inputs), with ``account.target`` as its target status when given."""
    found = _decide(cp, lead, events, as_of, "", False, False, account, early=True)
    assert isinstance(found, Early)
    return found


def _decide(cp: CompiledPlaybook, lead: Mapping[str, Any], events: Sequence[Event] | History,
            as_of: datetime, lead_id: str, trace: bool, detail: bool, account: AccountFacts | None,
            *, early: bool) -> Decision | Early:
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=cp.tz)
    history = events if isinstance(events, History) and events.as_of == as_of else History(
        events.events if isinstance(events, History) else events, as_of
    )
    ev = _Evaluation(cp, lead, history, trace)
    values = ev.values
    personas = tuple(r.id for r in cp.personas if ev.persona(r.id))
    values["target_account"] = bool(cp.target_accounts and ev.test(TARGETS, cp.target_accounts))
    if account is not None:  # an account is a target if any of its leads is (engine.accounts)
        values["target_account"] = account.target
    values["target_lead"] = bool(cp.target_leads and ev.test(TARGETS, cp.target_leads))
    fit, fit_breakdown = _fit(ev)
    recent, prior = _surge_counts(cp, history) if cp.surge else (0, 0)
    values.update(recent=recent, prior=prior)
    surge = bool(cp.surge and ev.test(SURGE, cp.surge) is True)
    parts: dict[str, int] | None = {} if detail else None
    engagement = _engagement(cp, history, breakdown=parts)
    engagement_breakdown = {k: score(v / QUANTUM) for k, v in sorted(parts.items())} if parts else {}
    values.update(fit=fit, engagement=engagement, surge=surge)
    excluded = next((r.id for r in cp.exclusions if ev.test(EXCLUSIONS, r) is True), None)
    if early:
        last = history.last()
        return Early(account.key if account is not None else "", values["target_account"], fit,
                     engagement, excluded, personas, last.at if last is not None else None)
    if account is not None:
        values["account"] = account.record()
        if trace:  # explain shows the account's values beside the rules that read them
            record = account.record()
            for name in ("fit", "engagement", "contacts", "target"):
                ev.steps.append(TraceStep("account", name, 0, f"account.{name}", record[name], {}))
            for persona_id, found in sorted(record["personas"].items()):
                ev.steps.append(TraceStep("account", f"persona:{persona_id}", 0,
                                          f'account_persona("{persona_id}")', found, {}))
    stage_index = _stage_index(ev)
    if stage_index < cp.last_sticky:
        stage_index = max(stage_index, _sticky_floor(cp, lead, history, stage_index))
    values["stage"] = stage_index
    recycle, held, released = _recycle(ev)
    handoff = None if excluded or held else _handoff(ev, lead, released, account)
    stage = cp.stages[stage_index]
    nurture = None
    if recycle is not None and not excluded and handoff is None:
        nurture = nurture_of(cp, recycle.reason, stage.rule.id, history.events)
    return Decision(
        lead_id=lead_id,
        as_of=_iso(cp, as_of),
        excluded=excluded,
        personas=personas,
        target_account=values["target_account"],
        target_lead=values["target_lead"],
        fit=fit,
        fit_breakdown=fit_breakdown,
        engagement=engagement,
        engagement_breakdown=engagement_breakdown,
        recent=recent,
        prior=prior,
        surge=surge,
        stage=stage.rule.id,
        owner=stage.owner,
        recycle=recycle,
        handoff=handoff,
        trace=tuple(ev.steps),
        account=account.key if account is not None else "",
        nurture=nurture,
    )


def decide_for_row(
    cp: CompiledPlaybook,
    lead: Mapping[str, Any],
    events: Sequence[Event] | History,
    as_of: datetime,
    *,
    lead_id: str = "",
) -> Decision:
    """:func:`decide` with ``detail=False``, for exports: ``to_row()`` shows no breakdown.

    Runs the playbook's generated kernel (:mod:`engine.kernel`, same answers to the bit)
    when it has one and the events are a plain sequence; else ``decide``. Same call
    shape as ``decide`` so the batch loop (and tests that wrap it) stay as is.
    """
    if not isinstance(events, History):
        kernel = _kernel_for(cp)
        if kernel is not None:
            try:
                decision: Decision | None = kernel.decide(lead, events, as_of, lead_id)
            except DataPatternError:
                raise  # the lead's own data (an invalid regex in a field): a reject, not a bug
            except Exception as error:
                raise KernelBug(f"the batch kernel failed on lead {lead_id!r}: "
                                f"{type(error).__name__}: {error}") from error
            if decision is not None:
                return decision
    return decide(cp, lead, events, as_of, lead_id=lead_id, detail=False)


class KernelBug(RuntimeError):
    """The generated kernel raised outside its known ``decide`` cases (see ``engine.kernel``).

    A bug, never a property of the lead: the batch must not turn it into a reject or hide
    it behind ``decide``, so ``engine evaluate`` exits 3 with a crash log.
    """


def _kernel_for(cp: CompiledPlaybook) -> Any:
    """``engine.kernel.kernel_for``, imported on first use (the kernel imports this module)."""
    global _KERNEL_FOR
    if _KERNEL_FOR is None:
        from engine.kernel import kernel_for

        _KERNEL_FOR = kernel_for
    return _KERNEL_FOR(cp)


_KERNEL_FOR: Any = None


def _sticky_floor(cp: CompiledPlaybook, lead: Mapping[str, Any], history: History,
                  current: int) -> int:
    """The highest sticky stage reached after any earlier event ("reached at any event")."""
    floor = current
    times = sorted({e.at for e in history.events if e.at < history.as_of}, reverse=True)
    best_sticky = max(i for i, s in enumerate(cp.stages) if s.sticky)
    for instant in times:
        if floor >= best_sticky:
            break
        earlier = decide(cp, lead, history.events, instant, detail=False)
        index = cp.stage_index(earlier.stage)
        if cp.stages[index].sticky and index > floor:
            floor = index
    return floor
