"""The funnel's frame path (every lead at all its week ends in one kernel call, from
totals computed for all (lead, instant) frames of a chunk at once) gives what the
week-by-week path and ``decide`` give.

tests/test_funnel_exact.py checks the week-by-week path (``chunk_decisions``) against
``decide`` at every week end; here the frame path (``_frame_weeks``) must produce the
very same :class:`LeadWeeks` — stages, exclusions, handoff episodes with their weekly
priorities, and the instants a lead climbed (replayed at event instants) — and each
week's answer must be ``decide``'s. Events sit on the edges that matter (a week's end
and a microsecond either side, the 7/14/30-day windows' edges, decay across the
`engagement >= 40` threshold), as in test_funnel_exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.compile import CompiledPlaybook
from engine.evaluate import decide
from engine.events import Event, EventColumns
from engine.io import LeadRecord
from engine.kernel.frames import Frames
from engine.measure import weeks as weeks_module
from engine.measure.week_answer import WeekAnswer, week_kernel
from engine.measure.weeks import (
    LeadWeeks,
    Unplaced,
    _compact,
    _decide_chunk,
    _frame_weeks,
    _in_time_order,
    _lead_weeks,
    _Placed,
    chunk_decisions,
    place,
    weekly,
)

from .test_funnel_exact import DAY, ENDS_US, WEEKS, _week_leads
from .test_kernel import KERNEL_PLAYBOOKS
from .test_kernel_decay import counted_calls, generated
from .test_sql_differential import compile_text

BENCH = (Path(__file__).parent.parent / "playbooks" / "bench-reference.yaml").read_text(encoding="utf-8")

#: The bench playbook with personas and targets (one persona reads the history, so it
#: stays in the loop; the rest is hoisted), a 14-day window in a stage, and a handoff
#: whose priority reads only fit (built once per lead).
WIDE = compile_text(BENCH.replace("exclusions:", """personas:
  big: {when: lead.employees >= 100}
  active: {when: 'count("email_click", within="14d") >= 2'}
targets:
  accounts: persona("big")
  leads: persona("big") and persona("active")
