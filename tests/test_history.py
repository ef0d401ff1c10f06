"""History: the as-of cut, id deduplication, ordering and the window arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.events import Event
from engine.history import History

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86400


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def ev(type_: str, days: float, id_: str | None = None, seq: int = 0, **fields: object) -> Event:
    return Event(type_, at(days), dict(fields), id_, seq)


def test_events_after_as_of_are_invisible() -> None:
    h = History([ev("a", 1), ev("a", 5), ev("a", 10)], at(5))
    assert [e.at for e in h.events] == [at(1), at(5)]
    assert h.count("a") == 2


def test_same_id_counts_once_keeping_the_earliest() -> None:
    h = History([ev("a", 3, "x", outcome="late"), ev("a", 1, "x", outcome="early")], at(9))
    assert len(h) == 1
    assert h.events[0].fields["outcome"] == "early"


def test_order_does_not_depend_on_input_order() -> None:
    events = [ev("b", 1, seq=2), ev("a", 1, seq=1), ev("a", 0, seq=3)]
    forward = History(events, at(2)).events
    backward = History(list(reversed(events)), at(2)).events
    assert forward == backward
    assert [(e.type, e.at) for e in forward] == [("a", at(0)), ("a", at(1)), ("b", at(1))]


def test_window_excludes_its_start_and_includes_as_of() -> None:
    h = History([ev("a", 0), ev("a", 0.5), ev("a", 7)], at(7))
    assert h.count("a", 7 * DAY) == 2  # the event exactly 7 days ago is out
    assert h.count("a", 6.5 * DAY) == 1
    assert h.count("a", None) == 3


def test_count_filters_on_fields() -> None:
    h = History([ev("call", 1, outcome="appointment"), ev("call", 2, outcome="no_answer")], at(3))
    assert h.count("call", None, {"outcome": "appointment"}) == 1
    assert h.count("call", None, {"outcome": "other"}) == 0
    assert h.count("missing") == 0


def test_count_after_an_instant_and_window_combine() -> None:
    h = History([ev("a", 1), ev("a", 2), ev("a", 5)], at(6))
    assert h.count("a", after=at(2)) == 1
    assert h.count("a", 10 * DAY, after=at(1)) == 2
    assert h.count("a", 2 * DAY, after=at(0)) == 1


def test_last_and_count_between() -> None:
    h = History([ev("a", 1), ev("b", 2), ev("a", 3)], at(4))
    last = h.last("a")
    assert last is not None and last.at == at(3)
    assert h.last("zzz") is None
    assert h.count_between(at(1), at(3)) == 2
    assert h.count_between(at(0), at(1)) == 1


def test_decayed_sum_halves_per_half_life() -> None:
    h = History([ev("a", 0), ev("b", 10)], at(10))
    total = h.decayed_sum(lambda e: 8.0 if e.type == "a" else 1.0, 10 * DAY)
    assert total == pytest.approx(8 * 0.5 + 1)
    windowed = h.decayed_sum(lambda e: 8.0, 10 * DAY, window_seconds=5 * DAY)
    assert windowed == pytest.approx(8.0)


def test_naive_as_of_is_rejected() -> None:
    with pytest.raises(ValueError):
        History([], datetime(2026, 1, 1))


def _by_sort_key(events: list[Event], as_of: datetime) -> list[Event]:
    """The definition: cut at as_of, order by Event.sort_key, keep the first of each id."""
    seen: set[str] = set()
    kept = []
    for e in sorted((e for e in events if e.at <= as_of), key=Event.sort_key):
        if e.id is not None:
            if e.id in seen:
                continue
            seen.add(e.id)
        kept.append(e)
    return kept


@pytest.mark.parametrize("with_ids", [False, True])
@pytest.mark.parametrize("seq_order", ["ascending", "shuffled"])
def test_fast_ordering_matches_sort_key(with_ids: bool, seq_order: str) -> None:
    """The C sort on (at, type) used without ids must order exactly as Event.sort_key."""
    import random

    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(0, 12)
        seqs = list(range(n)) if seq_order == "ascending" else rng.sample(range(n), n)
        events = [Event(rng.choice("abc"), at(rng.randint(0, 4)), {"n": i},
                        rng.choice(["x", "y", ""]) if with_ids else None, seqs[i])
                  for i in range(n)]
        as_of = at(rng.randint(0, 4))
        h = History(events, as_of)
        expected = _by_sort_key(events, as_of)
        assert [id(e) for e in h.events] == [id(e) for e in expected]
        for type_ in "abc":
            assert [id(e) for e in h.of_type(type_)] == [id(e) for e in expected if e.type == type_]
            first = h.first_at_or_after(type_, at(2))
            assert first is next((e for e in expected if e.type == type_ and e.at >= at(2)), None)
