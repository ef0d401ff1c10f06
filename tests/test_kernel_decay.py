"""Decayed points for a block of events (engine.kernel.decay) are the kernel loop's, exactly.

The kernel's loop computes ``floor(w * 0.5 ** ((age / 1000000) / half_life) * 2**32 + 0.5)``
per event; a block's points come from Arrow. Equal to the bit, or the SQL backends and
``decide`` would disagree with exports in the last digit of a score.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from math import floor
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.evaluate import decide
from engine.events import Event, EventColumns, epoch_us
from engine.io.arrow_convert import Encoded
from engine.kernel import Kernel, kernel_for
from engine.kernel.decay import block_points as points_array

from .test_kernel import KERNEL_PLAYBOOKS
from .test_sql_differential import AS_OF, _lead

AS_OF_US = epoch_us(AS_OF)
WEIGHTS = {"a": 1.0, "b": 3.5, "c": -2.0, "d": 0.0, "e": 1e-7, "f": 40.0}


def generated(examples: int) -> Any:
    """Hypothesis settings for the generated-lead tests (derandomized, no deadline)."""
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def counted_calls(kernel: Kernel, attribute: str) -> Iterator[list[int]]:
    """Count the calls of one of the kernel's generated functions: proof its path was taken."""
    real = getattr(kernel, attribute)
    assert real is not None
    calls = [0]

    def counting(*args: Any) -> Any:
        calls[0] += 1
        return real(*args)

    setattr(kernel, attribute, counting)
    try:
        yield calls
    finally:
        setattr(kernel, attribute, real)


def weigh(kind: str, content: Any) -> float:
    if kind == "f" and content is not None:
        return {"x": 12.0, "y": 0.3}.get(content, 7.25)
    return WEIGHTS[kind]


def block_points(*args: Any) -> list[int] | None:
    """engine.kernel.decay.block_points as a list (None stays None)."""
    found = points_array(*args)
    return None if found is None else found.to_pylist()


def loop_points(at_us: list[int], types: list[str], content: list[Any], half_life: float | None) -> list[int]:
    """The kernel loop's expression, event by event (engine/kernel/source.py)."""
    out = []
    for at, kind, text in zip(at_us, types, content, strict=True):
        w = weigh(kind, text)
        if half_life:  # an event after as_of: skipped by the loop, age 0's points in a block
            age = max(AS_OF_US - at, 0)
            out.append(floor(w * 0.5 ** ((age / 1000000) / half_life) * 4294967296.0 + 0.5))
        else:
            out.append(floor(w * 4294967296.0 + 0.5))
    return out


@pytest.mark.parametrize("half_life", [2592000, 86400 * 7, 3600, 1.5, None])
def test_block_points_are_the_loops_to_the_bit(half_life: float | None) -> None:
    rng = random.Random(half_life)
    ages = [0, 1, 999_999, 1_000_000, 2**53 - 1, -1, -(2**40)]
    ages += [rng.randrange(0, 10**9) for _ in range(3000)]  # seconds apart
    ages += [rng.randrange(0, 10**13) for _ in range(3000)]  # months
    ages += [rng.randrange(0, 10**16) for _ in range(3000)]  # centuries
    ages = [a for a in ages if a < 2**53]
    at_us = [AS_OF_US - a for a in ages]
    types = [rng.choice(list(WEIGHTS)) for _ in ages]
    content = [rng.choice([None, "x", "y", "z"]) for _ in ages]
    got = block_points(at_us, types, content, AS_OF_US, half_life, weigh)
    assert got == loop_points(at_us, types, content, half_life)
    # as the columnar reader keeps them: int64 Arrow instants, types and content encoded
    # (two raw spellings of one value, and a value no row uses, as converters may leave)
    codes = {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4, "f": 5}
    kinds = Encoded(pa.array([codes[t] for t in types], pa.int32()),
                    list("abcdef"))
    texts = Encoded(pa.array([{None: 0, "x": 1, "y": 3, "z": 4}[c] for c in content], pa.int32()),
                    [None, "x", "unused", "y", "z", "x"])
    assert block_points(pa.array(at_us, pa.int64()), kinds, texts, AS_OF_US, half_life, weigh) == got
    assert block_points(at_us, types, None, AS_OF_US, half_life, weigh) == loop_points(
        at_us, types, [None] * len(ages), half_life)


def test_blocks_outside_the_exact_range_are_left_to_the_loop() -> None:
    far = [AS_OF_US - 2**53, AS_OF_US]
    assert block_points(far, ["a", "a"], None, AS_OF_US, 2592000, weigh) is None
    assert block_points([AS_OF_US + 2**53], ["a"], None, AS_OF_US, 2592000, weigh) is None
    assert block_points([AS_OF_US], ["f"], [3], AS_OF_US, 2592000, weigh) is None  # content not text
    assert block_points([AS_OF_US], ["nope"], None, AS_OF_US, 2592000, weigh) is None  # weigh raises
    assert block_points([AS_OF_US], ["a"], None, AS_OF_US, 2592000, lambda k, c: 1e300) is None  # > int64
    assert block_points([], [], None, AS_OF_US, 2592000, weigh) == []


@pytest.mark.parametrize("name", sorted(KERNEL_PLAYBOOKS))
def test_decisions_from_block_points_are_decides(name: str) -> None:
    """Generated leads, their events as one block with points: ``run_points`` decides as
    ``decide`` does (and is the path taken: the points' key matches)."""
    cp = KERNEL_PLAYBOOKS[name]
    kernel = kernel_for(cp)
    assert kernel is not None
    prepare = kernel.preparer(AS_OF, totals=False)  # run_sums: tests/test_kernel_sums.py
    if cp.playbook.scoring.engagement is None:
        assert prepare is None
        return
    assert prepare is not None
    with counted_calls(kernel, "_run_points") as taken:
        @generated(20)
        @given(st.data())
        def check(data: st.DataObject) -> None:
            for i in range(data.draw(st.integers(1, 10))):
                lead_id, lead, events = data.draw(_lead(cp, i))
                columns = EventColumns.from_events(events)
                block = SimpleNamespace(at_us=columns.at_us, types=columns.types, fields=columns.fields,
                                        starts=[0, len(columns)])
                prepare(block)
                with_points = EventColumns(columns.at_us, columns.types, columns.fields, columns.ids,
                                           columns.seqs, block.points, block.points_key)
                got = kernel.decide(lead, with_points, AS_OF, lead_id)
                if got is None:  # repeated ids: decide's job
                    continue
                assert got == decide(cp, lead, events, AS_OF, lead_id=lead_id, detail=False), events

        check()
    assert taken[0] > 0


def test_points_for_another_instant_are_not_used() -> None:
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    kernel = kernel_for(cp)
    assert kernel is not None
    events = [Event("inquiry", AS_OF.replace(day=1), {}), Event("page_view", AS_OF.replace(day=2), {})]
    columns = EventColumns.from_events(events)
    wrong = EventColumns(columns.at_us, columns.types, columns.fields, None, columns.seqs, [0, 0],
                         ("some other kernel", AS_OF_US))
    assert kernel.decide({}, wrong, AS_OF) == decide(cp, {}, events, AS_OF, detail=False)
