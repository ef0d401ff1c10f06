"""A chunk of leads' kernel totals at many instants each, in one Arrow pass.

``engine funnel`` decides every lead at every week end (and, in a week a lead climbs,
at each of that week's event instants). Each such (lead, instant) is a *frame*: the
lead's events up to the instant, aged from it. Laid end to end, the frames are one
block of runs whose events each carry their run's instant, and
:func:`engine.kernel.sums.block_sums` gives every run's totals at once — the same
integer sums the kernel's loop makes (decayed points in 2**-32 units, window counts),
computed by the same code ``engine evaluate`` uses, only with a per-event ``as_of``.
Then :meth:`Kernel.decide_instants` decides each lead at all its instants in one call.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from engine.events import Encoded, EventColumns
from engine.kernel.source import Total

if TYPE_CHECKING:
    from engine.kernel import Kernel


def lay_out(leads: Sequence[EventColumns], also: Collection[str] = ()
            ) -> tuple[list[int], list[int], Encoded, dict[str, Encoded]] | None:
    """A chunk's events end to end: each lead's start offset (and the end), every event's
    instant, its type and each field (the leads' own and ``also``; None where a lead lacks
    one) dictionary-encoded as the kernel's Arrow path reads them. None when a field
    cannot be encoded (its leads are decided on their events)."""
    import pyarrow as pa

    from engine.kernel.decay import encode

    at_all: list[int] = []
    types_all: list[str] = []
    names = sorted({*also, *(name for columns in leads for name in columns.fields)})
    fields_all: dict[str, list[Any]] = {name: [] for name in names}
    offsets = [0]
    for columns in leads:
        at_all += columns.at_us
        types_all += columns.types
        offsets.append(len(at_all))
        for name in names:
            values = columns.fields.get(name)
            fields_all[name] += values if values is not None else [None] * len(columns.at_us)
    try:
        kinds = encode(pa, types_all)
        encoded = {name: encode(pa, values) for name, values in fields_all.items()}
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return offsets, at_all, kinds, encoded


def time_order(at: Any, owner: Any) -> Any:
    """The positions of a chunk's events sorted by (lead, instant), stably: input order
    among a lead's equal instants, as ``sorted`` keeps it. ``owner``: each event's lead
    (non-decreasing). One int64 key where (lead, instant) fits in one, else lexsort."""
    import numpy as np

    if not len(at):
        return np.arange(0, dtype=np.int64)
    base = int(at.min())
    span = int(at.max()) - base + 1
    if span * (int(owner[-1]) + 1) < 2**62:
        return np.argsort(owner * span + (at - base), kind="stable")
    return np.lexsort((at, owner))


class Frames:
    """One chunk's events, encoded once, from which any frames' totals are computed."""

    def __init__(self, kernel: Kernel, offsets: list[int], at: Any, types: Encoded,
                 fields: dict[str, Encoded]) -> None:
        import numpy as np

        self.kernel, self.offsets, self.at, self.types, self.fields = kernel, offsets, at, types, fields
        self.lead_of = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
        self.base = int(at.min()) if len(at) else 0
        span = (int(at.max()) - self.base + 1) if len(at) else 1
        # (lead, time) as one int64 key: lead * span + time from the earliest event
        self.span: int | None = span if span * max(len(offsets), 1) < 2**62 else None
        self._every: Any = _UNSET
        #: per total (its place in the kernel's totals): the events it reads and their keys
        self._keyed: dict[int, tuple[Any, Any]] = {}

    @classmethod
    def of(cls, kernel: Kernel, leads: Sequence[EventColumns], *, in_order: bool = True) -> Frames | None:
        """The chunk's events, each lead's in time order (``in_order=False``: put so here,
        stably, input order among equal instants, as each lead's own sort would); None
        when the kernel decides from no totals or a field cannot be encoded (decide those
        leads on their events)."""
        if kernel.totals is None:
            return None
        import numpy as np

        # every field the kernel reads (a lead without one reads None, as the loop does)
        laid = lay_out(leads, kernel.fields)
        if laid is None:
            return None
        offsets, at_all, kinds, encoded = laid
        at = np.array(at_all, np.int64)
        if not in_order:  # (one sort of the chunk's arrays instead of one of each lead's lists)
            order = time_order(at, np.repeat(np.arange(len(leads), dtype=np.int64), np.diff(offsets)))
            at = at[order]
            kinds = _take(kinds, order)
            encoded = {name: _take(column, order) for name, column in encoded.items()}
        return cls(kernel, offsets, at, kinds, encoded)

    def sums(self, leads: Sequence[int], instants: Sequence[int], counts: Sequence[int]
             ) -> list[tuple[int, ...]] | None:
        """Each frame's totals (a tuple of ints each, as ``run_weeks`` reads them): see
        :meth:`columns`."""
        columns = self.columns(leads, instants, counts)
        if columns is None:
            return None
        return list(zip(*(column.tolist() for column in columns), strict=True))

    def columns(self, leads: Sequence[int], instants: Sequence[int], counts: Sequence[int]
                ) -> list[Any] | None:
        """Each total of every frame, one int64 numpy column a total: lead ``leads[k]``'s
        events up to ``instants[k]`` (its first ``counts[k]``, at least one) at
        ``instants[k]``; None where the kernel's block path
        gives nothing (an unknown type, an age beyond exact range, an overflow).

        A count in an age window ``low <= age < high`` is a difference of two positions:
        the lead's matching events at or before ``instant - low`` less those at or before
        ``instant - high`` (events sorted by lead, then time: a binary search each), so
        only decayed points, which depend on the instant event by event, are laid out
        per (frame, event) and computed by :func:`engine.kernel.decay.block_points`.
        """
        import numpy as np

        totals = self.kernel.totals
        if totals is None or int(np.min(np.asarray(counts, np.int64), initial=1)) < 1:
            return None
        if not len(counts):
            return [np.zeros(0, np.int64) for _ in totals]
        half_life, weigh, known = self.kernel.weighing
        if any(kind not in known for kind in self.types.values):
            return None  # the loop raises for it, and decide answers
        lead = np.asarray(leads, np.int64)
        now = np.asarray(instants, np.int64)
        columns = []
        for number, total in enumerate(totals):
            found_keys = self._keyed.get(number)
            if found_keys is None:  # (once a chunk: the weeks' and the climbs' frames read the same)
                picked = self._picked(total)
                found_keys = self._keyed[number] = (picked, None if picked is None else self._keys(picked))
            picked, keys = found_keys
            if picked is None:
                return None
            low = self._positions(keys, lead, now - total.low_us)
            high = (self._positions(keys, lead, now - total.high_us) if total.high_us is not None
                    else self._lead_starts(keys, lead))
            if low is None or high is None:
                return None
            if total.points:
                found = self._points(picked, high, low, now, half_life, weigh)
                if found is None:
                    return None
                columns.append(found)
            else:
                columns.append(low - high)
        return columns

    def _weights(self, weigh: Any) -> Any:
        """Every event's weight (numpy float64), computed once for the chunk: a frame's
        events are taken from it rather than weighed again at every instant. None: let
        :func:`block_points` weigh each frame's events (and give up as it does)."""
        if self._every is _UNSET:
            from engine.kernel.decay import block_weights

            found = block_weights(self.types, self.fields.get("content"), weigh)
            self._every = None if found is None else found.to_numpy(zero_copy_only=False)
        return self._every

    def _picked(self, total: Total) -> Any:
        """The positions of the chunk's events a total reads (its types and field values)."""
        import numpy as np

        keep = np.ones(len(self.at), bool)
        if total.types is not None:
            keep &= _where(self.types, total.types.__contains__)
        for name, wanted in total.fields:
            column = self.fields.get(name)
            if column is None:
                return None
            keep &= _where(column, lambda value, wanted=wanted: bool(value == wanted))
        return np.flatnonzero(keep)

    def _keys(self, picked: Any) -> Any:
        """Sortable (lead, time) keys of the picked events, or None past int64."""
        span = self.span
        if span is None:
            return None
        return self.lead_of[picked] * span + (self.at[picked] - self.base)

    def _positions(self, keys: Any, lead: Any, upto: Any) -> Any:
        """Per frame, how many picked events come before those of its lead after ``upto``:
        the picked events' position just past the lead's last one at or before ``upto``
        (``keys``: the picked events' :meth:`_keys`)."""
        import numpy as np

        if keys is None:
            return None
        span = self.span
        assert span is not None
        offset = np.clip(upto - self.base, -1, span - 1)
        return np.searchsorted(keys, lead * span + offset, side="right")

    def _lead_starts(self, keys: Any, lead: Any) -> Any:
        """Per frame, the position of its lead's first picked event (``keys`` as above)."""
        import numpy as np

        if keys is None:
            return None
        assert self.span is not None
        return np.searchsorted(keys, lead * self.span, side="left")

    def _points(self, picked: Any, start: Any, end: Any, now: Any, half_life: float | None,
                weigh: Any) -> Any:
        """Per frame, the decayed points of the picked events ``start[k]:end[k]`` at ``now[k]``."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from engine.kernel.decay import block_points

        size = end - start
        ends = np.cumsum(size)
        rows = picked[np.arange(int(ends[-1]), dtype=np.int64) - np.repeat(ends - size - start, size)]
        content = self.fields.get("content")
        types, texts = self.types, content  # (not read when weights are given)
        every = self._weights(weigh)
        weights = None if every is None else pa.array(every[rows])
        if weights is None:
            take = pa.array(rows)
            types = Encoded(pc.take(self.types.indices, take), self.types.values)
            texts = None if content is None else Encoded(pc.take(content.indices, take), content.values)
        instants = pa.array(np.repeat(now, size))
        points = block_points(pa.array(self.at[rows]), types, texts, instants, half_life, weigh, weights)
        if points is None:
            return None
        values = points.to_numpy()
        if len(values) and int(np.abs(values).max()) >= 2**62 // len(values):
            return None  # a sum that could pass int64 (the block path stops there too)
        running = np.concatenate([np.zeros(1, np.int64), np.cumsum(values)])
        return running[ends] - running[ends - size]


_UNSET = object()


def _take(encoded: Encoded, order: Any) -> Encoded:
    """The encoded column's rows in ``order`` (the same distinct values)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return Encoded(pc.take(encoded.indices, pa.array(order)), encoded.values)


def _where(encoded: Encoded, test: Any) -> Any:
    """Rows whose (converted) value passes ``test``, decided once per distinct value."""
    import numpy as np

    table = np.array([bool(test(value)) for value in encoded.values] or [False], bool)
    return table[encoded.indices.to_numpy()]
