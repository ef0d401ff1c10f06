"""Per-rule figures for fit rules and engagement types (``engine backtest --per-rule``).

Decision rows carry no per-rule breakdown of the scores, so two things are computed
besides the backtest's own run, both with the engine itself (no second copy of the
semantics): which fit rules (and ``first_of`` branches) held and which engagement types
scored for each lead — ``decide`` with its trace, the path ``engine explain`` shows —
and, per rule, the playbook without that rule, compiled and run through the same
``engine evaluate`` as the backtest, so the "lift lost when removed" is measured on
real decisions (stages, handoffs and priorities re-decided), never estimated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from engine.compile import CompiledPlaybook, compile_playbook
from engine.diagnostics import EngineError, Severity
from engine.evaluate import decide
from engine.io import EventsFile, LeadsFile, iter_leads_with_events
from engine.io.mapping import Mapping
from engine.model import EventPoints
from engine.pipeline import FIT

#: (kind, id): a fit rule's id, a ``first_of`` branch as ``id[i]``, or an event type.
RuleKey = tuple[str, str]


def fired(cp: CompiledPlaybook, leads: Path, events: Path | None, mapping: Mapping, as_of: datetime,
          encoding: str | None) -> dict[str, frozenset[RuleKey]]:
    """Per lead id: the fit rules and branches that held and the engagement types that scored.

    Rows the backtest's own run rejected are skipped here too (the same readers)."""
    allowed = frozenset(cp.playbook.events)
    lead_rows = LeadsFile(leads, mapping, on_reject=lambda _: None, as_of=as_of, allowed_types=allowed,
                          encoding=encoding)
    event_rows = (EventsFile(events, mapping, on_reject=lambda _: None, allowed_types=allowed,
                             encoding=encoding) if events is not None else ())
    pairs = iter_leads_with_events(lead_rows, event_rows, on_reject=lambda _: None)
    found: dict[str, frozenset[RuleKey]] = {}
    try:
        for lead, history in pairs:
            decision = decide(cp, lead.fields, history, as_of, lead_id=lead.lead_id, trace=True)
            keys: set[RuleKey] = set()
            for step in decision.trace:
                if step.section == FIT.name and step.result is True:
                    keys.add(("fit", step.rule))
                    keys.add(("fit", step.rule.partition("[")[0]))
            for label, points in decision.engagement_breakdown.items():
                if points and not label.endswith("(cap)"):
                    keys.add(("engagement", label.partition(":")[0]))
            found[lead.lead_id] = frozenset(keys)
    finally:
        close = getattr(pairs, "close", None)
        if close is not None:
            close()
    return found


def removable(cp: CompiledPlaybook) -> Iterator[RuleKey]:
    """The rules whose removal is measured: each fit rule and each branch of a ``first_of``
    group of several, each declared event type with points (of its own or per content)."""
    for rule in cp.fit_rules:
        yield "fit", rule.id
        if len(rule.branches) > 1:
            yield from (("fit", f"{rule.id}[{index}]") for index in range(len(rule.branches)))
    engagement = cp.playbook.scoring.engagement
    for event_type, value in engagement.points.items() if engagement is not None else ():
        scored = bool(value.points or value.content) if isinstance(value, EventPoints) else bool(value)
        if scored and event_type in cp.playbook.events:
            yield "engagement", event_type


def without(cp: CompiledPlaybook, key: RuleKey) -> CompiledPlaybook:
    """The playbook with one fit rule, one ``first_of`` branch (``id[i]``: the others still
    tried in order), or one event type's engagement points, removed."""
    kind, rule_id = key
    pb = cp.playbook
    scoring = pb.scoring
    if kind == "fit":
        assert scoring.fit is not None
        name, _, index = rule_id.partition("[")
        rules = []
        for r in scoring.fit.rules:
            if r.id != name:
                rules.append(r)
            elif index:  # drop one branch; a group always keeps at least one (it had several)
                dropped = int(index.rstrip("]"))
                assert r.first_of is not None
                rules.append(r.model_copy(update={"first_of": [b for i, b in enumerate(r.first_of)
                                                                if i != dropped]}))
        fit = scoring.fit.model_copy(update={"rules": rules})
        scoring = scoring.model_copy(update={"fit": fit})
    else:
        assert scoring.engagement is not None
        points = {k: v for k, v in scoring.engagement.points.items() if k != rule_id}
        scoring = scoring.model_copy(update={"engagement": scoring.engagement.model_copy(
            update={"points": points})})
    variant, problems = compile_playbook(pb.model_copy(update={"scoring": scoring}), Path(cp.source).parent)
    if variant is None:  # the playbook compiled; removing points cannot break it — a bug if it does
        raise EngineError(f"{cp.source}: the playbook without {kind} {rule_id} does not compile",
                          [d for d in problems if d.severity is Severity.ERROR])
    variant.source = cp.source
    return variant
