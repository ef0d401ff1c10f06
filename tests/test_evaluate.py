"""Decision semantics: purity, time, ordering, duplicates, rounding, recycle, handoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.compile import CompiledPlaybook
from engine.evaluate import decide, score
from engine.events import Event
from engine.validate import load_playbook

from .conftest import PLAYBOOKS

T = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
LEAD = {"email": "a@corp.example.jp", "company_domain": "corp.example.jp", "industry": "software",
        "employees": 250, "title": "部長", "country": "JP", "lead_source": "web_form"}


@pytest.fixture(scope="module")
def smb() -> CompiledPlaybook:
    compiled = load_playbook(PLAYBOOKS / "smb-saas.yaml").compiled
    assert compiled is not None
    return compiled


def ev(kind: str, days_ago: float, event_id: str | None = None, **fields: str) -> Event:
    return Event(kind, T - timedelta(days=days_ago), dict(fields), event_id)


def test_fit_breakdown_and_cap(smb: CompiledPlaybook) -> None:
    d = decide(smb, LEAD, [], T)
    assert d.fit_breakdown == {"target-industry": 20, "size": 15, "senior-title": 20, "japan": 5}
    assert d.fit == 60  # 60 exactly; the cap is 60
    big = dict(LEAD, employees=5000)
    assert decide(smb, big, [], T).fit == 60  # 70 points, capped


def test_engagement_decays_by_half_life(smb: CompiledPlaybook) -> None:
    fresh = decide(smb, LEAD, [ev("webinar_attend", 0)], T).engagement
    month = decide(smb, LEAD, [ev("webinar_attend", 30)], T).engagement
    assert fresh == 10 and month == 5  # half-life 30d


def test_per_content_points(smb: CompiledPlaybook) -> None:
    d = decide(smb, LEAD, [ev("content_download", 0, content="company-profile"),
                           ev("content_download", 0, content="case-study-09"),
                           ev("content_download", 0, content="wp-howto-01")], T)
    assert d.engagement_breakdown == {"content_download:case-study-09": 12,
                                      "content_download:company-profile": 20,
                                      "content_download:wp-howto-01": 8}


def test_events_after_t_are_ignored(smb: CompiledPlaybook) -> None:
    later = [ev("inquiry", -1)]
    d = decide(smb, LEAD, later, T)
    assert d.engagement == 0 and d.handoff is None


def test_duplicate_event_ids_count_once(smb: CompiledPlaybook) -> None:
    once = decide(smb, LEAD, [ev("trial_signup", 1, "x1")], T)
    twice = decide(smb, LEAD, [ev("trial_signup", 1, "x1"), ev("trial_signup", 1, "x1")], T)
    assert once == twice


def test_input_order_does_not_matter(smb: CompiledPlaybook) -> None:
    events = [ev("page_view", i / 3, f"p{i}", content="pricing") for i in range(12)]
    events += [ev("disposition", 2, "d1", reason="no_budget"), ev("inquiry", 0.5, "q1")]
    baseline = decide(smb, LEAD, events, T)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert decide(smb, LEAD, shuffled, T) == baseline


def test_naive_as_of_takes_the_playbook_zone(smb: CompiledPlaybook) -> None:
    naive = datetime(2026, 11, 1, 18, 0)
    aware = naive.replace(tzinfo=ZoneInfo("Asia/Tokyo"))
    assert decide(smb, LEAD, [], naive).as_of == decide(smb, LEAD, [], aware).as_of


def test_first_matching_exclusion_wins_and_blocks_routing(smb: CompiledPlaybook) -> None:
    rival = dict(LEAD, company_domain="rival1.example.com", title="Student")
    d = decide(smb, rival, [ev("inquiry", 0.1)], T)
    assert d.excluded == "competitor" and d.handoff is None
    assert d.engagement > 0  # excluded leads keep their scores


def test_fast_pass_due_uses_the_stricter_sla(smb: CompiledPlaybook) -> None:
    d = decide(smb, LEAD, [ev("inquiry", 0.5)], T)
    assert d.handoff is not None and d.handoff.rule == "fast-pass"
    # web_form follows up within 1d, the fast-pass SLA is 1h: the stricter one wins
    assert d.handoff.due == (T - timedelta(days=0.5) + timedelta(hours=1)).astimezone(
        ZoneInfo("Asia/Tokyo")).isoformat()


def test_recycle_holds_then_releases(smb: CompiledPlaybook) -> None:
    events = [ev("content_download", 200, content="company-profile"),
              ev("disposition", 100, reason="no_contact")]
    held = decide(smb, LEAD, events, T - timedelta(days=95))
    assert held.recycle is not None and held.recycle.active and held.handoff is None
    released = decide(smb, LEAD, events, T)
    assert released.recycle is not None and not released.recycle.active


def test_no_budget_reenters_on_engagement_since(smb: CompiledPlaybook) -> None:
    events = [ev("disposition", 50, reason="no_budget"), ev("trial_signup", 1)]
    assert decide(smb, LEAD, events, T).recycle.active  # type: ignore[union-attr]  # 24.4 < 30
    events.append(ev("webinar_attend", 1))
    d = decide(smb, LEAD, events, T)
    assert d.recycle is not None and d.recycle.reason == "no_budget"
    assert d.recycle.reentered and not d.recycle.active


def test_surge_compares_this_week_with_last(smb: CompiledPlaybook) -> None:
    quiet_then_busy = [ev("page_view", d) for d in (1, 2, 3)]
    assert decide(smb, LEAD, quiet_then_busy, T).surge
    steady = quiet_then_busy + [ev("page_view", d) for d in (8, 9, 10)]
    assert not decide(smb, LEAD, steady, T).surge


def test_trace_records_every_rule_with_values(smb: CompiledPlaybook) -> None:
    d = decide(smb, LEAD, [ev("inquiry", 0.5)], T, trace=True)
    sections = {step.section for step in d.trace}
    assert {"personas", "targets", "fit", "surge", "exclusions", "stages", "handoffs"} <= sections
    fast = next(s for s in d.trace if s.rule == "fast-pass")
    assert fast.result is True


@pytest.mark.parametrize(("value", "expected"), [(0.125, 0.12), (0.375, 0.38), (2.675, 2.67),
                                                 (-0.0, 0.0)])
def test_rounding_rule_is_python_round(value: float, expected: float) -> None:
    assert score(value) == expected


def test_decide_is_deterministic(smb: CompiledPlaybook) -> None:
    events = [ev("page_view", 3, content="pricing"), ev("email_click", 2)]
    first = decide(smb, LEAD, events, T).to_dict()
    assert all(decide(smb, LEAD, events, T).to_dict() == first for _ in range(3))


def test_sticky_stage_holds_once_reached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    shutil.copytree(PLAYBOOKS / "lists", tmp_path / "lists")
    text = (PLAYBOOKS / "smb-saas.yaml").read_text(encoding="utf-8")
    plain = tmp_path / "plain.yaml"
    plain.write_text(text, encoding="utf-8")
    sticky = tmp_path / "sticky.yaml"
    sticky.write_text(text.replace("  - id: promising\n    owner: inside_sales\n",
                                   "  - id: promising\n    owner: inside_sales\n    sticky: true\n"),
                      encoding="utf-8")
    plain_cp, sticky_cp = load_playbook(plain).compiled, load_playbook(sticky).compiled
    assert plain_cp is not None and sticky_cp is not None
    events = [ev("trial_signup", 90), ev("quote_request", 90)]  # 55 points, 90 days ago
    then = T - timedelta(days=89)
    assert decide(plain_cp, LEAD, events, then).stage == "promising"
    assert decide(plain_cp, LEAD, events, T).stage == "nurturing"  # decayed below 40
    assert decide(sticky_cp, LEAD, events, T).stage == "promising"  # reached once: stays


def test_detail_false_only_drops_the_engagement_breakdown(smb: CompiledPlaybook) -> None:
    """Exports decide with detail=False: every field but the breakdown is the same."""
    from dataclasses import replace

    from engine.evaluate import decide_for_row

    rng = random.Random(11)
    kinds = ["page_view", "content_download", "webinar_attend", "inquiry", "email_open"]
    contents = ["company-profile", "case-study-09", "wp-howto-01", "pricing", ""]
    for _ in range(50):
        events = [ev(rng.choice(kinds), rng.uniform(-2, 90), content=rng.choice(contents))
                  for _ in range(rng.randint(0, 15))]
        full = decide(smb, LEAD, events, T, lead_id="L1")
        fast = decide_for_row(smb, LEAD, events, T, lead_id="L1")
        assert fast == replace(full, engagement_breakdown={})
        assert fast.to_row() == full.to_row()
