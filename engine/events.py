"""The event: one activity in a lead's history, the unit every aggregate reads.

Kept apart from the readers and the evaluator so both depend on it and not on
each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, overload


@dataclass(slots=True, eq=True)
class Event:
    """An activity of one lead at one (timezone-aware) instant.

    Treated as immutable by convention; not ``frozen`` because frozen dataclasses
    construct through ``object.__setattr__`` and exports create millions of events.

    ``id`` deduplicates: two events with the same id count once. ``seq`` is the
    position in the input, used only to order events that share a timestamp and
    type deterministically.
    """

    type: str
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    seq: int = 0

    def sort_key(self) -> tuple[datetime, str, str, int]:
        """Total, input-order-independent order: time, type, id, then input position."""
        return (self.at, self.type, self.id or "", self.seq)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventColumns(Sequence[Event]):
    """One lead's events as parallel columns, as the fast (Arrow) read path yields them.

    Building millions of :class:`Event` objects costs more than deciding on them, so
    the batch kernel reads these columns directly; everything else sees a sequence of
    Events, built on demand and equal to what the row-by-row reader would have made
    (``at`` comes back in UTC: the same instant, so equal and ordered the same).

    ``at_us`` are UTC epoch microseconds; ``fields`` holds one list per field the
    reader mapped (``None`` where a row had no value); ``ids`` is None when the input
    has no event-id column; ``seqs`` are the events' input positions. ``points`` are the
    events' decayed engagement points as the kernel computed them for a whole block
    (:mod:`engine.kernel.decay`), and ``sums`` the lead's totals the kernel's loop would
    make (:mod:`engine.kernel.sums`): valid only for the kernel and instant ``points_key`` names.
    """

    __slots__ = ("at_us", "fields", "ids", "points", "points_key", "seqs", "sums", "types")

    def __init__(self, at_us: list[int], types: list[str], fields: dict[str, list[Any]],
                 ids: list[str | None] | None, seqs: list[int], points: list[int] | None = None,
                 points_key: object = None, sums: tuple[int, ...] | None = None) -> None:
        self.at_us, self.types, self.fields, self.ids, self.seqs = at_us, types, fields, ids, seqs
        self.points, self.points_key, self.sums = points, points_key, sums

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> EventColumns:
        """The columns of a list of Events (tests and benchmarks; readers build them directly)."""
        if isinstance(events, EventColumns):
            return events
        names = sorted({name for e in events for name in e.fields})
        ids = [e.id for e in events]
        return cls(
            [epoch_us(e.at) for e in events],
            [e.type for e in events],
            {name: [e.fields.get(name) for e in events] for name in names},
            ids if any(i is not None for i in ids) else None,
            [e.seq for e in events],
        )

    def __len__(self) -> int:
        return len(self.at_us)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        ids = self.ids
        return Event(
            self.types[index],
            _EPOCH + timedelta(microseconds=self.at_us[index]),
            {name: values[index] for name, values in self.fields.items()},
            ids[index] if ids is not None else None,
            self.seqs[index],
        )

    def __repr__(self) -> str:
        return f"EventColumns({len(self)} events)"


def epoch_us(instant: datetime) -> int:
    """An aware datetime as UTC epoch microseconds, exactly (no float on the way)."""
    return (instant - _EPOCH) // timedelta(microseconds=1)


class Encoded:
    """A converted column kept as Arrow dictionary indices (no nulls) into its converted
    distinct values: what a per-block computation in Arrow (engine.kernel.decay) reads
    without turning the Python values back into Arrow. Made by the Arrow readers
    (engine.io.arrow_convert); declared here so the kernel need not import the IO layer."""

    __slots__ = ("indices", "values")

    def __init__(self, indices: Any, values: list[Any]) -> None:
        self.indices, self.values = indices, values

    def expand(self) -> list[Any]:
        """The converted value of every row."""
        return list(map(self.values.__getitem__, self.indices.to_pylist()))
