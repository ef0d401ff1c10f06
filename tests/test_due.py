"""Due times count from when the handoff's condition first held (engine.due, issue 19).

Three checks: the anchor of every exact form equals a brute-force replay (the
condition evaluated at every event and window/threshold crossing instant); the
reference ``decide``, the generated kernel and the DuckDB query give the same due
times on generated histories; and ``engine validate`` warns where a condition has no
exact anchor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.compile import CompiledPlaybook
from engine.due import plans
from engine.evaluate import decide, decide_for_row
from engine.events import Event
from engine.kernel import kernel_for
from tests.test_sql_differential import assert_same, compile_text

AS_OF = datetime(2026, 9, 1, tzinfo=UTC)
SLA = timedelta(hours=5)

HEAD = """
apiVersion: engine/v1
kind: Playbook
metadata: {name: due-NAME, version: 2026.12.2, owners: {default: [ops]}}
timezone: Asia/Tokyo
teams: {marketing: {}, customer_success: {}}
lead: {fields: {tier: string}}
events:
  login: {}
  won: {}
  ticket: {fields: [severity]}
  nps: {fields: [band]}
stages:
  - {id: lead, owner: marketing}
  - {id: customer, owner: customer_success, entry: 'count("won") > 0'}
  - id: happy
    owner: customer_success
    entry: 'count("won") > 0 and count("login", within="2d") > 0'
handoffs:
  - {id: h, to: customer_success, sla: 5h, when: 'WHEN'}
"""

#: (condition, whether engine.due times it exactly)
CONDITIONS = {
    "run-filtered": ('count("ticket", severity="high", within="3d") > 0', True),
    "days-since": ('days_since("login") > 2', True),
    "stage-up-and-first": ('stage >= "customer" and count("nps", band="detractor") >= 1', True),
    "stage-down-and-run": ('stage < "customer" and 1 <= count("login", within="2d")', True),
    "static": ('lead.tier == "gold"', True),
    "after-and-run": ('days_since("login") >= 1.5 and count("ticket", within="2d") > 0', True),
    "stage-middle": ('stage == "happy"', False),
    "either": ('days_since("login") > 2 or count("won") > 0', False),
}

PLAYBOOKS: dict[str, CompiledPlaybook] = {
    name: compile_text(HEAD.replace("NAME", name).replace("WHEN", when), f"{name}.yaml")
    for name, (when, _) in CONDITIONS.items()
}

#: The windows and thresholds of CONDITIONS: where a condition can change without an event.
CROSSINGS = (timedelta(days=3), timedelta(days=2), timedelta(days=1.5))


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_plan_is_exact_only_for_the_listed_forms(name: str) -> None:
    assert plans(PLAYBOOKS[name])[0].exact is CONDITIONS[name][1]


def _events() -> st.SearchStrategy[list[Event]]:
    """Up to 12 events on whole hours in the 10 days before AS_OF (so gaps often equal a
    window exactly), some after AS_OF."""
    kinds = st.sampled_from([("login", {}), ("won", {}), ("ticket", {"severity": "high"}),
                             ("ticket", {"severity": "low"}), ("ticket", {}), ("nps", {"band": "detractor"}),
                             ("nps", {"band": "promoter"})])
    hours = st.integers(-6, 240)
    one = st.tuples(kinds, hours).map(
        lambda pair: Event(pair[0][0], AS_OF - timedelta(hours=pair[1]), dict(pair[0][1])))
    return st.lists(one, max_size=12).map(
        lambda events: [Event(e.type, e.at, e.fields, f"e{i}", i) for i, e in enumerate(events)])


def _holds(cp: CompiledPlaybook, lead: dict[str, str], events: list[Event], at: datetime) -> bool:
    return decide(cp, lead, events, at).handoff is not None


def _brute_anchor(cp: CompiledPlaybook, lead: dict[str, str], events: list[Event]) -> datetime:
    """The earliest candidate instant from which the condition holds at every later one.

    Candidates: event instants, each event + every window/threshold and 1 µs after
    (a `>` threshold is false at the crossing itself), and AS_OF; all at or before AS_OF.
    """
    tick = timedelta(microseconds=1)
    candidates = {AS_OF}
    for event in events:
        candidates.add(event.at)
        for gap in CROSSINGS:
            candidates |= {event.at + gap, event.at + gap + tick}
    ordered = sorted(c for c in candidates if c <= AS_OF)
    anchor = AS_OF
    for instant in reversed(ordered):
        if not _holds(cp, lead, events, instant):
            break
        anchor = instant
    return anchor


@pytest.mark.parametrize("name", sorted(n for n, (_, exact) in CONDITIONS.items() if exact))
def test_anchor_is_the_replayed_first_instant(name: str) -> None:
    cp = PLAYBOOKS[name]

    @settings(max_examples=60, derandomize=True, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=[HealthCheck.too_slow])
    @given(events=_events(), gold=st.booleans())
    def check(events: list[Event], gold: bool) -> None:
        lead = {"tier": "gold" if gold else "silver"}
        handoff = decide(cp, lead, events, AS_OF).handoff
        if handoff is None:
            return
        assert handoff.due is not None
        anchor = datetime.fromisoformat(handoff.due) - SLA
        brute = _brute_anchor(cp, lead, events)
        # a threshold crossed at T: `>` first holds 1 µs later; the anchor is T itself
        assert anchor == brute or brute - anchor == timedelta(microseconds=1), (anchor, brute)

    check()


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_backends_agree_on_due(name: str) -> None:
    cp = PLAYBOOKS[name]
    assert kernel_for(cp) is not None

    @settings(max_examples=6, derandomize=True, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(st.tuples(_events(), st.booleans()), min_size=1, max_size=40))
    def check(histories: list[tuple[list[Event], bool]]) -> None:
        leads = [(f"L{i:03d}", {"tier": "gold" if gold else "silver"}, events)
                 for i, (events, gold) in enumerate(histories)]
        for lead_id, lead, events in leads:
            assert decide_for_row(cp, lead, events, AS_OF, lead_id=lead_id).to_row() == \
                decide(cp, lead, events, AS_OF, lead_id=lead_id).to_row()
        assert_same(cp, leads, AS_OF)

    check()


def test_churn_risk_counts_from_the_last_login_plus_threshold() -> None:
    """The issue's example: a later e-mail does not move the start of the risk."""
    cp = PLAYBOOKS["days-since"]
    events = [Event("login", datetime(2026, 7, 20, tzinfo=UTC), {}, "a", 0),
              Event("ticket", datetime(2026, 8, 25, tzinfo=UTC), {"severity": "low"}, "b", 1)]
    handoff = decide(cp, {"tier": "silver"}, events, AS_OF).handoff
    assert handoff is not None and handoff.due == "2026-07-22T14:00:00+09:00"  # 07-20 + 2 d + 5 h, Tokyo


def test_stage_entered_on_lead_fields_alone_never_moves() -> None:
    """x-education enters `promising` on fit and time on site: `stage >= "promising"` is
    time-invariant, so the call is due from the lead's first activity (an exact plan)."""
    from tests.test_kernel import KERNEL_PLAYBOOKS as SHIPPED

    plan = plans(SHIPPED["x-education"])[0]
    assert plan.exact and plan.terms == ()
