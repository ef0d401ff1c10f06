"""Each lead's kernel totals at every week end, for a chunk of leads at once, in Arrow.

Deciding a lead 52 times by looping over its events 52 times is what made the funnel
slow (profiled: the kernel's event loop and its decayed-points line were most of the
time). The kernel already computes a whole block's per-lead totals as differences of
prefix sums (:mod:`engine.kernel.sums`, through :meth:`Kernel.preparer`) and then
decides each lead from its totals with no loop over events (``run_sums``). A week end
is just another instant: for each week, the chunk's events up to that end form a
block whose runs are the leads' prefixes, and the same preparer gives every lead's
totals at that end. Decisions then go through the public ``decide_for_row`` with those
totals attached, so the kernel — not this module — decides.

Exact, because nothing new is computed here: the preparer is the one ``engine
evaluate`` uses, on the same events, at the same instant. Where it gives nothing (a
playbook without totals or points, an unencodable field, a week it declines), the
lead is decided on its events as before; tests/test_funnel_exact.py compares every
week with ``decide``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.compile import CompiledPlaybook
from engine.events import EventColumns


@dataclass
class _Block:
    """What :meth:`Kernel.preparer`'s ``prepare`` reads and writes (an EventBlock's shape)."""

    starts: list[int]
    arrow: dict[str, Any]
    at_us: tuple[()] = ()
    types: tuple[()] = ()
    fields: dict[str, Any] | None = None
    sums: dict[int, tuple[int, ...]] | None = None
    points: list[int] | None = None
    points_key: object = None

    def __post_init__(self) -> None:
        self.fields = {}


#: Per lead of the chunk, per week (from 0; None before its first week or where the
#: preparer gave nothing): (sums or None, points or None, key).
Prepared = list[list[tuple[tuple[int, ...] | None, list[int] | None, object] | None]]


def prepare_weeks(cp: CompiledPlaybook, leads: Sequence[EventColumns], uptos: Sequence[Sequence[int]],
                  firsts: Sequence[int], ends: Sequence[datetime]) -> Prepared | None:
    """Each lead's totals (or decayed points) at every week end from its first week on.

    ``leads`` are the chunk's events, each lead's in time order; ``uptos[i][w - firsts[i]]``
    how many of lead ``i``'s events are at or before week ``w``'s end. None when the
    playbook's kernel precomputes nothing (decide each lead on its events).
    """
    from engine.measure.week_answer import week_kernel

    kernel = week_kernel(cp)  # its totals carry its key: the kernel that decides must prepare
    if kernel is None or not leads:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    from engine.kernel.frames import lay_out

    laid = lay_out(leads)
    if laid is None:
        return None  # a field the kernel's Arrow path cannot read: decide on the events
    _, at_all, kinds, encoded = laid
    at = pa.array(at_all, pa.int64())
    from engine.events import epoch_us
    from engine.io.arrow_convert import Encoded

    prepared: Prepared = [[None] * len(ends) for _ in leads]
    for week, end in enumerate(ends):
        prepare = kernel.preparer(end)
        if prepare is None:
            return None
        starts: list[int] = []
        who: list[int] = []
        offset = 0
        for index, first in enumerate(firsts):
            if first <= week:
                count = uptos[index][week - first]
                starts.append(offset)
                who.append(index)
                offset += count
        if not who:
            continue
        starts.append(offset)
        mask = pc.less_equal(at, pa.scalar(epoch_us(end), pa.int64()))
        block = _Block(starts, {
            "at": pc.filter(at, mask),
            "type": Encoded(pc.filter(kinds.indices, mask), kinds.values),
            "fields": {name: Encoded(pc.filter(column.indices, mask), column.values)
                       for name, column in encoded.items()},
        })
        prepare(block)
        if block.sums is not None:
            for start, index in zip(starts, who, strict=False):
                prepared[index][week] = (block.sums[start], None, block.points_key)
        elif block.points is not None:
            points = block.points
            for k, index in enumerate(who):
                prepared[index][week] = (None, points[starts[k]:starts[k + 1]], block.points_key)
    return prepared