exclusions:""").replace('{id: inquiry, to: field_sales, when: \'count("inquiry", within="14d") > 0\', '
                        'priority: 100 + fit}',
                        '{id: inquiry, to: field_sales, when: \'count("inquiry", within="14d") > 0\', '
                        'priority: 100 + fit}\n'
                        '  - {id: active, to: inside_sales, when: persona("active") and not target_lead, '
                        'priority: fit}'), "wide")

#: playbooks/scoring.yaml without what needs the events themselves (recycling, a due time,
#: content caps): computed fit points, rule caps, engagement type caps (a total per type).
SCORING = compile_text(
    (Path(__file__).parent.parent / "playbooks" / "scoring.yaml").read_text(encoding="utf-8")
    .split("\nrecycle:")[0].replace(", sla: 2d", "")
    .replace('content: {pricing: {points: 5, cap: 8}, "guide-*": {points: 2, cap: 3}, demo: 4}',
             'content: {pricing: 5, "guide-*": 2, demo: 4}')
    .replace('content: {"case-study-*": {points: 12, cap: 20}}', 'content: {"case-study-*": 12}') + "\n",
    "scoring-totals")
CASES = {"bench-reference": KERNEL_PLAYBOOKS["bench-reference"], "wide": WIDE, "scoring": SCORING}


def _placed(leads: list[tuple[LeadRecord, list[Event]]]) -> list[_Placed]:
    return [p for p in (place(lead, events, ENDS_US) for lead, events in leads) if isinstance(p, _Placed)]


def _slow(cp: CompiledPlaybook, chunk: list[_Placed]) -> list[LeadWeeks | None]:
    """The week-by-week path's LeadWeeks (None where a lead's decision raised)."""
    decisions, failed = chunk_decisions(cp, chunk, WEEKS.ends)
    return [None if error is not None else
            _lead_weeks(cp, p.lead, p.events, p.events.at_us, p.first, WEEKS.ends, ENDS_US,
                        _compact(cp, weekly))
            for p, weekly, error in zip(chunk, decisions, failed, strict=True)]


def _check(cp: CompiledPlaybook, leads: list[tuple[LeadRecord, list[Event]]]) -> int:
    """Frame path == week-by-week path, and == decide at every week end; how many leads it took."""
    chunk = _placed(leads)
    fast = _frame_weeks(cp, chunk, WEEKS.ends, ENDS_US)
    taken = 0
    for placed, got, want in zip(chunk, fast, _slow(cp, chunk), strict=True):
        if got is None:
            continue
        taken += 1
        assert got == want, placed.lead.lead_id
        kernel = week_kernel(cp)
        events = leads[placed.lead.row - 2][1]
        stage_ids = [s.rule.id for s in cp.stages]
        for offset, stage in enumerate(got.stages):
            end = WEEKS.ends[placed.first + offset]
            history = [e for e in events if e.at <= end]
            lead = placed.lead
            reference = decide(cp, lead.fields, history, end, lead_id=lead.lead_id, detail=False)
            assert stage_ids[stage] == reference.stage
            assert got.excluded[offset] == (reference.excluded is not None)
        assert kernel is not None
    return taken


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_frame_path_is_the_week_by_week_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cp = CASES[name]
    kernel = week_kernel(cp)
    assert kernel is not None and kernel.totals is not None
    by_numpy = [0]  # leads whose weeks the chunk's numpy columns summed up (_vector_weeks)
    real = weeks_module._vector_weeks

    def counting(*args: Any) -> Any:
        found = real(*args)
        by_numpy[0] += len(found)
        return found

    monkeypatch.setattr(weeks_module, "_vector_weeks", counting)
    with counted_calls(kernel, "_run_weeks") as calls:
        taken = [0]

        @generated(60)
        @given(_week_leads(cp))
        def run(leads: list[tuple[LeadRecord, list[Event]]]) -> None:
            taken[0] += _check(cp, leads)

        run()
    assert taken[0] > 100  # the frame path ran, for most leads: numpy's for the bench playbook
    if name == "bench-reference":
        assert by_numpy[0] > 100
    else:
        assert calls[0] > 0 and by_numpy[0] == 0


def _columns(events: EventColumns) -> tuple[Any, ...]:
    return events.at_us, events.types, events.fields, events.ids, events.seqs


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_chunk_put_in_time_order_at_once_is_each_lead_placed_alone(name: str) -> None:
    """``weekly`` orders a chunk's events with one stable sort (``_in_time_order``): each
    lead as ``place`` puts it (events by time, input order among equal instants — the
    generated events share week ends and edges, in no order —, first week, each week's
    count), the frame path reading the unordered columns gives the same weeks, and so
    does the whole of ``weekly``."""
    cp = CASES[name]
    shuffled = [0]

    @generated(40)
    @given(_week_leads(cp))
    def run(leads: list[tuple[LeadRecord, list[Event]]]) -> None:
        alone = [(lead, events, place(lead, events, ENDS_US)) for lead, events in leads]
        kept = [(lead, EventColumns.from_events(events), p.first) for lead, events, p in alone
                if isinstance(p, _Placed)]
        chunk = _in_time_order(kept, ENDS_US)
        want = [p for _, _, p in alone if isinstance(p, _Placed)]
        for got, one in zip(chunk, want, strict=True):
            assert _columns(got.events) == _columns(one.events)
            assert (got.first, got.uptos, got.times) == (one.first, one.uptos, one.events.at_us)
            shuffled[0] += got.order is not None
        assert _frame_weeks(cp, chunk, WEEKS.ends, ENDS_US) == _frame_weeks(cp, want, WEEKS.ends, ENDS_US)
        unplaced = Unplaced()
        assert (list(weekly(cp, leads, WEEKS, unplaced))
                == list(_decide_chunk(cp, want, WEEKS.ends, ENDS_US, Unplaced(), None)))
        assert unplaced.no_events + unplaced.after_period == len(leads) - len(want)

    run()
    assert shuffled[0] > 50  # leads whose events came out of order were reordered


@given(st.data())
@generated(40)
def test_totals_of_frames_are_the_totals_at_each_instant(data: Any) -> None:
    """Frames at any instants (between events, at one, after all) give each instant's totals."""
    cp = WIDE
    kernel = week_kernel(cp)
    assert kernel is not None
    leads = data.draw(_week_leads(cp))
    chunk = _placed(leads)
    if not chunk:
        return
    frames = Frames.of(kernel, [p.events for p in chunk])
    assert frames is not None
    who, instants, counts = [], [], []
    for index, placed in enumerate(chunk):
        times = placed.events.at_us
        for _ in range(data.draw(st.integers(1, 4))):
            later = data.draw(st.sampled_from([0, 1, 86_400_000_000, 10**13]))
            at = data.draw(st.sampled_from(times)) + later
            who.append(index)
            instants.append(at)
            counts.append(sum(1 for t in times if t <= at))
    got = frames.sums(who, instants, counts)
    assert got is not None
    for index, at, count, sums in zip(who, instants, counts, got, strict=True):
        events = chunk[index].events
        fields = {name: (events.fields.get(name) or [None] * len(events))[:count] for name in kernel.fields}
        one = kernel.block_totals([0, count], events.at_us[:count], events.types[:count], fields, at)
        assert one == [sums]


