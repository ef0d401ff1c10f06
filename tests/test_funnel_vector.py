"""The week loop's rule body in numpy (engine.kernel.vector) answers what the generated
loop answers, frame by frame; it declines what it cannot do exactly.

tests/test_funnel_frames.py checks the whole frame path (now through numpy for the bench
playbook) against the week-by-week path; here the numpy body is put against
``run_weeks`` directly on totals chosen where exactness is at risk: engagement whose
``x * 100`` is a rounding tie or next to one, at the cap, fit at the thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernel.vector import Decline, VectorWeeks, _Column, _Run
from engine.measure.week_answer import week_kernel

from .test_kernel import KERNEL_PLAYBOOKS

BENCH = KERNEL_PLAYBOOKS["bench-reference"]
#: Values whose two-decimal rounding is a tie (exact or after x * 100) or next to one.
TIES = [0.125, 0.375, 1.005, 2.675, 0.005, 0.015, 39.995, 40.005, 99.995, 1e-300, 5e15 + 0.5,
        0.285, 1.115, 10.005, -0.125, -0.0, 0.0, 123456.785]


def _run(size: int) -> _Run:
    vector = week_kernel(BENCH).vector_weeks()
    return _Run(vector, {}, [None], {id(None): 0}, size)


@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e17, max_value=1e17),
                          st.sampled_from(TIES),
                          st.integers(-10**9, 10**9).map(lambda n: n / 200)), min_size=1, max_size=40))
def test_round_is_pythons_round_to_the_bit(values: list[float]) -> None:
    got = _run(len(values)).rounded(_Column("f", np.asarray(values, np.float64)), 2).data.tolist()
    assert [v.hex() for v in got] == [round(v, 2).hex() for v in values]


def test_round_of_an_int_stays_an_int() -> None:
    column = _Column("i", np.asarray([1, 2], np.int64))
    assert _run(2).rounded(column, 2) is column


LEAD = st.fixed_dictionaries({
    "industry": st.sampled_from(["software", "retail", None]),
    "employees": st.one_of(st.none(), st.sampled_from([9, 10, 99, 100, 999, 1000]),
                           st.floats(0, 2000, allow_nan=False)),
    "title": st.sampled_from(["VP Sales", "Manager", "Student", "engineer", None]),
    "country": st.sampled_from(["JP", "US", None]),
    "company_domain": st.sampled_from(["rival1.example.com", "partner0.example.co.jp", "x.example", None]),
    "email": st.sampled_from(["a@gmail.com", "a@x.example", None]),
})
#: Engagement in units of 2**-32 points: near the 40 threshold, the 100 cap, and ties.
MICRO = st.one_of(st.integers(0, 2**40), st.sampled_from([40 * 2**32, 40 * 2**32 - 1, 100 * 2**32 + 1]),
                  st.sampled_from(TIES[:10]).map(lambda v: round(abs(v) * 2**32)))
SUMS = st.tuples(MICRO, *[st.integers(0, 4)] * 7)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(LEAD, st.lists(SUMS, max_size=6)), min_size=1, max_size=8),
       st.sampled_from([None, "12", True]))
def test_the_numpy_body_is_the_generated_loop(leads: list[tuple[dict[str, Any], list[tuple[int, ...]]]],
                                              mistyped: Any) -> None:
    kernel = week_kernel(BENCH)
    vector = kernel.vector_weeks()
    assert isinstance(vector, VectorWeeks)
    if mistyped is not None:  # a field of the wrong type: left to the loop, which declines it
        leads = [({**leads[0][0], "employees": mistyped}, leads[0][1]), *leads[1:]]
    who = np.repeat(np.arange(len(leads)), [len(sums) for _, sums in leads])
    frames = [s for _, sums in leads for s in sums]
    instants = list(range(len(frames)))
    columns = [np.asarray([f[i] for f in frames], np.int64) for i in range(8)]
    try:
        stages, excluded, handoffs, ok, lasts = vector.decide([f for f, _ in leads], who, instants, columns)
    except Decline:  # no lead of the kinds numpy holds: all of it is the loop's
        assert mistyped is not None and len(leads) == 1
        return
    assert ok[0] is (mistyped != "12")  # (True >= 1000 is a comparison Python makes: no TypeError)
    position = 0
    for (fields, sums), good, last in zip(leads, ok, lasts, strict=True):
        end = position + len(sums)
        expected = kernel.decide_instants(fields, instants[position:end], sums)
        if good:
            assert expected is not None
            assert list(zip(stages[position:end], excluded[position:end], handoffs[position:end],
                            strict=True)) == expected[0]
            assert [type(s) for s in stages[position:end]] == [type(s) for s, _, _ in expected[0]]
            assert last == ((), False, False)
        else:
            assert expected is None  # the loop declines it too: decide answers such a lead
        position = end


def test_a_total_past_2_53_is_declined() -> None:
    vector = week_kernel(BENCH).vector_weeks()
    columns = [np.asarray([2**53], np.int64)] + [np.zeros(1, np.int64)] * 7
    with pytest.raises(Decline):
        vector.decide([{}], np.zeros(1, np.int64), [0], columns)


def test_playbooks_it_cannot_read_keep_the_loop() -> None:
    # personas read from the history are assigned in the loop (tests/test_funnel_frames.py's
    # "wide" case), and a playbook with no run_weeks has nothing to vectorise
    from .test_funnel_frames import CASES

    assert week_kernel(CASES["wide"]).vector_weeks() is None
    assert week_kernel(KERNEL_PLAYBOOKS["olist"]).vector_weeks() is None
    assert week_kernel(CASES["bench-reference"]).vector_weeks() is not None
