"""Decisions and timelines as text for people: the format snapshots are stored in.

Snapshots are reviewed in pull requests, so this text is the contract: one line per
step with the scores after it, indented lines for what changed, and the final
decision in full. Numbers use ``:g`` so 12.0 prints as 12.
"""

from __future__ import annotations

from typing import Any

from engine.decision import Decision, TraceStep
from engine.events import Event
from engine.replay import Timeline


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _event(event: Event) -> str:
    fields = " ".join(f"{k}={v}" for k, v in sorted(event.fields.items()))
    ident = f" [{event.id}]" if event.id else ""
    return f"{event.type}{' ' + fields if fields else ''}{ident}"


def _breakdown(parts: dict[str, float]) -> str:
    return ", ".join(f"{k} {_num(v)}" for k, v in parts.items()) or "nothing scored"


def render_decision(d: Decision) -> str:
    """The full decision, one fact per line."""
    lines = [
        f"decision for {d.lead_id or '(lead)'} at {d.as_of}",
        f"  excluded:    {d.excluded or 'no'}",
        f"  personas:    {', '.join(d.personas) or 'none'}",
        f"  targets:     account={'yes' if d.target_account else 'no'}, "
        f"lead={'yes' if d.target_lead else 'no'}",
        f"  fit:         {_num(d.fit)} ({_breakdown(d.fit_breakdown)})",
        f"  engagement:  {_num(d.engagement)} ({_breakdown(d.engagement_breakdown)})",
        f"  surge:       {'yes' if d.surge else 'no'} (recent {d.recent}, prior {d.prior})",
        f"  stage:       {d.stage} (owner {d.owner})",
    ]
    if d.recycle is None:
        lines.append("  recycle:     none")
    else:
        r = d.recycle
        state = "active" if r.active else ("re-entered" if r.reentered else "over")
        lines.append(f"  recycle:     {r.reason} since {r.since} until {r.until} ({state})")
    if d.handoff is None:
        lines.append("  handoff:     none")
    else:
        h = d.handoff
        lines.append(f"  handoff:     {h.rule} → {h.to}, due {h.due or '-'}, "
                     f"priority {_num(h.priority)}")
        if h.accepted or h.overdue_since:  # a handoff's life (docs/handoffs.md)
            lines.append(f"  answer:      accepted by {h.to}" if h.accepted
                         else f"  overdue:     since {h.overdue_since} (no work by {h.to})")
    if d.nurture is not None:
        lines.append(f"  nurture:     {d.nurture.track}, next {d.nurture.next_content or 'none left'}")
    if d.account_primary or d.account_contacts:  # an account-level handoff (docs/accounts.md)
        lines.append(f"  account:     {d.account}"
                     + (f", listed under {d.account_primary}" if d.account_primary else "")
                     + (f", contacts {', '.join(d.account_contacts)}" if d.account_contacts else ""))
    return "\n".join(lines) + "\n"


def render_timeline(timeline: Timeline, title: str = "") -> str:
    """The timeline: per step the instant, the events, the scores after, the changes."""
    lines = [title] if title else []
    for step in timeline.steps:
        d = step.decision
        happened = "; ".join(_event(e) for e in step.events) or f"({step.reason})"
        lines.append(f"{d.as_of}  {happened}")
        lines.append(f"    fit {_num(d.fit)} · engagement {_num(d.engagement)} · stage {d.stage}"
                     f" · route {d.route}")
        lines.extend(f"    * {change}" for change in step.changes)
    lines.append("")
    return "\n".join(lines) + "\n" + render_decision(timeline.final)


def render_trace(steps: tuple[TraceStep, ...]) -> str:
    """Every rule evaluated, in order, with what it saw (like OPA's --explain)."""
    lines = []
    for step in steps:
        seen = ", ".join(f"{k}={v!r}" for k, v in step.seen.items())
        verdict = "✓" if step.result is True else ("✗" if step.result is False else repr(step.result))
        where = f" (line {step.line})" if step.line else ""  # account values have no line
        lines.append(f"{verdict} {step.section}/{step.rule}{where}: {step.expression}")
        if seen:
            lines.append(f"      saw {seen}")
    return "\n".join(lines) + "\n"