def test_a_mistyped_field_and_repeated_ids_go_the_week_by_week_way() -> None:
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    start = WEEKS.ends[0] - 3 * DAY
    events = [Event("inquiry", start, {}, None, 0), Event("email_click", start + 9 * DAY, {}, None, 1)]
    twice = [Event("inquiry", start, {}, "e1", 0), Event("email_click", start + 9 * DAY, {}, "e1", 1)]
    leads = [(LeadRecord("L1", {"industry": "software", "employees": 500}, 2), events),
             (LeadRecord("L2", {"industry": "software", "employees": "many"}, 3), events),
             (LeadRecord("L3", {"industry": "software", "employees": 500}, 4), twice)]
    chunk = _placed(leads)
    fast = _frame_weeks(cp, chunk, WEEKS.ends, ENDS_US)
    assert fast[0] is not None and fast[1] is None and fast[2] is None
    done = list(_decide_chunk(cp, chunk, WEEKS.ends, ENDS_US, Unplaced(), None))
    assert [lead.lead_id for lead in done] == ["L1", "L2", "L3"]  # in the chunk's order
    assert done == _slow(cp, chunk)
    for lead, history in leads:
        want = decide(cp, lead.fields, history, WEEKS.ends[-1], lead_id=lead.lead_id, detail=False)
        got = next(d for d in done if d.lead_id == lead.lead_id)
        assert [s.rule.id for s in cp.stages][got.stages[-1]] == want.stage


@pytest.mark.parametrize("name", ["olist", "x-education", "smb-saas", "enterprise"])
def test_playbooks_that_need_events_are_left_to_the_week_by_week_path(name: str) -> None:
    cp = KERNEL_PLAYBOOKS[name]
    kernel = week_kernel(cp)
    assert kernel is None or kernel.totals is None
    lead = LeadRecord("L1", {}, 2)
    chunk = _placed([(lead, [Event(next(iter(cp.playbook.events)), WEEKS.ends[0], {}, None, 0)])])
    assert _frame_weeks(cp, chunk, WEEKS.ends, ENDS_US) == [None]


def test_lead_only_values_are_computed_once_a_lead() -> None:
    """Fit, the lead-only persona and tests, and a handoff built from fit alone sit before
    the loop; what reads the history (a window count, engagement, the persona reading
    clicks and the target depending on it) stays in it."""
    kernel = week_kernel(WIDE)
    assert kernel is not None
    source = kernel.source[kernel.source.index("def run_weeks"):]
    before, loop = source.split("    for as_of_us, sums in zip(", 1)
    assert "v_fit = score(fit_total)" in before and "v_fit = score" not in loop
    assert "p0 = " in before and "p1 = " in loop and "v_target_account = " in before
    # (engine.decision.score inlined in the loop: the same rounding, one call less an instant)
    assert "v_target_lead = " in loop and "v_engagement = round(engagement_total, 2) + 0.0" in loop
    assert "hh" in before and "new_handoff(" in loop  # (100 + fit) once; fit + engagement per week


