"""Every event's decayed engagement points for a whole block of events at once, in Arrow.

The kernel's loop spends most of each event on one line: the weight lookup and
``floor(w * 0.5 ** ((age / 1000000) / half_life) * 2**32 + 0.5)``. The fast reader
hands over events in blocks of tens of thousands, so that line can run once per block
in Arrow's C++ kernels, and the loop only adds a precomputed integer.

Exact, not approximately equal: every step is the same IEEE operation Python does.
An age below 2**53 µs converts to a double exactly, so ``age / 1000000`` is the one
correctly rounded division Python's ``int / int`` does; Arrow's ``power`` is the C
library's ``pow``, as Python's ``**`` on floats is; then the same two multiplications,
the same addition and ``floor`` in the same order. A block where an age or a product
leaves those ranges gets no points, and the kernel computes them itself.
tests/test_kernel_decay.py checks every value against the Python expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

_EXACT = 2**53  # integers below this convert to float64 exactly
_QUANTUM = 4294967296.0


def block_points(
    at_us: Sequence[int],
    types: Sequence[str],
    content: Sequence[Any] | None,
    as_of_us: int,
    half_life: float | None,
    weigh: Callable[[str, Any], float],
) -> list[int] | None:
    """Each event's points in 2**-32 units at ``as_of_us`` (0 where its weight is 0), or
    None when this block must be left to the loop (an age beyond 2**53 µs, a product
    beyond int64, an unknown type: ``weigh`` raises).

    ``weigh(type, content)`` is the playbook's weight; it is asked once per distinct
    (type, content) pair of the block. Events after ``as_of`` get age 0's points (the
    loop skips them before reading them).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not at_us:
        return []
    if half_life is not None and not (0 < half_life < _EXACT):
        return None
    try:
        at = pa.array(at_us, pa.int64())
        low, high = pc.min_max(at).values()
        if as_of_us - low.as_py() >= _EXACT or high.as_py() - as_of_us >= _EXACT:
            return None
        weights = _weights(pa, pc, types, content, weigh)
        if weights is None:
            return None
        # An event after as_of gets age 0's points: the loop skips it before reading them
        # (its own age would overflow ``0.5 **`` for a short half-life, as Python's does).
        age = pc.cast(pc.max_element_wise(pc.subtract(pa.scalar(as_of_us, pa.int64()), at), 0), pa.float64())
        points = weights
        if half_life:
            decay = pc.power(0.5, pc.divide(pc.divide(age, 1000000.0), float(half_life)))
            points = pc.multiply(weights, decay)
        units = pc.floor(pc.add(pc.multiply(points, _QUANTUM), 0.5))
        if not pc.all(pc.less(pc.abs(units), 2.0**63)).as_py():
            return None
        result: list[int] = pc.cast(units, pa.int64()).to_pylist()
        return result
    except (pa.ArrowException, KeyError, TypeError, ValueError, OverflowError):
        return None


def _weights(pa: Any, pc: Any, types: Sequence[str], content: Sequence[Any] | None,
             weigh: Callable[[str, Any], float]) -> Any:
    """The weight of every event as a float64 array: one ``weigh`` per distinct pair."""
    kinds = pa.array(types, pa.string()).dictionary_encode()
    if content is None:
        table = [weigh(kind, None) for kind in kinds.dictionary.to_pylist()]
        return pc.take(pa.array(table, pa.float64()), kinds.indices)
    texts = pa.array(content, pa.string()).dictionary_encode()  # not all text: raises, no points
    width = len(texts.dictionary) + 1  # the last slot stands for a missing content
    slot = pc.fill_null(texts.indices.cast(pa.int64()), width - 1)
    pairs = pc.add(pc.multiply(kinds.indices.cast(pa.int64()), width), slot)
    distinct = pc.unique(pairs)
    names, values = kinds.dictionary.to_pylist(), texts.dictionary.to_pylist()
    table = []
    for key in distinct.to_pylist():
        kind, index = divmod(key, width)
        table.append(weigh(names[kind], values[index] if index < width - 1 else None))
    return pc.take(pa.array(table, pa.float64()), pc.index_in(pairs, distinct))
