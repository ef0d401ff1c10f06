"""Accounts: leads grouped by company, the account's values, and account-level handoffs.

A playbook says which account a lead belongs to in ``lead.account``: a lead field holding an
account id, or ``{domain_of: email}`` for the company domain (the text after the email's last
``@``, lower-cased). A lead with no account (empty id, no ``@``) is its own account.

The account's values are computed at the same instant as the lead's decision, in two steps
that follow the pipeline (docs/accounts.md):

1. after targets: the account is a target if any of its leads is (excluded ones included:
   exclusions are decided later, from the fit that may read ``target_account``);
2. after exclusions, over the account's non-excluded leads: ``account.fit`` is the best
   contact's fit (fit describes the company and a role, so the best contact keeps the lead's
   scale and thresholds carry over; a count of contacts is ``account.contacts``),
   ``account.engagement`` adds the contacts' engagement up (the buying group's activity is
   the account's), ``account.contacts`` counts them and ``account_persona(id)`` counts those
   matching a persona.

Stages, handoffs and recycling then read them. A handoff with ``per: account`` goes to one
contact per account (:func:`fold_handoffs`); its due time counts from the account's latest
activity (any non-excluded contact's), not the primary's own. Every value is exact on every backend:
engagement is added in whole hundredths (each contact's engagement is already rounded to two
decimals) and divided once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.decision import Decision

if TYPE_CHECKING:
    from engine.compile import CompiledPlaybook


def account_key(cp: CompiledPlaybook, lead: Mapping[str, Any]) -> str:
    """The lead's account key, or "" when it has none (it is then its own account)."""
    spec = cp.playbook.lead.account
    if spec is None:
        return ""
    if isinstance(spec, str):
        value = lead.get(spec)
        return value if isinstance(value, str) else ""
    email = lead.get(spec.domain_of)
    if not isinstance(email, str) or "@" not in email:
        return ""
    domain = domain_of(email)
    if spec.unless_in is not None and domain in cp.lists.get(spec.unless_in, ()):
        return ""  # a freemail domain is no company
    return domain


def domain_of(email: str) -> str:
    """The company domain of an email: after its last ``@``, lower-cased as SQL LOWER does
    (U+0130 handled as ``engine.functions`` ``lower`` does)."""
    return email.rpartition("@")[2].replace("\u0130", "i\u0307").lower()


def uses_accounts(cp: CompiledPlaybook) -> bool:
    """Whether deciding a lead needs its account's other leads."""
    return cp.playbook.lead.account is not None or reads_account(cp) or any(
        h.per_account for h in cp.handoffs)


def refuse_accounts(cp: CompiledPlaybook, command: str) -> None:
    """Stop a command that decides leads one at a time when the playbook has accounts:
    its figures would silently differ from ``engine evaluate``'s."""
    if uses_accounts(cp):
        from engine.diagnostics import EngineError

        raise EngineError(
            f"{command} does not decide leads with their accounts yet, and this playbook has "
            "accounts (lead.account, account values or a `per: account` handoff); its figures "
            "would differ from `engine evaluate`'s. Run `engine evaluate` (or `engine backtest`), "
            "or a copy of the playbook without accounts (docs/accounts.md)")


def reads_account(cp: CompiledPlaybook) -> bool:
    """Whether any expression reads ``account.*`` or ``account_persona()``."""
    from engine.pipeline import expression_sites

    return any("account" in site.expr.names or "account_persona" in site.expr.functions
               for site in expression_sites(cp))


@dataclass(frozen=True)
class Early:
    """What the account step reads of one lead: its own target status, then its scores."""

    key: str
    target: bool
    fit: float = 0.0
    engagement: float = 0.0
    excluded: str | None = None
    personas: tuple[str, ...] = ()
    latest: datetime | None = None  # the lead's latest event at or before t


@dataclass(frozen=True)
class AccountFacts:
    """One account's values at one instant, as expressions read them (``account.fit``)."""

    key: str
    target: bool
    fit: float | None = None
    engagement: float | None = None
    contacts: int = 0
    personas: Mapping[str, int] | None = None
    latest: datetime | None = None  # the account's latest activity: an account handoff's anchor

    def record(self) -> dict[str, Any]:
        """The ``account`` record of the expression scope."""
        return {"fit": self.fit, "engagement": self.engagement, "contacts": self.contacts,
                "target": self.target, "personas": dict(self.personas or {})}


def group(keys: Sequence[str]) -> list[list[int]]:
    """Indexes of ``keys`` by account, in first-seen order; a "" key is a group of its own."""
    groups: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    order: list[list[int]] = []
    for index, key in enumerate(keys):
        if not key:
            alone.append([index])
            order.append(alone[-1])
            continue
        found = groups.get(key)
        if found is None:
            found = groups[key] = []
            order.append(found)
        found.append(index)
    return order


def targets(members: Sequence[Early]) -> bool:
    """Step 1: the account is a target if any of its leads is."""
    return any(m.target for m in members)


def facts(key: str, target: bool, members: Sequence[Early]) -> AccountFacts:
    """Step 2: the account's values over its non-excluded members."""
    live = [m for m in members if m.excluded is None]
    if not live:
        return AccountFacts(key, target, None, None, 0, {})
    hundredths = sum(round(m.engagement * 100) for m in live)
    personas: dict[str, int] = {}
    for m in live:
        for p in m.personas:
            personas[p] = personas.get(p, 0) + 1
    times = [m.latest for m in live if m.latest is not None]
    return AccountFacts(key, target, max(m.fit for m in live), hundredths / 100 + 0.0, len(live),
                        personas, max(times) if times else None)


def fold_handoffs(cp: CompiledPlaybook, decisions: Sequence[Decision],
                  keys: Sequence[str]) -> list[Decision]:
    """Account-level handoffs: per account, one ``per: account`` handoff survives.

    The primary is the contact with the highest priority (no priority ranks last), ties by
    lead id; the account's other non-excluded contacts lose a ``per: account`` handoff and
    name the primary in ``account_primary``; the primary lists them in ``account_contacts``.
    Every decision gets its ``account`` key.
    """
    per_account = {h.rule.id for h in cp.handoffs if h.per_account}
    out = [replace(d, account=k) if k else d for d, k in zip(decisions, keys, strict=True)]
    if not per_account:
        return out
    for members in group(keys):
        qualifying = [i for i in members
                      if out[i].handoff is not None and out[i].handoff.rule in per_account]  # type: ignore[union-attr]
        if not qualifying:
            continue
        primary = min(qualifying, key=lambda i: _rank(out[i]))
        others = [i for i in members if i != primary and out[i].excluded is None]
        for i in others:
            handoff = out[i].handoff
            keep = handoff if handoff is not None and handoff.rule not in per_account else None
            out[i] = replace(out[i], handoff=keep, account_primary=out[primary].lead_id)
        out[primary] = replace(out[primary],
                               account_contacts=tuple(sorted(out[i].lead_id for i in others)))
    return out


def _rank(decision: Decision) -> tuple[bool, float, str]:
    priority = decision.handoff.priority if decision.handoff is not None else None
    return (priority is None, -(priority or 0.0), decision.lead_id)


@dataclass(frozen=True)
class Member:
    """One lead to decide with its account: id, fields, events (a sequence or History)."""

    lead_id: str
    fields: Mapping[str, Any]
    events: Any