def test_answers_are_the_answers_of_one_call_a_week() -> None:
    """decide_instants gives, instant by instant, what decide_totals gives for that instant."""
    cp = WIDE
    kernel = week_kernel(cp)
    assert kernel is not None
    start = WEEKS.ends[0] - 3 * DAY
    events = EventColumns.from_events([Event("email_click", start + i * DAY, {}, None, i) for i in range(12)])
    placed = place(LeadRecord("L1", {"employees": 500, "industry": "software"}, 2), events, ENDS_US)
    assert isinstance(placed, _Placed)
    frames = Frames.of(kernel, [placed.events])
    assert frames is not None
    sums = frames.sums([0] * len(placed.uptos), ENDS_US[placed.first:], placed.uptos)
    assert sums is not None
    fields = {"employees": 500, "industry": "software"}
    got = kernel.decide_instants(fields, ENDS_US[placed.first:], sums)
    assert got is not None
    answers = []
    for end, total in zip(WEEKS.ends[placed.first:], sums, strict=True):
        answer = kernel.decide_totals(fields, total, kernel.aware_as_of(end)[3], end, "L1")
        assert isinstance(answer, WeekAnswer)
        answers.append(answer)
    assert got == _compact(cp, answers)
    assert len({a.personas for a in answers}) > 1  # the clicks persona comes and goes with the window
    assert kernel.decide_instants(fields, [], []) == ([], None)


def test_the_cycle_collector_is_back_as_it_was_after_the_pass() -> None:
    import gc

    from engine.measure.funnel import _no_cycle_collection

    assert gc.isenabled()
    with pytest.raises(RuntimeError), _no_cycle_collection():
        assert not gc.isenabled()
        raise RuntimeError("a lead's failure mid-pass")
    assert gc.isenabled()
    gc.disable()
    try:
        with _no_cycle_collection():
            pass
        assert not gc.isenabled()  # off before: still off
    finally:
        gc.enable()


def test_the_week_kernels_remembered_priorities_and_handoffs_are_the_made_ones() -> None:
    """The week kernel's new_handoff and priority_of (remembered, engine.measure.week_answer)
    give what the plain ones give, value for value, sign of zero and type included."""
    from math import copysign, isnan

    from engine.decision import Handoff, priority_of
    from engine.measure.week_answer import _handoff, _priority

    for value in (37.125, 37.125, 0.0, -0.0, -0.004, 1e300, float("nan"), 3, True, None, "7", [1]):
        got, want = _priority(value), priority_of(value)
        assert type(got) is type(want)
        if isinstance(want, float) and isnan(want):
            assert isnan(got)
        elif isinstance(want, float):
            assert got == want and copysign(1, got) == copysign(1, want)
        else:
            assert got == want
    for priority in (12.5, 12.5, 0.0, -0.0, None, 99.99):
        made = _handoff("hot", "inside_sales", None, priority)
        assert made == Handoff.from_values("hot", "inside_sales", None, priority)
        assert repr(made.priority) == repr(priority)
    assert _handoff("hot", "inside_sales", None, 12.5) is _handoff("hot", "inside_sales", None, 12.5)
    assert _handoff("hot", "field_sales", None, 12.5).to == "field_sales"


def test_a_chunk_spanning_millennia_is_put_in_order_the_long_way() -> None:
    """Instants too far apart for one int64 (lead, instant) key (a year-1 and a year-9999
    event in a chunk of 16 leads) take the lexsort and bisection way, with the same result."""
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    start = WEEKS.ends[0] - 3 * DAY
    far = [datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)]
    leads = []
    for index in range(16):
        events = [Event("email_click", start + (index % 5) * DAY, {}, None, 0),
                  Event("inquiry", start + DAY, {}, None, 1), Event("page_view", start, {}, None, 2)]
        if index < 2:
            events.insert(1, Event("email_open", far[index], {}, None, 3))
        leads.append((LeadRecord(f"L{index}", {"industry": "software", "employees": 500}, index + 2), events))
    chunk = _in_time_order([(lead, EventColumns.from_events(events), p.first) for lead, events in leads
                            if isinstance(p := place(lead, events, ENDS_US), _Placed)], ENDS_US)
    want = _placed(leads)
    assert len(chunk) == len(want) == 16
    for got, one in zip(chunk, want, strict=True):
        assert _columns(got.events) == _columns(one.events)
        assert (got.first, got.uptos, got.times) == (one.first, one.uptos, one.events.at_us)
    assert chunk[0].order is not None and chunk[1].order is not None
    assert list(weekly(cp, leads, WEEKS, Unplaced())) == list(_decide_chunk(cp, want, WEEKS.ends, ENDS_US,
                                                                            Unplaced(), None))
