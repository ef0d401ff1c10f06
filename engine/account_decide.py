"""Deciding leads with their accounts: the driver over :mod:`engine.accounts` and ``decide``.

Kept apart from :mod:`engine.accounts` (keys, values, the handoff fold), which the
reference ``decide`` and the kernel read, so that nothing cycles back into ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.accounts import AccountFacts, Member, account_key, facts, fold_handoffs, group, targets
from engine.decision import Decision
from engine.evaluate import decide, early_facts
from engine.expr.regex import DataPatternError

if TYPE_CHECKING:
    from engine.compile import CompiledPlaybook


def account_facts(cp: CompiledPlaybook, members: Sequence[Member], as_of: Any) -> list[AccountFacts]:
    """Each member's account at ``as_of`` (the two steps of the module docstring)."""
    keys = [account_key(cp, m.fields) for m in members]
    found: list[AccountFacts | None] = [None] * len(members)
    for indexes in group(keys):
        key = keys[indexes[0]]
        own = [early_facts(cp, members[i].fields, members[i].events, as_of, None) for i in indexes]
        target = targets(own)
        if _scores_read_target(cp):  # fit, surge or an exclusion reads target_account: again
            scored = [early_facts(cp, members[i].fields, members[i].events, as_of, AccountFacts(key, target))
                      for i in indexes]
        else:
            scored = own
        account = facts(key, target, scored)
        for i in indexes:
            found[i] = account
    return [f for f in found if f is not None]


def _scores_read_target(cp: CompiledPlaybook) -> bool:
    """Whether an expression before the account step reads ``target_account`` (then the
    scores are computed again with the account's target status; else they cannot change)."""
    from engine.pipeline import expression_sites

    before = {"fit", "surge", "exclusion"}
    return any(site.section.context in before and "target_account" in site.expr.names
               for site in expression_sites(cp))


def lead_error(cp: CompiledPlaybook, fields: Mapping[str, Any], events: Any,
                         as_of: Any) -> str | None:
    """Why a lead cannot be decided (its own data), or None: checked before accounts form."""
    try:  # every rule once, account values missing: what fails here is the lead's own data
        decide(cp, fields, events, as_of, detail=False)
    except DataPatternError as error:
        return str(error)
    except Exception as error:  # one lead's failure must not lose the run
        return f"evaluation failed: {type(error).__name__}: {error}"
    return None


def decide_accounts(cp: CompiledPlaybook, members: Sequence[Member], as_of: Any,
                    *, trace: bool = False, detail: bool = True) -> list[Decision]:
    """Every member decided with its account, then account-level handoffs folded."""
    accounts = account_facts(cp, members, as_of)
    decisions = [decide(cp, m.fields, m.events, as_of, lead_id=m.lead_id, trace=trace,
                        detail=detail, account=a) for m, a in zip(members, accounts, strict=True)]
    return fold_handoffs(cp, decisions, [a.key for a in accounts])
