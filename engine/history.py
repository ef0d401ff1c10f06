"""A lead's event history as of one instant, with the aggregates expressions read.

Every expression function is an aggregate over this object (counts in a window,
the last occurrence, decayed sums), which is what lets a playbook later compile
to SQL with the same answers. It is built once per lead per evaluation time, so
construction is one sort (in C when events carry no ids) and a pass; queries bisect per-type time indexes.

Windows are half-open on the past side: "within D" means ``as_of - D < at <= as_of``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import islice
from operator import attrgetter, le
from typing import Any

from engine.events import Event

_EMPTY: tuple[Event, ...] = ()
_AT = attrgetter("at")
_AT_TYPE = attrgetter("at", "type")
_ID = attrgetter("id")
_SEQ = attrgetter("seq")


_WINDOWS: dict[float, timedelta] = {}


def _window(seconds: float) -> timedelta:
    """``timedelta(seconds=...)``, remembered: playbooks use a handful of windows per lead."""
    td = _WINDOWS.get(seconds)
    if td is None:
        td = timedelta(seconds=seconds)
        if len(_WINDOWS) < 1024:
            _WINDOWS[seconds] = td
    return td


def _ascending(values: list[int]) -> bool:
    """Never descending (one C-level pass)."""
    return all(map(le, values, islice(values, 1, None)))


def _dedup(ordered: list[Event]) -> list[Event]:
    """Keep the first event of each id (``ordered`` is in sort_key order: the earliest)."""
    seen: set[str] = set()
    unique: list[Event] = []
    for event in ordered:
        if event.id is not None:
            if event.id in seen:
                continue
            seen.add(event.id)
        unique.append(event)
    return unique


class History:
    """The events of one lead with ``at <= as_of``, deduplicated and ordered.

    Events sharing an ``id`` count once (the earliest by :meth:`Event.sort_key`
    is kept): exports overlap and re-sending a file must not double a score.
    """

    __slots__ = ("_by_type", "_times", "_type_times", "as_of", "events")

    def __init__(self, events: Iterable[Event], as_of: datetime) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        self.as_of = as_of
        given = events if isinstance(events, list | tuple) else list(events)
        ids = list(map(_ID, given))
        if ids.count(None) == len(ids) and _ascending(list(map(_SEQ, given))):
            # No ids and seq never descends: a stable sort on (at, type) orders exactly
            # as Event.sort_key (its id part is "" throughout, ties keep seq order), in C,
            # and there is nothing to deduplicate. The as-of cut is then a prefix.
            ordered = sorted(given, key=_AT_TYPE)
            times = list(map(_AT, ordered))
            cut = bisect_right(times, as_of)
            if cut < len(ordered):
                del ordered[cut:], times[cut:]
            unique = ordered
        else:
            unique = _dedup(sorted((e for e in given if e.at <= as_of), key=Event.sort_key))
            times = list(map(_AT, unique))
        self.events: tuple[Event, ...] = tuple(unique)
        self._times = times
        by_type: dict[str, list[Event]] = {}
        for event in unique:
            same = by_type.get(event.type)
            if same is None:
                by_type[event.type] = [event]
            else:
                same.append(event)
        self._by_type: Mapping[str, Sequence[Event]] = by_type
        self._type_times: dict[str, list[datetime]] = {}  # filled on first use per type

    def __len__(self) -> int:
        return len(self.events)

    def of_type(self, type_: str) -> Sequence[Event]:
        """Events of one type, oldest first."""
        return self._by_type.get(type_, _EMPTY)

    def _start(self, type_: str | None, after: datetime | None) -> int:
        if after is None:
            return 0
        times = self._times if type_ is None else self._times_of(type_)
        return bisect_right(times, after)

    def _times_of(self, type_: str) -> list[datetime]:
        """The instants of one type's events (built lazily: most types are never bisected)."""
        times = self._type_times.get(type_)
        if times is None:
            times = self._type_times[type_] = list(map(_AT, self._by_type.get(type_, _EMPTY)))
        return times

    def in_window(self, type_: str | None, window_seconds: float | None) -> Sequence[Event]:
        """Events (of ``type_``, or all when None) with ``as_of - window < at <= as_of``."""
        after = None if window_seconds is None else self.as_of - _window(window_seconds)
        return self.since(type_, after)

    def since(self, type_: str | None, after: datetime | None) -> Sequence[Event]:
        """Events (of ``type_``, or all when None) strictly after ``after`` (all if None)."""
        events = self.events if type_ is None else self.of_type(type_)
        return events[self._start(type_, after) :]

    def count(
        self,
        type_: str | None,
        window_seconds: float | None = None,
        field_equals: Mapping[str, Any] | None = None,
        after: datetime | None = None,
    ) -> int:
        """How many events match: type, window (or ``after`` instant), equal fields."""
        if after is not None and window_seconds is not None:
            window_start = self.as_of - _window(window_seconds)
            after = max(after, window_start)
        elif window_seconds is not None:
            after = self.as_of - _window(window_seconds)
        events = self.since(type_, after)
        if not field_equals:
            return len(events)
        if len(field_equals) == 1:  # the common case: count("call", outcome="appointment")
            ((key, value),) = field_equals.items()
            return sum(1 for e in events if e.fields.get(key) == value)
        items = tuple(field_equals.items())
        return sum(1 for e in events if all(e.fields.get(k) == v for k, v in items))

    def count_between(self, start_exclusive: datetime, end_inclusive: datetime) -> int:
        """All events with ``start < at <= end``: the surge windows (recent vs prior)."""
        lo = bisect_right(self._times, start_exclusive)
        hi = bisect_right(self._times, end_inclusive)
        return max(0, hi - lo)

    def last(self, type_: str | None = None) -> Event | None:
        """The latest event of ``type_`` (any type when None), or None."""
        events = self.events if type_ is None else self.of_type(type_)
        return events[-1] if events else None

    def first_at_or_after(self, type_: str, instant: datetime) -> Event | None:
        """The earliest event of ``type_`` at or after ``instant`` (recycling resets)."""
        events = self.of_type(type_)
        i = bisect_left(self._times_of(type_), instant)
        return events[i] if i < len(events) else None

    def decayed_sum(
        self,
        weight: Callable[[Event], float],
        half_life_seconds: float,
        window_seconds: float | None = None,
        after: datetime | None = None,
    ) -> float:
        """Sum of ``weight(e) * 0.5 ** (age / half_life)`` over the (windowed) events.

        Age is measured to ``as_of`` so the same history scores the same at the same time.
        """
        if half_life_seconds <= 0:
            raise ValueError("half_life_seconds must be positive")
        events = self.in_window(None, window_seconds)
        if after is not None:
            events = [e for e in events if e.at > after]
        total = 0.0
        as_of = self.as_of
        for event in events:
            w = weight(event)
            if w:
                age = (as_of - event.at).total_seconds()
                total += w * 0.5 ** (age / half_life_seconds)
        return total
