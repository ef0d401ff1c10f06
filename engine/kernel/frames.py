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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.events import Encoded, EventColumns

if TYPE_CHECKING:
    from engine.kernel import Kernel


class Frames:
    """One chunk's events, encoded once, from which any frames' totals are computed."""

    def __init__(self, kernel: Kernel, offsets: list[int], at: Any, types: Encoded,
                 fields: dict[str, Encoded]) -> None:
        self.kernel, self.offsets, self.at, self.types, self.fields = kernel, offsets, at, types, fields

    @classmethod
    def of(cls, kernel: Kernel, leads: Sequence[EventColumns]) -> Frames | None:
        """The chunk's events (each lead's in time order); None when the kernel decides
        from no totals or a field cannot be encoded (decide those leads on their events)."""
        if kernel.totals is None:
            return None
        import numpy as np
        import pyarrow as pa

        from engine.kernel.decay import encode

        at_all: list[int] = []
        types_all: list[str] = []
        # every field the kernel reads (a lead without one reads None, as the loop does)
        names = sorted({*kernel.fields, *(name for columns in leads for name in columns.fields)})
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
        return cls(kernel, offsets, np.array(at_all, np.int64), kinds, encoded)

    def sums(self, leads: Sequence[int], instants: Sequence[int], counts: Sequence[int]
             ) -> list[tuple[int, ...]] | None:
        """Each frame's totals: lead ``leads[k]``'s first ``counts[k]`` events (its events up
        to ``instants[k]``, at least one) at ``instants[k]``; None where the kernel's block
        path gives nothing (an unknown type, an age beyond exact range, an overflow)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if not len(counts):
            return []
        count = np.asarray(counts, np.int64)
        if int(count.min()) < 1:
            return None
        ends = np.cumsum(count)
        starts = ends - count
        first = np.asarray(self.offsets, np.int64)[np.asarray(leads, np.int64)]
        rows = np.arange(int(ends[-1]), dtype=np.int64) - np.repeat(starts - first, count)
        take = pa.array(rows)
        at = pa.array(self.at[rows])
        now = pa.array(np.repeat(np.asarray(instants, np.int64), count))
        types = Encoded(pc.take(self.types.indices, take), self.types.values)
        fields = {name: Encoded(pc.take(column.indices, take), column.values)
                  for name, column in self.fields.items()}
        return self.kernel.block_totals([*starts.tolist(), int(ends[-1])], at, types, fields, now)
