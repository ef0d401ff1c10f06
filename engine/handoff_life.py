"""A handoff's life after it is made: sales' answer, overdue, the nurture of a recycled lead.

Below :mod:`engine.evaluate` and the kernel, beside :mod:`engine.decision`. The rules
(docs/handoffs.md), each an aggregate of the lead's history as of ``t``:

- **Accepted**: an event of the playbook's ``handoff: accepted`` type whose ``team`` is the
  handoff's team, after the latest recycle trigger (a rejection is one): the answer belongs
  to the handoff the lead holds now, not to one recycled since.
- **Rejected**: an event of the ``handoff: rejected`` type is a recycle trigger for the
  reason its ``reason`` field names (the reason's cooldown applies; ``engine.evaluate``).
- **Overdue**: the due time passed (strictly before ``t``), the handoff is not accepted, and
  no event of a type the playbook marks ``by:`` the handoff's team happened from the
  handoff's start (its due time less the SLA that set it) to ``t``. ``overdue_since`` is the
  due time. ``engine funnel`` counts a waiting handoff overdue by the same rule.
- **Nurture**: a lead whose latest recycle trigger's reason names a track, not excluded and
  not handed off, gets the track and the first content of the track's list for its stage
  that no event of its history (any type, by its ``content`` field) has consumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.compile import CompiledPlaybook, HandoffRule
from engine.decision import Handoff, Nurture
from engine.events import Event


def handoff_sla(cp: CompiledPlaybook, rule: HandoffRule, lead: Mapping[str, Any]) -> int | None:
    """The SLA that set the due time: the shorter of the rule's and the lead source's."""
    slas = [s for s in (rule.sla_seconds, _source_sla(cp, lead)) if s is not None]
    return min(slas) if slas else None


def _source_sla(cp: CompiledPlaybook, lead: Mapping[str, Any]) -> int | None:
    field_name = cp.playbook.lead.source
    source = lead.get(field_name) if field_name is not None else None
    return cp.sources.get(str(source)) if source is not None else None


def overdue_since(due: str | None, sla: int | None, as_of: datetime,
                  worked: Callable[[datetime], bool]) -> str | None:
    """``due`` when it passed before ``as_of`` and ``worked(start)`` says the team did nothing
    from the handoff's start (due − SLA) on; else None."""
    if due is None or sla is None:
        return None
    at = datetime.fromisoformat(due)
    if not at < as_of:
        return None
    return None if worked(at - timedelta(seconds=sla)) else due


def with_life(cp: CompiledPlaybook, rule: HandoffRule, handoff: Handoff, lead: Mapping[str, Any],
              as_of: datetime, events: Sequence[Event], recycled_at: datetime | None) -> Handoff:
    """The handoff with its answer and overdue state, from the lead's events at or before ``as_of``."""
    life = cp.life
    accepted = life.accepted is not None and any(
        e.type == life.accepted and e.fields.get("team") == handoff.to
        and (recycled_at is None or e.at > recycled_at) for e in events)
    since = None
    if not accepted:
        work = life.worked_by(handoff.to)

        def worked(start: datetime) -> bool:
            return any(e.type in work and e.at >= start for e in events)

        since = overdue_since(handoff.due, handoff_sla(cp, rule, lead), as_of, worked)
    if not accepted and since is None:
        return handoff
    return Handoff.from_values(handoff.rule, handoff.to, handoff.due, handoff.priority, accepted, since)


def nurture_of(cp: CompiledPlaybook, reason: str, stage: str, events: Sequence[Event]) -> Nurture | None:
    """The nurture of a lead recycled for ``reason`` at ``stage`` (None: the reason has no track)."""
    rule = next((r for r in cp.recycle if r.rule.id == reason), None)
    if rule is None or rule.nurture is None:
        return None
    items = cp.life.tracks.get(rule.nurture, {}).get(stage, ())
    if not items:
        return Nurture(rule.nurture, None)
    consumed = {e.fields.get("content") for e in events}
    return Nurture(rule.nurture, next((c for c in items if c not in consumed), None))
