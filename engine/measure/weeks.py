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
    chunk: list[_Placed] = []
    for lead, found in pairs:
        placed = place(lead, found, ends_us)
        if placed == 0:
            unplaced.no_events += 1
            continue
        if placed == 1:
            unplaced.after_period += 1
            continue
        assert isinstance(placed, _Placed)
        chunk.append(placed)
        if len(chunk) >= CHUNK:
            yield from _decide_chunk(cp, chunk, weeks.ends, ends_us, unplaced, on_failure)
            chunk = []
    yield from _decide_chunk(cp, chunk, weeks.ends, ends_us, unplaced, on_failure)


@dataclass(slots=True)
class _Placed:
    """A lead with its events in time order, its first week, and how many events each
    week end sees (from its first week on)."""

    lead: LeadRecord
    events: EventColumns
    first: int
    uptos: list[int]


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
    (:mod:`engine.kernel.frames`) and decided in one kernel call a lead
    (:meth:`Kernel.decide_instants`: its fit and lead-field tests once); the weeks it
    climbed, at each of their event instants the same way. None for a lead this cannot
    decide (repeated event ids, a mistyped field: :func:`chunk_decisions` does), or all
    of them when the playbook decides from events, not totals."""
    from engine.kernel.frames import Frames

    out: list[LeadWeeks | Exception | None] = [None] * len(chunk)
    kernel = week_kernel(cp)
    frames = Frames.of(kernel, [p.events for p in chunk]) if kernel is not None else None
    if kernel is None or frames is None:
        return out
    usable = [i for i, p in enumerate(chunk) if p.events.ids is None or not _repeats(p.events.ids)]
    who: list[int] = []
    instants: list[int] = []
    counts: list[int] = []
    for index in usable:
        placed = chunk[index]
        who += [index] * len(placed.uptos)
        instants += ends_us[placed.first:]
        counts += placed.uptos
    sums = frames.sums(who, instants, counts)
    if sums is None:
        return out
    answers: dict[int, Weekly] = {}
    position = 0
    for index in usable:
        placed = chunk[index]
        size = len(placed.uptos)
        got = kernel.decide_instants(placed.lead.fields, ends_us[placed.first:],
                                     sums[position:position + size])
        position += size
        if got is not None and got[1] is not None:
            answers[index] = (got[0], got[1])
    climbs = _climb_stages(cp, kernel, frames, chunk, answers, ends_us)
    for index, weekly_ in answers.items():
        placed = chunk[index]
        stages_at = climbs.get(index)
        if stages_at is None:
            continue
        try:
            out[index] = _lead_weeks(cp, placed.lead, placed.events, placed.events.at_us, placed.first, ends,
                                     ends_us, weekly_, stages_at, placed.uptos)
        except Exception:  # left to the week-by-week path, which reports it
            out[index] = None
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
        times = placed.events.at_us
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
    sums = frames.sums(who, instants, counts)
    if sums is None:
        return {}
    out: dict[int, dict[int, int]] = {}
    position = 0
    for index, own in mine.items():
        placed = chunk[index]
        got = kernel.decide_instants(placed.lead.fields, own, sums[position:position + len(own)])
        position += len(own)
        if got is not None:
            out[index] = {us: stage for us, (stage, _, _) in zip(own, got[0], strict=True)}
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
    take = itemgetter(*sorted(range(len(at)), key=at.__getitem__))  # (unordered: 2 events or more)
    ids = columns.ids
    return EventColumns(ordered, list(take(columns.types)),
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
