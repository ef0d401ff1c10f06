"""Each lead's event totals for a whole block at once: differences of prefix sums, in Arrow.

When every result of the kernel's loop over a lead's events is a sum — decayed points,
the surge windows, ``count(type, within, field=value)`` — the block can compute them
for all its leads together: one 0/1 (or points) column per total, its running sum,
and each lead's total is the running sum at the end of its run minus the one at its
start. ``run_sums`` then decides each lead from its totals, with no loop over events.

The same sums as the loop, exactly: integers (points in whole 2**-32 units, from
:mod:`engine.kernel.decay`), each condition the loop's own comparison on the same
integers and the same values. A block that cannot give them — a type the playbook
does not declare (the loop raises there and ``decide`` takes the lead), a field with
no encoded column, an overflow — gets none, and its leads go through the loop.
tests/test_kernel_sums.py compares both on generated leads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise
from typing import Any

from engine.events import Encoded
from engine.kernel.decay import block_points, encode
from engine.kernel.source import Total


def block_sums(
    totals: Sequence[Total],
    starts: Sequence[int],
    at_us: Sequence[int] | Any,
    types: Sequence[str] | Encoded,
    fields: dict[str, Sequence[Any] | Encoded],
    as_of_us: int | Any,
    half_life: float | None,
    weigh: Callable[[str, Any], float],
    known_types: frozenset[str],
) -> list[tuple[int, ...]] | None:
    """Per run ``k`` (events ``starts[k]:starts[k + 1]``), its ``totals`` in order; or None.

    ``as_of_us`` is the instant of every run, or an int64 array giving each event its
    run's instant (engine funnel: one run per lead and week end, :mod:`engine.kernel.frames`).

    ``fields`` are the block's columns by field name, as lists or as the reader kept
    them (:class:`Encoded`); ``content`` also feeds the points.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(starts) < 2:
        return []
    if not len(at_us) or not totals:
        return [(0,) * len(totals)] * (len(starts) - 1)
    try:
        kinds = types if isinstance(types, Encoded) else encode(pa, types)
        if any(kind not in known_types for kind in kinds.values):
            return None  # the loop raises for it, and decide answers
        at = at_us if isinstance(at_us, pa.Array) else pa.array(at_us, pa.int64())
        now = as_of_us if isinstance(as_of_us, pa.Array) else pa.scalar(as_of_us, pa.int64())
        age = pc.subtract_checked(now, at)
        zero = pa.scalar(0, pa.int64())
        past = pc.greater_equal(age, zero)  # events after as_of count nowhere
        if any(b <= a for a, b in pairwise(starts)):
            return None  # a run with no events (the reader never makes one)
        last_of_run = pa.array([end - 1 for end in starts[1:]], pa.int64())
        columns = []
        for total in totals:
            keep = past
            if total.low_us:
                keep = pc.and_(keep, pc.greater_equal(age, pa.scalar(total.low_us, pa.int64())))
            if total.high_us is not None:
                keep = pc.and_(keep, pc.less(age, pa.scalar(total.high_us, pa.int64())))
            if total.types is not None:
                keep = pc.and_(keep, _where(pa, pc, kinds, total.types.__contains__))
            for name, wanted in total.fields:
                column = fields.get(name)
                if column is None:
                    return None
                encoded = column if isinstance(column, Encoded) else encode(pa, column)
                keep = pc.and_(keep, _where(pa, pc, encoded, partial(_equals, wanted)))
            if total.points:
                content = fields.get("content")
                points = block_points(at, kinds, content, as_of_us, half_life, weigh)
                if points is None:
                    return None
                values = pc.if_else(keep, points, zero)
            else:
                values = pc.cast(keep, pa.int64())
            # a run's total: the running sum at its last event less the one before it starts
            at_ends = pc.take(pc.cumulative_sum_checked(values), last_of_run)
            before = pa.concat_arrays([pa.array([0], pa.int64()), at_ends.slice(0, len(at_ends) - 1)])
            columns.append(pc.subtract(at_ends, before).to_pylist())
        return list(zip(*columns, strict=True))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _equals(wanted: Any, value: Any) -> bool:
    return bool(value == wanted)  # the loop's ``==`` on the converted value


def _where(pa: Any, pc: Any, encoded: Encoded, test: Callable[[Any], bool]) -> Any:
    """Rows whose (converted) value passes ``test``, decided once per distinct value."""
    return pc.take(pa.array([test(value) for value in encoded.values], pa.bool_()), encoded.indices)
