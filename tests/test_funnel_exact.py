"""Every week's decision of the funnel is ``decide``'s at that week's end, on generated leads.

The funnel decides a chunk of leads at every week end from per-week totals
(engine.measure.week_sums) instead of re-reading each lead's events; this compares each
lead's decision at every week with ``decide(..., detail=False)`` on the events up to
that end. Events are put on the edges that matter: exactly at a week's end and a
microsecond either side, and at the edges of the 7/14/30-day windows (surge, counts
``within=``) measured from a later week's end, so an event leaves a window exactly at
a decision instant. Decay thresholds: engagement points of every size, so leads cross
the `engagement >= 40` and `> 0` entries as they decay week by week.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.compile import CompiledPlaybook
from engine.evaluate import decide
from engine.events import Event, epoch_us
from engine.io import LeadRecord
from engine.measure.week_answer import WeekAnswer, week_kernel
from engine.measure.weeks import Weeks, _Placed, chunk_decisions, place

from .test_kernel import KERNEL_PLAYBOOKS
from .test_kernel_decay import counted_calls, generated
from .test_sql_differential import _lead, compile_text

WEEKS = Weeks.between(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 8, 3, tzinfo=UTC))
ENDS_US = [epoch_us(t) for t in WEEKS.ends]
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
#: From a week's end back: the end itself and either side, and each window's edge.
EDGES = [timedelta(0), US, -US, 7 * DAY, 7 * DAY - US, 7 * DAY + US, 14 * DAY, 14 * DAY - US,
         14 * DAY + US, 30 * DAY, 30 * DAY - US, 30 * DAY + US, 3 * DAY + 5 * timedelta(hours=1)]

#: The bench playbook with a due time: no totals plan, so the kernel is handed each
#: week's decayed points instead (the other path of week_sums).
WITH_DUE = compile_text(
    (Path(__file__).parent.parent / "playbooks" / "bench-reference.yaml").read_text(encoding="utf-8").replace(
        'to: field_sales, when: stage == "sql",', 'to: field_sales, sla: 2d, when: stage == "sql",'),
    "with-due")


def _week_leads(cp: CompiledPlaybook) -> st.SearchStrategy[list[tuple[LeadRecord, list[Event]]]]:
    """Leads of ``cp`` (fields as the differential tests draw them) with events on the edges."""

    @st.composite
    def leads(draw: st.DrawFn) -> list[tuple[LeadRecord, list[Event]]]:
        found = []
        for index in range(draw(st.integers(1, 12))):
            lead_id, fields, events = draw(_lead(cp, index))
            moved = []
            for event in events:
                end = WEEKS.ends[draw(st.integers(0, len(WEEKS) - 1))]
                at = end - draw(st.sampled_from(EDGES))
                moved.append(Event(event.type, at, event.fields, event.id, event.seq))
            found.append((LeadRecord(lead_id, fields, index + 2), moved))
        return found

    return leads()


def _check(cp: CompiledPlaybook, leads: list[tuple[LeadRecord, list[Event]]]) -> None:
    chunk: list[_Placed] = []
    for lead, events in leads:
        placed = place(lead, events, ENDS_US)
        if isinstance(placed, _Placed):
            chunk.append(placed)
    decisions, failed = chunk_decisions(cp, chunk, WEEKS.ends)
    for placed, weekly, error in zip(chunk, decisions, failed, strict=True):
        assert error is None
        assert len(weekly) == len(WEEKS) - placed.first
        for week, got in enumerate(weekly, start=placed.first):
            end = WEEKS.ends[week]
            history = [e for e in leads[placed.lead.row - 2][1] if e.at <= end]
            want = decide(cp, placed.lead.fields, history, end, lead_id=placed.lead.lead_id, detail=False)
            assert got == WeekAnswer.of(want), (placed.lead.lead_id, week)


@pytest.mark.parametrize("name", ["bench-reference", "olist", "x-education", "smb-saas", "enterprise"])
def test_every_week_is_decide_at_that_end(name: str) -> None:
    cp = KERNEL_PLAYBOOKS[name]

    @generated(60)
    @given(_week_leads(cp))
    def run(leads: list[tuple[LeadRecord, list[Event]]]) -> None:
        _check(cp, leads)

    run()


def test_the_totals_path_and_the_points_path_are_taken() -> None:
    """Proof the fast paths ran (a test of decide against decide would pass vacuously)."""
    for cp, attribute in ((KERNEL_PLAYBOOKS["bench-reference"], "_run_sums"), (WITH_DUE, "_run_points")):
        kernel = week_kernel(cp)
        assert kernel is not None
        start = WEEKS.ends[0] - 3 * DAY
        leads = [(LeadRecord(f"L{i}", {"industry": "software", "employees": 500}, i + 2),
                  [Event("inquiry", start + i * DAY, {}, None, 0),
                   Event("page_view", start + (i + 9) * DAY, {"content": "pricing"}, None, 1)])
                 for i in range(5)]
        with counted_calls(kernel, attribute) as calls:
            _check(cp, leads)
        assert calls[0] >= 5 * (len(WEEKS) - 1)


@given(st.data())
@generated(40)
def test_due_times_and_decayed_points_every_week(data: Any) -> None:
    _check(WITH_DUE, data.draw(_week_leads(WITH_DUE)))
