"""Weekly decisions: the playbook decided at each week's end, on one read of the export.

Time is a parameter, not a loop of full runs: the export is read once (each lead with
its events, as ``engine evaluate`` reads it), and each lead is decided at every week end
from its first event on, with only the events up to that instant — the decision
function ignores later ones. Decay and windows make a decision depend on the instant
even in a week without events, so every week is decided — but not by looping over the
lead's events each week: leads go in chunks, and one Arrow pass per week gives every
lead's kernel totals at that week's end (:mod:`engine.measure.week_sums`), from which
the kernel decides with no loop over events. Weeks before a lead's first event are
skipped (the lead did not exist yet), and a lead with no event at all cannot be placed
in time (counted, not decided).

Week ``i`` (0-based) is the interval ``(start + 7i days, start + 7(i+1) days]``: an
event at exactly a week's end belongs to that week, as a decision at *t* sees events
at *t*.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.evaluate import decide_for_row
from engine.events import Event, EventColumns, epoch_us
from engine.io import LeadRecord
from engine.measure.week_answer import WeekAnswer, week_kernel

if TYPE_CHECKING:
    from engine.decision import Handoff

WEEK = timedelta(days=7)
#: Ten years of weeks: more is a typo in --from/--to, not a funnel.
MAX_WEEKS = 520
_WEEK_US = 7 * 86_400_000_000


@dataclass(frozen=True)
class Weeks:
    """The weeks a funnel covers: their start instants and decision instants (ends)."""

    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]

    @classmethod
    def between(cls, start: datetime, end: datetime) -> Weeks:
        """Whole weeks from ``start`` until one ends at or after ``end``."""
        if end <= start:
            raise EngineError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})"
                              f"; give --from the first day and --to the last")
        count = -(-(end - start) // WEEK)
        if count > MAX_WEEKS:
            raise EngineError(f"--from/--to span {count} weeks; at most {MAX_WEEKS} are decided"
                              f"; check the years of --from and --to")
        starts = tuple(start + i * WEEK for i in range(count))
        return cls(starts, tuple(s + WEEK for s in starts))

    def __len__(self) -> int:
        return len(self.ends)

    def index_of(self, at: datetime) -> int | None:
        """The week holding ``at`` (``(start, end]``), or None outside them."""
        if at <= self.starts[0] or at > self.ends[-1]:
            return None
        return bisect_right(self.ends, at - timedelta(microseconds=1))

    def labels(self) -> list[str]:
        """Each week by its first day (the playbook's zone, as the instants are)."""
        return [s.date().isoformat() for s in self.starts]


@dataclass(frozen=True, slots=True)
class Episode:
    """A run of weeks in which one lead holds the same handoff (team, rule, due).

    A new due time starts a new episode: the condition started holding again (or, for a
    handoff due from the latest activity, the lead acted again), so a handoff the team
    worked comes back. ``priorities`` has one value per week
    of the run (decay changes it week to week).
    """

    lead_id: str
    row: int
    team: str
    rule: str
    due: str | None
    start: int
    priorities: tuple[float | None, ...]
    #: Per week of the run, whether the decision found the handoff overdue (engine.handoff_life).
    overdue: tuple[bool, ...] = ()

    @property
    def end(self) -> int:
        """The last week the lead still held this handoff."""
        return self.start + len(self.priorities) - 1


@dataclass
class LeadWeeks:
    """One lead over the weeks: its stage at each week end from ``first`` on, and more."""

    lead_id: str
    row: int
    fields: dict[str, Any]
    first: int
    stages: list[int]
    excluded: list[bool]
    #: (week, stage index, instant the lead reached it): the event that lifted it (weeks
    #: that end higher are replayed event by event), or the week's end when time alone did.
    entries: list[tuple[int, int, datetime]]
    episodes: list[Episode]
    personas: tuple[str, ...] = ()
    target_account: bool = False
    target_lead: bool = False
    max_stage: int = 0
    events_in_weeks: list[int] = field(default_factory=list)


@dataclass
class Unplaced:
    """Leads the weeks cannot hold, counted so the summary can say so."""

    no_events: int = 0
    after_period: int = 0
    failed: int = 0


#: Leads decided together: one Arrow pass per week over their events (engine.measure.week_sums).
CHUNK = 2048


def weekly(cp: CompiledPlaybook, pairs: Iterable[tuple[LeadRecord, Sequence[Event]]], weeks: Weeks,
           unplaced: Unplaced, on_failure: Any = None) -> Iterator[LeadWeeks]:
    """Decide each lead at each week end from its first event on; yield one LeadWeeks per lead.

    Leads go in chunks: each week's totals for a whole chunk come from one Arrow pass
    (:func:`engine.measure.week_sums.prepare_weeks`), and the kernel decides each lead
    from them; ``decide_for_row`` on the lead's events where they give nothing.
    ``on_failure(lead, error)`` hears of a lead whose decision raised (a field of an
    unexpected type): it is reported, not dropped silently and not a crash.
    """
    ends_us = [epoch_us(t) for t in weeks.ends]
    chunk: list[tuple[LeadRecord, EventColumns, int]] = []
    last = ends_us[-1]
    for lead, found in pairs:
        events = EventColumns.from_events(found)
        times = events.at_us
        if not times:
            unplaced.no_events += 1
            continue
        earliest = min(times)
        if earliest > last:
            unplaced.after_period += 1
            continue
        chunk.append((lead, events, bisect_right(ends_us, earliest - 1)))  # its first week
        if len(chunk) >= CHUNK:
            yield from _decide_chunk(cp, _in_time_order(chunk, ends_us), weeks.ends, ends_us, unplaced,
                                     on_failure)
            chunk = []
    yield from _decide_chunk(cp, _in_time_order(chunk, ends_us), weeks.ends, ends_us, unplaced, on_failure)


def _in_time_order(chunk: list[tuple[LeadRecord, EventColumns, int]], ends_us: Sequence[int]
                   ) -> list[_Placed]:
    """The chunk's leads placed (:func:`place` gives the same), their events put in time
    order with one stable sort of the whole chunk (numpy) instead of one of each lead's
    lists; a lead's columns are reordered only when something needs them
    (:attr:`_Placed.events`). The bench export is in no order within a lead: sorting each
    lead's lists, and finding each week's count with a bisection a week, took ~1.5 s CPU
    of 100k leads."""
    import numpy as np

    from engine.kernel.frames import time_order

    if not chunk:
        return []
    sizes = np.fromiter((len(events.at_us) for _, events, _ in chunk), np.int64, len(chunk))
    starts = np.cumsum(sizes) - sizes
    owner = np.repeat(np.arange(len(chunk), dtype=np.int64), sizes)
    at = np.fromiter(chain.from_iterable(events.at_us for _, events, _ in chunk), np.int64, int(sizes.sum()))
    order = time_order(at, owner)  # stable: input order among equal instants, as sorted() keeps it
    ordered = at[order]
    local = order - starts[owner]
    moved = np.flatnonzero(np.add.reduceat(local != np.arange(len(at)) - starts[owner], starts))
    # each lead's count of events up to each of its week ends, by binary search within its run
    firsts = np.fromiter((first for _, _, first in chunk), np.int64, len(chunk))
    weeks = len(ends_us) - firsts
    frame_owner = np.repeat(np.arange(len(chunk), dtype=np.int64), weeks)
    week = np.arange(int(weeks.sum()), dtype=np.int64) - np.repeat(np.cumsum(weeks) - weeks - firsts, weeks)
    base = int(ordered.min())
    span = int(ordered.max()) - base + 2
    uptos_all: list[int] | None = None
    if span * (len(chunk) + 1) < 2**62:  # (lead, instant) as one int64 key
        keys = owner * span + (ordered - base)
        ends = np.clip(np.asarray(ends_us, np.int64)[week] - base, -1, span - 1)
        uptos_all = (np.searchsorted(keys, frame_owner * span + ends, side="right")
                     - starts[frame_owner]).tolist()
    times_all: list[int] = ordered.tolist()
    local_all: list[int] = local.tolist()
    bounds = np.concatenate([[0], np.cumsum(weeks)]).tolist()
    size_list: list[int] = sizes.tolist()
    start_list: list[int] = starts.tolist()
    shuffled = set(moved.tolist())
    out: list[_Placed] = []
    for index, (lead, events, first) in enumerate(chunk):
        low, high = start_list[index], start_list[index] + size_list[index]
        times = times_all[low:high] if index in shuffled else events.at_us
        uptos = (uptos_all[bounds[index]:bounds[index + 1]] if uptos_all is not None
                 else [bisect_right(times, end) for end in ends_us[first:]])
        positions = local_all[low:high] if index in shuffled else None
        out.append(_Placed(lead, events, first, uptos, times, positions))
    return out


class _Placed:
    """A lead with its events, its first week, how many events each week end sees (from
    its first week on) and its instants in time order; :attr:`events` in time order."""

    __slots__ = ("_sorted", "first", "lead", "order", "raw", "times", "uptos")

    def __init__(self, lead: LeadRecord, raw: EventColumns, first: int, uptos: list[int],
                 times: list[int] | None = None, order: list[int] | None = None) -> None:
        """``raw``: the events as read; ``order``: their positions in time order (None:
        ``raw`` is in time order); ``times``: their instants in that order."""
        self.lead, self.raw, self.first, self.uptos, self.order = lead, raw, first, uptos, order
        self.times = times if times is not None else raw.at_us
        self._sorted: EventColumns | None = raw if order is None else None

    @property
    def events(self) -> EventColumns:
        """The events in time order (reordered once, when first asked)."""
        if self._sorted is None:
            self._sorted = _reordered(self.raw, self.order, self.times)
        return self._sorted


def _decide_chunk(cp: CompiledPlaybook, chunk: list[_Placed], ends: Sequence[datetime],
                  ends_us: Sequence[int], unplaced: Unplaced, on_failure: Any) -> Iterator[LeadWeeks]:
    """Every lead of the chunk at every week end, then each lead's weeks summed up; in
    the chunk's order. Frames (:func:`_frame_weeks`) where the kernel decides from
    totals, else week by week (:func:`chunk_decisions`)."""
    if not chunk:
        return
    done: list[LeadWeeks | Exception | None] = _frame_weeks(cp, chunk, ends, ends_us)
    rest = [index for index, got in enumerate(done) if got is None]
    if rest:
        others = [chunk[index] for index in rest]
        decisions, failed = chunk_decisions(cp, others, ends)
        for index, placed, weekly_, error in zip(rest, others, decisions, failed, strict=True):
            if error is None:
                try:
                    done[index] = _lead_weeks(cp, placed.lead, placed.events, placed.events.at_us,
                                              placed.first, ends, ends_us, _compact(cp, weekly_), None,
                                              placed.uptos)
                    continue
                except Exception as raised:  # one lead's failure must not lose the run
                    error = raised
            done[index] = error
    for placed, got in zip(chunk, done, strict=True):
        if isinstance(got, LeadWeeks):
            yield got
            continue
        unplaced.failed += 1
        if on_failure is not None:
            on_failure(placed.lead, got)


def _frame_weeks(cp: CompiledPlaybook, chunk: Sequence[_Placed], ends: Sequence[datetime],
                 ends_us: Sequence[int]) -> list[LeadWeeks | Exception | None]:
    """Each lead's weeks from its totals at every week end, all computed in one pass
    (:mod:`engine.kernel.frames`) and decided for the whole chunk in numpy and summed up
    from its columns (:func:`_vector_weeks`), or in one kernel call a lead
    (:meth:`Kernel.decide_instants`: its fit and lead-field tests once) where numpy
    declines; the weeks it climbed, at each of their event instants the same way. None for a lead this cannot
    decide (repeated event ids, a mistyped field: :func:`chunk_decisions` does), or all
    of them when the playbook decides from events, not totals."""
    from engine.kernel.frames import Frames

    out: list[LeadWeeks | Exception | None] = [None] * len(chunk)
    kernel = week_kernel(cp)
    frames = (Frames.of(kernel, [p.raw for p in chunk], in_order=all(p.order is None for p in chunk))
              if kernel is not None else None)
    if kernel is None or frames is None:
        return out
    usable = [i for i, p in enumerate(chunk) if p.raw.ids is None or not _repeats(p.raw.ids)]
    vector = kernel.vector_weeks()
    if vector is not None and not vector.broken and usable:
        done = _vector_weeks(vector, frames, chunk, usable, ends, ends_us, len(cp.stages))
        for index, found in done.items():
            out[index] = found
        usable = [index for index in usable if index not in done]  # (the rest: the generated loop)
    if not usable:
        return out
    who: list[int] = []
    instants: list[int] = []
    counts: list[int] = []
    for index in usable:
        placed = chunk[index]
        who += [index] * len(placed.uptos)
        instants += ends_us[placed.first:]
        counts += placed.uptos
    decided = _decide_frames(kernel, frames, chunk, usable, [len(chunk[i].uptos) for i in usable], who,
                             instants, counts)
    if decided is None:
        return out
    answers: dict[int, Weekly] = {}
    for index, got in zip(usable, decided, strict=True):
        if got is not None and got[1] is not None:
            answers[index] = (got[0], got[1])
    climbs = _climb_stages(cp, kernel, frames, chunk, answers, ends_us)
    for index, weekly_ in answers.items():
        placed = chunk[index]
        stages_at = climbs.get(index)
        if stages_at is None:
            continue
        try:
            # (the events themselves are not read: every instant's stage is in stages_at)
            out[index] = _lead_weeks(cp, placed.lead, placed.raw, placed.times, placed.first, ends,
                                     ends_us, weekly_, stages_at, placed.uptos)
        except Exception:  # left to the week-by-week path, which reports it
            out[index] = None
    return out


def _vector_weeks(vector: Any, frames: Any, chunk: Sequence[_Placed], usable: Sequence[int],
                  ends: Sequence[datetime], ends_us: Sequence[int], stage_count: int) -> dict[int, LeadWeeks]:
    """The weeks of every lead numpy decides (:mod:`engine.kernel.vector`), summed up per
    chunk from its columns — stage changes, the instants of the weeks a lead climbed,
    handoff episodes, events a week — instead of per (lead, week) in Python: the
    :class:`LeadWeeks` :func:`_lead_weeks` makes from the same decisions. Empty where
    numpy declines (or a total is missing): the caller's per-lead path does them."""
    import numpy as np

    from engine.kernel import to_datetime
    from engine.kernel.vector import Decline, Unsupported

    prepared = vector.prepare([p.lead.fields for p in chunk])  # (once for the weeks and the climbs)
    ok = prepared.ok
    leads = [index for index in usable if ok[index]]
    if not leads:
        return {}
    placed = [chunk[index] for index in leads]
    sizes = np.fromiter((len(p.uptos) for p in placed), np.int64, len(placed))
    firsts = np.fromiter((p.first for p in placed), np.int64, len(placed))
    starts = np.cumsum(sizes) - sizes  # each lead's first frame
    owner = np.repeat(np.arange(len(placed), dtype=np.int64), sizes)  # a frame's lead (position in placed)
    week = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(starts - firsts, sizes)
    uptos = np.fromiter(chain.from_iterable(p.uptos for p in placed), np.int64, len(week))
    who = np.asarray(leads, np.int64)[owner]
    try:
        columns = frames.columns(who, np.asarray(ends_us, np.int64)[week], uptos)
        if columns is None:
            return {}
        stage, excluded, handoff, objects = vector.decide_codes(prepared, who,
                                                                np.asarray(ends_us, np.int64)[week], columns)
    except Unsupported:
        vector.broken = True
        return {}
    except Decline:
        return {}
    stage = np.asarray(stage, np.int64)
    first_frame = np.zeros(len(week), bool)
    first_frame[starts] = True
    previous = np.empty_like(stage)
    previous[1:] = stage[:-1]
    previous[first_frame] = -1
    # the events each week adds: its count less the week before's (the first week: less
    # the lead's events before it)
    earlier = np.fromiter((bisect_right(p.times, ends_us[p.first] - _WEEK_US) for p in placed), np.int64,
                          len(placed))
    before = np.empty_like(uptos)
    before[1:] = uptos[:-1]
    before[starts] = earlier
    # the weeks that end higher: each distinct event instant in them, as _climb_stages finds them
    rising = np.flatnonzero(stage > previous)
    lengths = uptos[rising] - before[rising]
    climb_frame = np.repeat(rising, lengths)
    position = (np.arange(int(lengths.sum()), dtype=np.int64)
                - np.repeat(np.cumsum(lengths) - lengths - before[rising], lengths))  # within the lead
    event_sizes = np.fromiter((len(p.times) for p in placed), np.int64, len(placed))
    event_starts = np.cumsum(event_sizes) - event_sizes
    times = np.fromiter(chain.from_iterable(p.times for p in placed), np.int64, int(event_sizes.sum()))
    at = event_starts[owner[climb_frame]] + position
    last = position + 1 == uptos[climb_frame]
    last[~last] = times[at[~last] + 1] != times[at[~last]]
    climb_frame, position, at = climb_frame[last], position[last], at[last]
    climb_us = times[at]
    climbed = np.zeros(0, np.int64)
    if len(climb_frame):
        climb_who = who[climb_frame]
        try:
            climb_columns = frames.columns(climb_who, climb_us, position + 1)
            if climb_columns is None:
                return {}
            climbed = np.asarray(vector.decide_codes(prepared, climb_who, climb_us, climb_columns)[0],
                                 np.int64)
        except Unsupported:
            vector.broken = True
            return {}
        except Decline:
            return {}
    # within a week, an instant is an entry where it is higher than all before it that week
    # (and than the stage before the week): a running maximum per week
    span = stage_count + 2
    floor = np.maximum(climbed, previous[climb_frame])
    running = np.maximum.accumulate(climb_frame * span + floor + 1) - climb_frame * span - 1
    prior = np.empty_like(running)
    prior[1:] = running[:-1]
    new_week = np.ones(len(running), bool)
    new_week[1:] = climb_frame[1:] != climb_frame[:-1]
    prior[new_week] = previous[climb_frame[new_week]]
    entry = running > prior
    entry_frame, entry_stage, entry_us = climb_frame[entry], climbed[entry], climb_us[entry]
    # a week's end is an entry where the stage changed, unless its climb ended there
    top_of_climb = np.full(len(stage), -2, np.int64)
    np.maximum.at(top_of_climb, entry_frame, entry_stage)  # (a week's last: they rise)
    end_entry = np.flatnonzero((stage != previous) & (top_of_climb != stage))
    frame_of = np.concatenate([entry_frame, end_entry])
    order = np.argsort(frame_of * 2 + np.concatenate([np.zeros(len(entry_frame), np.int64),
                                                      np.ones(len(end_entry), np.int64)]), kind="stable")
    frame_of = frame_of[order]
    entry_stages = np.concatenate([entry_stage, stage[end_entry]])[order].tolist()
    entry_at = np.concatenate([entry_us, np.zeros(len(end_entry), np.int64)])[order].tolist()
    at_end = (order >= len(entry_frame)).tolist()
    entry_weeks = week[frame_of].tolist()
    entry_bounds = [*np.searchsorted(frame_of, starts).tolist(), len(frame_of)]
    entries_all = [(w, s, ends[w] if end else to_datetime(us).astimezone(ends[w].tzinfo))
                   for w, s, us, end in zip(entry_weeks, entry_stages, entry_at, at_end, strict=True)]
    # handoff episodes: runs of frames of one lead holding the same (team, rule, due)
    keys: dict[tuple[str, str, str | None], int] = {}
    key_list: list[tuple[str, str, str | None]] = []
    key_of = np.full(len(objects), -1, np.int64)
    priority_of = np.empty(len(objects), object)
    overdue_of = np.zeros(len(objects), bool)
    handoff = np.asarray(handoff, np.int64)
    for code in np.unique(handoff).tolist():  # (the table also holds lead values and exclusions)
        made = objects[code]
        if made is not None:
            key = (made.to, made.rule, made.due)
            found = keys.get(key)
            if found is None:
                found = keys[key] = len(key_list)
                key_list.append(key)
            key_of[code], priority_of[code] = found, made.priority
            overdue_of[code] = made.overdue_since is not None
    held = key_of[handoff]
    last_frame = np.zeros(len(week), bool)
    last_frame[starts + sizes - 1] = True
    opened = (held >= 0) & (first_frame | (held != np.concatenate([[-1], held[:-1]])))
    closed = (held >= 0) & (last_frame | (held != np.concatenate([held[1:], [-1]])))
    episode_starts = np.flatnonzero(opened)
    episode_ends = np.flatnonzero(closed) + 1
    priorities = priority_of[handoff].tolist()
    overdue = overdue_of[handoff].tolist()
    episode_keys = held[episode_starts].tolist()
    episode_weeks = week[episode_starts].tolist()
    episode_bounds = [*np.searchsorted(episode_starts, starts).tolist(), len(episode_starts)]
    spans = list(zip(episode_starts.tolist(), episode_ends.tolist(), strict=True))
    stages = stage.tolist()
    excluded_all = (np.asarray(excluded, np.int64) != 0).tolist()
    counts = (uptos - before).tolist()
    tops = np.maximum.reduceat(stage, starts).tolist()
    bounds = [*starts.tolist(), len(stages)]
    out: dict[int, LeadWeeks] = {}
    lasts = prepared.lasts
    for k, (index, one) in enumerate(zip(leads, placed, strict=True)):
        low, high = bounds[k], bounds[k + 1]
        lead = one.lead
        lead_id, row = lead.lead_id, lead.row
        episodes = []
        for e in range(episode_bounds[k], episode_bounds[k + 1]):
            team, rule, due = key_list[episode_keys[e]]
            a, b = spans[e]
            episodes.append(Episode(lead_id, row, team, rule, due, episode_weeks[e], tuple(priorities[a:b]),
                                    tuple(overdue[a:b])))
        personas, target_account, target_lead = lasts[index]
        out[index] = LeadWeeks(lead_id, row, lead.fields, one.first, stages[low:high], excluded_all[low:high],
                               entries_all[entry_bounds[k]:entry_bounds[k + 1]], episodes, personas=personas,
                               target_account=target_account, target_lead=target_lead, max_stage=tops[k],
                               events_in_weeks=counts[low:high])
    return out


def _climb_stages(cp: CompiledPlaybook, kernel: Any, frames: Any, chunk: Sequence[_Placed],
                  answers: dict[int, Weekly], ends_us: Sequence[int]) -> dict[int, dict[int, int]]:
    """Per lead, its stage at every event instant of the weeks that end with it higher
    (what :func:`_rises` replays), from totals like the weeks; a lead missing here is
    decided the slow way."""
    who: list[int] = []
    instants: list[int] = []
    counts: list[int] = []
    mine: dict[int, list[int]] = {}
    for index, (weekly_, _) in answers.items():
        placed = chunk[index]
        times = placed.times
        uptos = placed.uptos
        previous = -1
        own: list[int] = []
        earlier = bisect_right(times, ends_us[placed.first] - _WEEK_US)  # before its first week
        for offset, (stage, _, _) in enumerate(weekly_):
            if stage > previous:
                before = uptos[offset - 1] if offset else earlier
                upto = uptos[offset]
                # each distinct instant of the week (times are sorted), with how many events
                # it sees: its last event's position + 1 (a week end sees all of an instant's)
                for position in range(before, upto):
                    if position + 1 == upto or times[position + 1] != times[position]:
                        own.append(times[position])
                        counts.append(position + 1)
            previous = stage
        mine[index] = own
        who += [index] * len(own)
        instants += own
    decided = _decide_frames(kernel, frames, chunk, list(mine), [len(own) for own in mine.values()], who,
                             instants, counts)
    if decided is None:
        return {}
    out: dict[int, dict[int, int]] = {}
    for (index, own), got in zip(mine.items(), decided, strict=True):
        if got is not None:
            out[index] = {us: stage for us, (stage, _, _) in zip(own, got[0], strict=True)}
    return out


def _decide_frames(kernel: Any, frames: Any, chunk: Sequence[_Placed], leads: Sequence[int],
                   sizes: Sequence[int], who: list[int], instants: list[int], counts: list[int]
                   ) -> list[Any] | None:
    """Each of ``leads`` (positions in the chunk; ``sizes[k]`` frames each, in ``who``
    order) decided at its frames' instants, as :meth:`Kernel.decide_instants` answers
    (the generated loop, one call a lead); None where the frames have no totals. (The
    leads numpy decides, :func:`_vector_weeks`, never come here.)"""
    columns = frames.columns(who, instants, counts)
    if columns is None:
        return None
    out: list[Any] = []
    position = 0
    for index, size in zip(leads, sizes, strict=True):
        end = position + size
        sums = list(zip(*(column[position:end].tolist() for column in columns), strict=True))
        out.append(kernel.decide_instants(chunk[index].lead.fields, instants[position:end], sums))
        position = end
    return out


def chunk_decisions(cp: CompiledPlaybook, chunk: Sequence[_Placed], ends: Sequence[datetime]
                    ) -> tuple[list[list[WeekAnswer]], list[Exception | None]]:
    """Each lead's decision at each week end from its first week on (and the error of a
    lead whose decision raised), week by week: one instant at a time, as the kernel
    caches it. The kernel decides from each week's totals (engine.measure.week_sums)
    where it has them, ``decide_for_row`` on the lead's events up to the end elsewhere;
    either way only what the funnel reads is kept (:mod:`engine.measure.week_answer`)."""
    from engine.measure.week_sums import prepare_weeks

    prepared = prepare_weeks(cp, [p.events for p in chunk], [p.uptos for p in chunk],
                             [p.first for p in chunk], ends)
    usable = [p.events.ids is None or not _repeats(p.events.ids) for p in chunk]
    kernel = week_kernel(cp) if prepared is not None else None
    decisions: list[list[WeekAnswer]] = [[] for _ in chunk]
    failed: list[Exception | None] = [None] * len(chunk)
    for week, end in enumerate(ends):
        for index, placed in enumerate(chunk):
            if placed.first > week or failed[index] is not None:
                continue
            lead = placed.lead
            try:
                decision = None
                given = prepared[index][week] if prepared is not None and usable[index] else None
                if given is not None and kernel is not None:
                    # the kernel decides from the totals alone; None: it wants the events
                    sums, points, key = given
                    if sums is not None:
                        decision = kernel.decide_totals(lead.fields, sums, key, end, lead.lead_id)
                    else:
                        columns = _first(placed.events, len(points or ()))
                        decision = kernel.decide(lead.fields, EventColumns(
                            columns.at_us, columns.types, columns.fields, None, columns.seqs, points, key,
                            None), end, lead.lead_id)
                if decision is None:
                    upto = placed.uptos[week - placed.first]
                    decision = WeekAnswer.of(decide_for_row(cp, lead.fields, _first(placed.events, upto),
                                                            end, lead_id=lead.lead_id))
                decisions[index].append(decision)
            except Exception as error:  # one lead's failure must not lose the run
                failed[index] = error
    return decisions, failed


def place(lead: LeadRecord, found: Sequence[Event], ends_us: Sequence[int]) -> _Placed | int:
    """The lead with its events in time order and its first week; or why it has no week:
    0 (no event), 1 (its first event is after the last week)."""
    events = _by_time(found)
    times = events.at_us
    if not times:
        return 0
    if times[0] > ends_us[-1]:
        return 1
    first = bisect_right(ends_us, times[0] - 1)  # the week whose end is at or after it
    return _Placed(lead, events, first, [bisect_right(times, end) for end in ends_us[first:]])


def _repeats(ids: Sequence[str | None]) -> bool:
    """Whether an event id occurs twice (decide keeps the earliest: it decides such a lead)."""
    present = [i for i in ids if i is not None]
    return len(set(present)) != len(present)


def _by_time(events: Sequence[Event]) -> EventColumns:
    """The lead's events as columns in time order (input order among equal times), so the
    history up to a week's end is a prefix: the decision loops over no later event."""
    columns = EventColumns.from_events(events)
    at = columns.at_us
    ordered = sorted(at)  # (in C, and linear on a run already in order)
    if ordered == at:
        return columns
    return _reordered(columns, sorted(range(len(at)), key=at.__getitem__), ordered)


def _reordered(columns: EventColumns, order: Sequence[int] | None, times: list[int]) -> EventColumns:
    """``columns`` with their rows in ``order`` (two or more; None: as they are), whose
    instants are ``times``."""
    if order is None:
        return columns
    take = itemgetter(*order)
    ids = columns.ids
    return EventColumns(times, list(take(columns.types)),
                        {name: list(take(values)) for name, values in columns.fields.items()},
                        list(take(ids)) if ids is not None else None, list(take(columns.seqs)))


def _first(events: EventColumns, count: int) -> EventColumns:
    """The first ``count`` events (all of them: the same object)."""
    if count >= len(events.at_us):
        return events
    ids = events.ids
    return EventColumns(events.at_us[:count], events.types[:count],
                        {name: values[:count] for name, values in events.fields.items()},
                        ids[:count] if ids is not None else None, events.seqs[:count])


#: A lead's decision at one week end as the funnel reads it: (stage index, exclusion, handoff);
#: and a lead's weeks: those, and the last one's (personas, target_account, target_lead).
Compact = tuple[int, "str | None", "Handoff | None"]
Weekly = tuple[list[Compact], tuple[tuple[str, ...], bool, bool]]


def _compact(cp: CompiledPlaybook, answers: Sequence[WeekAnswer]) -> Weekly:
    """Full answers as :meth:`Kernel.decide_instants` gives them (week-by-week path)."""
    index = {s.rule.id: i for i, s in enumerate(cp.stages)}
    last = answers[-1]
    return ([(index[a.stage], a.excluded, a.handoff) for a in answers],
            (last.personas, last.target_account, last.target_lead))


def _lead_weeks(cp: CompiledPlaybook, lead: LeadRecord, events: EventColumns, times: list[int],
                first: int, ends: Sequence[datetime], ends_us: Sequence[int],
                weekly_: Weekly,
                stages_at: dict[int, int] | None = None, uptos: Sequence[int] | None = None) -> LeadWeeks:
    """The lead's weeks summed up from its decision at each week end from ``first`` on
    (``weekly_``: those and the last one's personas and targets); ``uptos``: how many
    of its events each of those ends sees, when known."""
    decisions, (personas, target_account, target_lead) = weekly_
    if uptos is None:
        uptos = [bisect_right(times, end) for end in ends_us[first:]]
    # (per-week columns in one pass each, the rest only where something changes:
    # this runs for every lead at every week)
    stages = [stage for stage, _, _ in decisions]
    excluded = [exclusion is not None for _, exclusion, _ in decisions]
    before = bisect_right(times, ends_us[first] - _WEEK_US)  # events before the lead's first week
    starts = [before, *uptos[:-1]]
    counts = [upto - start for start, upto in zip(starts, uptos, strict=True)]
    entries: list[tuple[int, int, datetime]] = []
    previous_stage = -1
    for offset, stage in enumerate(stages):
        if stage == previous_stage:
            continue
        week = first + offset
        if stage > previous_stage:
            entries.extend(_rises(cp, lead, events, times[starts[offset]:uptos[offset]], previous_stage,
                                  week, ends[week], stages_at))
            if entries[-1][1] != stage if entries else True:
                entries.append((week, stage, ends[week]))  # rose with time alone (a window, decay)
        else:
            entries.append((week, stage, ends[week]))
        previous_stage = stage
    episodes: list[Episode] = []
    open_key: tuple[str, str, str | None] | None = None
    open_start = 0
    priorities: list[float | None] = []
    overdue: list[bool] = []
    last: Handoff | None = None
    for week, (_, _, handoff) in enumerate(decisions, first):
        if handoff is None:
            if open_key is not None:
                episodes.append(Episode(lead.lead_id, lead.row, *open_key, open_start, tuple(priorities),
                                        tuple(overdue)))
                open_key = None
            last = None
            continue
        if handoff is not last:  # (a handoff built once for the lead is the same object)
            key = (handoff.to, handoff.rule, handoff.due)
            if key != open_key:
                if open_key is not None:
                    episodes.append(Episode(lead.lead_id, lead.row, *open_key, open_start,
                                            tuple(priorities), tuple(overdue)))
                open_key, open_start, priorities, overdue = key, week, [], []
            last = handoff
        priorities.append(handoff.priority)
        overdue.append(handoff.overdue_since is not None)
    if open_key is not None:
        episodes.append(Episode(lead.lead_id, lead.row, *open_key, open_start, tuple(priorities),
                                tuple(overdue)))
    return LeadWeeks(
        lead.lead_id, lead.row, lead.fields, first, stages, excluded, entries, episodes,
        personas=personas, target_account=target_account,
        target_lead=target_lead, max_stage=max(stages), events_in_weeks=counts,
    )


def _rises(cp: CompiledPlaybook, lead: LeadRecord, events: EventColumns, times: list[int], stage: int,
           week: int, end: datetime, stages_at: dict[int, int] | None = None
           ) -> Iterator[tuple[int, int, datetime]]:
    """The stages a lead climbed to during a week, each at the event that lifted it.

    Only weeks whose end finds the lead higher are replayed, event by event, so a lead
    that went from ``lead`` to ``won`` within one week still shows when it was an MQL.
    ``stages_at``: the lead's stage at each of those instants, already decided
    (:func:`_climb_stages`).
    """
    from engine.kernel import to_datetime

    top = len(cp.stages) - 1
    if stages_at is not None:  # (times are in order: each distinct one once, in order)
        for us in dict.fromkeys(times):
            if stage >= top:
                return
            found = stages_at[us]
            if found > stage:
                yield week, found, to_datetime(us).astimezone(end.tzinfo)
                stage = found
        return
    kernel = week_kernel(cp)
    for us in sorted(set(times)):
        if stage >= top:
            return  # nothing left to climb to: the rest of the week cannot add an entry
        at = to_datetime(us).astimezone(end.tzinfo)
        history = _first(events, bisect_right(events.at_us, us))
        decision = kernel.decide(lead.fields, history, at, lead.lead_id) if kernel is not None else None
        if decision is None:  # the kernel declines (repeated ids, a mistyped field): decide does it
            decision = decide_for_row(cp, lead.fields, history, at, lead_id=lead.lead_id)
        found = cp.stage_index(decision.stage)
        if found > stage:
            yield week, found, at
            stage = found
