"""A lead's history → :class:`Timeline`: the decision after each event, and what changed.

Replay is ``decide`` at every instant where something happens — each event's time,
the extra instants a fixture asks for, the moment a recycle cooldown runs out, and
the final as-of time — so the timeline shows what a reviewer wants to see: stage
entered, score crossed a threshold, handoff fired, recycle started or ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.account_decide import decide_accounts
from engine.accounts import Member, uses_accounts
from engine.compile import CompiledPlaybook
from engine.evaluate import Decision, decide
from engine.events import Event
from engine.history import History


@dataclass(frozen=True)
class Step:
    """The decision at one instant, the events that happened then, and the changes."""

    at: datetime
    events: tuple[Event, ...]
    decision: Decision
    changes: tuple[str, ...]
    reason: str  # "event", "check", "cooldown end" or "as of"


@dataclass(frozen=True)
class Timeline:
    """Every step of a replay, oldest first; the last step is the decision at ``as_of``."""

    lead_id: str
    steps: tuple[Step, ...]

    @property
    def final(self) -> Decision:
        """The decision at the end of the replay."""
        return self.steps[-1].decision


def thresholds(cp: CompiledPlaybook) -> dict[str, list[float]]:
    """Numeric thresholds the playbook compares scores with, per score name."""
    found: dict[str, set[float]] = {}
    rules = [*cp.exclusions, *(s.rule for s in cp.stages), *(h.rule for h in cp.handoffs)]
    for rule in rules:
        if rule.expr is None:
            continue
        for fact in rule.expr.comparisons():
            if fact.name in ("fit", "engagement"):
                found.setdefault(fact.name, set()).add(float(fact.value))
    return {name: sorted(values) for name, values in found.items()}


def _crossed(name: str, before: float, after: float, levels: Sequence[float]) -> str | None:
    up = [v for v in levels if before < v <= after]
    down = [v for v in levels if after < v <= before]
    if up:
        return f"{name} rose past {max(up):g}"
    if down:
        return f"{name} fell below {min(down):g}"
    return None


def changes(before: Decision | None, after: Decision,
            levels: dict[str, list[float]]) -> tuple[str, ...]:
    """What differs between two consecutive decisions, in words a reviewer reads."""
    out: list[str] = []
    if before is None or before.excluded != after.excluded:
        if after.excluded:
            out.append(f"excluded by {after.excluded}")
        elif before is not None:
            out.append(f"no longer excluded (was {before.excluded})")
    if before is not None:
        for name in ("fit", "engagement"):
            note = _crossed(name, getattr(before, name), getattr(after, name), levels.get(name, []))
            if note:
                out.append(note)
        gained = sorted(set(after.personas) - set(before.personas))
        lost = sorted(set(before.personas) - set(after.personas))
        out += [f"persona {p} matched" for p in gained] + [f"persona {p} lost" for p in lost]
        if before.surge != after.surge:
            out.append("surge started" if after.surge else "surge ended")
    if before is None or before.stage != after.stage:
        origin = f"{before.stage} → " if before is not None else ""
        out.append(f"stage {origin}{after.stage} (owner {after.owner})")
    was = before.recycle if before is not None else None
    now = after.recycle
    if now is not None and now.active and (was is None or not was.active or was.since != now.since):
        out.append(f"recycle started: {now.reason} until {now.until}")
    elif was is not None and was.active and (now is None or not now.active):
        ended = "re-entered early" if now is not None and now.reentered else "cooldown over"
        out.append(f"recycle ended: {was.reason} ({ended})")
    old = before.handoff if before is not None else None
    new = after.handoff
    if new is not None and (old is None or (old.rule, old.to) != (new.rule, new.to)):
        out.append(f"handoff {new.rule} → {new.to} (due {new.due or '-'}, priority "
                   f"{_num(new.priority)})")
    elif old is not None and new is None:
        out.append(f"handoff {old.rule} withdrawn")
    if new is not None and new.accepted and not (old is not None and old.accepted):
        out.append(f"handoff {new.rule} accepted by {new.to}")
    if new is not None and new.overdue_since and not (old is not None and old.overdue_since):
        out.append(f"handoff {new.rule} overdue since {new.overdue_since} (no work by {new.to})")
    elif new is not None and not new.overdue_since and old is not None and old.overdue_since:
        out.append(f"handoff {new.rule} no longer overdue")
    was_nurture = before.nurture if before is not None else None
    if after.nurture is not None and after.nurture != was_nurture:
        out.append(f"nurture {after.nurture.track}: next {after.nurture.next_content or 'none left'}")
    primary = before.account_primary if before is not None else ""
    if after.account_primary != primary:
        out.append(f"listed under {after.account_primary}'s account handoff" if after.account_primary
                   else f"no longer listed under {primary}'s account handoff")
    listed = before.account_contacts if before is not None else ()
    if after.account_contacts != listed:
        out.append("account handoff lists " + (", ".join(after.account_contacts) or "no other contact"))
    return tuple(out)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _ends_now(previous: Decision | None, t: datetime) -> bool:
    recycle = previous.recycle if previous is not None else None
    return recycle is not None and recycle.active and datetime.fromisoformat(recycle.until) == t


def replay(
    cp: CompiledPlaybook,
    lead: dict[str, Any],
    events: Sequence[Event],
    as_of: datetime,
    *,
    lead_id: str = "",
    check_at: Sequence[datetime] = (),
    contacts: Sequence[Member] = (),
) -> Timeline:
    """Decide after every event (and at the extra instants) up to ``as_of``.

    With accounts (:mod:`engine.accounts`), each decision takes the whole account: the
    lead with its ``contacts``, each with its own events; a contact's event is a step too.
    """
    history = History(events, as_of)  # ordered and deduplicated once
    by_instant: dict[datetime, list[Event]] = {}
    for event in history.events:
        by_instant.setdefault(event.at, []).append(event)
    instants: dict[datetime, str] = {t: "event" for t in by_instant}
    accounts = bool(contacts) or uses_accounts(cp)
    account_events: dict[datetime, list[str]] = {}
    for contact in contacts:
        for event in History(contact.events, as_of).events:
            account_events.setdefault(event.at, []).append(f"{contact.lead_id} {event.type}")
    for t, happened in sorted(account_events.items()):
        instants.setdefault(t, "account: " + "; ".join(happened))
    for t in check_at:
        if t <= as_of:
            instants.setdefault(t, "check")
    instants.setdefault(as_of, "as of")
    pending = sorted(instants)
    levels = thresholds(cp)
    steps: list[Step] = []
    previous: Decision | None = None
    index = 0
    while index < len(pending):
        t = pending[index]
        index += 1
        if instants[t] == "cooldown end" and not _ends_now(previous, t):
            continue  # a later trigger replaced the recycle that ended here
        if accounts:
            members = [Member(lead_id, lead, history.events), *contacts]
            decision = decide_accounts(cp, members, t)[0]
        else:
            decision = decide(cp, lead, history.events, t, lead_id=lead_id)
        recycle = decision.recycle
        if recycle is not None and recycle.active:
            until = datetime.fromisoformat(recycle.until)
            if until <= as_of and until not in instants:
                instants[until] = "cooldown end"
                pending = sorted(instants)
        step_changes = changes(previous, decision, levels)
        steps.append(Step(t, tuple(by_instant.get(t, ())), decision, step_changes, instants[t]))
        previous = decision
    return Timeline(lead_id, tuple(steps))
