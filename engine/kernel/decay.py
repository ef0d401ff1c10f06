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

from engine.events import Encoded

_EXACT = 2**53  # integers below this convert to float64 exactly
_QUANTUM = 4294967296.0


def block_points(
    at_us: Sequence[int] | Any,
    types: Sequence[str] | Encoded,
    content: Sequence[Any] | Encoded | None,
    as_of_us: int | Any,
    half_life: float | None,
    weigh: Callable[[str, Any], float],
    weights: Any = None,
) -> Any:
    """Each event's points in 2**-32 units at ``as_of_us`` (0 where its weight is 0), as an
    Arrow int64 array; or None when this block must be left to the loop (an age beyond
    2**53 µs, a product beyond int64, an unknown type: ``weigh`` raises).

    Columns come as Python lists or as the reader kept them in Arrow (``at_us`` an int64
    array, the others :class:`~engine.events.Encoded`), which saves turning
    lists back into Arrow. ``weigh(type, content)`` is the playbook's weight; it is
    asked once per distinct (type, content) pair of the block. Events after ``as_of``
    get age 0's points (the loop skips them before reading them). ``as_of_us`` may be an
    int64 array: each event's own instant (its run's, :func:`engine.kernel.sums.block_sums`).
    ``weights``: each event's weight (a float64 array, :func:`block_weights`) when the
    caller already has them (engine funnel lays the same events out at many instants).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(at_us):
        return pa.array([], pa.int64())
    if half_life is not None and not (0 < half_life < _EXACT):
        return None
    try:
        at = at_us if isinstance(at_us, pa.Array) else pa.array(at_us, pa.int64())
        now = as_of_us if isinstance(as_of_us, pa.Array) else pa.scalar(as_of_us, pa.int64())
        raw = pc.subtract_checked(now, at)
        low, high = pc.min_max(raw).values()
        if high.as_py() >= _EXACT or -low.as_py() >= _EXACT:
            return None
        if weights is None:
            weights = _weights(pa, pc, types, content, weigh)
        if weights is None:
            return None
        # An event after as_of gets age 0's points: the loop skips it before reading them
        # (its own age would overflow ``0.5 **`` for a short half-life, as Python's does).
        # Every constant an Arrow scalar: converting a Python number makes pyarrow try to
        # import pandas and dateutil, uncached when absent (~0.2 ms a call).
        def f64(value: float) -> Any:
            return pa.scalar(value, pa.float64())

        zero = pa.scalar(0, pa.int64())
        age = pc.cast(pc.max_element_wise(raw, zero), pa.float64())
        points = weights
        if half_life:
            decay = pc.power(f64(0.5), pc.divide(pc.divide(age, f64(1000000.0)), f64(float(half_life))))
            points = pc.multiply(weights, decay)
        units = pc.floor(pc.add(pc.multiply(points, f64(_QUANTUM)), f64(0.5)))
        if not pc.all(pc.less(pc.abs(units), f64(2.0**63))).as_py():
            return None
        return pc.cast(units, pa.int64())
    except (pa.ArrowException, KeyError, TypeError, ValueError, OverflowError):
        return None


def block_weights(types: Encoded, content: Encoded | None, weigh: Callable[[str, Any], float]) -> Any:
    """Each event's weight as a float64 Arrow array (``weigh`` once per distinct pair), or
    None where :func:`block_points` would give no points (``weigh`` raises)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return _weights(pa, pc, types, content, weigh)
    except (pa.ArrowException, KeyError, TypeError, ValueError, OverflowError):
        return None


def _weights(pa: Any, pc: Any, types: Sequence[str] | Encoded, content: Sequence[Any] | Encoded | None,
             weigh: Callable[[str, Any], float]) -> Any:
    """The weight of every event as a float64 array: one ``weigh`` per distinct pair."""
    kinds = types if isinstance(types, Encoded) else encode(pa, types)
    if content is None:
        table = [weigh(kind, None) for kind in kinds.values]
        return pc.take(pa.array(table, pa.float64()), kinds.indices)
    texts = content if isinstance(content, Encoded) else encode(pa, content)
    width = len(texts.values)
    pairs = pc.add(pc.multiply(kinds.indices.cast(pa.int64()), pa.scalar(width, pa.int64())),
                   texts.indices.cast(pa.int64()))
    distinct = pc.unique(pairs)
    table = []
    for key in distinct.to_pylist():
        kind, index = divmod(key, width)
        table.append(weigh(kinds.values[kind], texts.values[index]))
    return pc.take(pa.array(table, pa.float64()), pc.index_in(pairs, distinct))


def encode(pa: Any, values: Sequence[Any]) -> Encoded:
    """Python values (text or None) as :class:`Encoded`; anything else raises (no points)."""
    encoded = pa.array(values, pa.string()).dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        distinct.append(None)
        indices = indices.fill_null(pa.scalar(len(distinct) - 1, indices.type))
    return Encoded(indices, distinct)
