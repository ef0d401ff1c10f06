"""Work queues: each team's handoffs, best first, cut at the team's weekly capacity.

Seed 002: inside-sales time is the scarce resource, so a call list must be prioritised
and no longer than the team can work. Order: priority descending (no priority last),
due time ascending (no due time last), then lead id, then input row — a total order,
so two runs give the same queue.

Memory stays bounded however large the export: a team with a capacity keeps a heap of
at most that many entries while the export streams past; a team *without* one has its
handoffs written to a temporary SQLite file (:class:`DiskQueue`) and read back sorted;
the overflow of a capped team, when asked for, goes there too as entries fall out of the
heap. Without ``--queues`` an unlimited team keeps nothing, only counts; a capped team
always keeps its heap (at most ``capacity`` entries), since which leads it holds at the
end is where every handed-off lead stands this week (the decisions' ``queue`` column).

Beyond capacity a team's ``overflow:`` applies, as ``engine funnel`` plays it for each
week (:mod:`engine.measure.capacity`): ``carry_over`` (the default) — the lead waits in
this team's queue for next week; ``route`` — it goes to the team named by ``to`` at once
and competes there for that team's capacity, in the same queue order. An entry leaves a
capped team's heap only when ``capacity`` better ones are known, so it can never come
back: it is passed on the moment it falls out.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.decision import Decision, rank_score
from engine.model import Playbook

QUEUE_COLUMNS = (
    "rank", "lead_id", "priority", "due", "handoff_rule", "stage", "fit", "engagement", "surge",
    "accepted", "overdue_since", "overflow_from",
)
#: Marketing's nurture list (docs/handoffs.md): each recycled lead and the content to send next.
NURTURE_COLUMNS = (
    "rank", "lead_id", "nurture_track", "stage", "next_content", "recycle_reason", "recycle_until", "score",
)
#: Where a handed-off lead stands in its team's week (the decisions' ``queue`` column).
QUEUED, CARRIED_OVER, OVERFLOW = "queued", "carried_over", "overflow"

_NO_DUE = float("inf")

#: (-priority, due timestamp, lead id, row): smaller is called first.
SortKey = tuple[float, float, str, int]


def sort_key(decision: Decision, row: int) -> SortKey:
    """Where a handed-off decision goes in its team's queue (see the module docstring)."""
    handoff = decision.handoff
    assert handoff is not None
    return key_of(handoff.priority, handoff.due, decision.lead_id, row)


def key_of(priority: float | None, due: str | None, lead_id: str, row: int) -> SortKey:
    """:func:`sort_key` from a decision row's cells (the SQL path has no Decision)."""
    due_ts = datetime.fromisoformat(due).timestamp() if due else _NO_DUE
    return (-(priority if priority is not None else float("-inf")), due_ts, lead_id, row)


class _Worst:
    """A heap entry ordered so the heap's top is the worst kept entry (max-heap by key)."""

    __slots__ = ("key", "row")

    def __init__(self, key: SortKey, row: tuple[Any, ...]) -> None:
        self.key, self.row = key, row

    def __lt__(self, other: _Worst) -> bool:
        return self.key > other.key


class DiskQueue:
    """Handoffs kept on disk (unlimited teams, overflow), read back in queue order."""

    def __init__(self, folder: str | None = None) -> None:
        handle, self.path = tempfile.mkstemp(prefix=".engine-queue-", suffix=".sqlite", dir=folder)
        os.close(handle)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE o (team TEXT, k1 REAL, k2 REAL, k3 TEXT, k4 INTEGER, data TEXT)")
        self._pending: list[tuple[Any, ...]] = []

    def add(self, team: str, entry: _Worst) -> None:
        self._pending.append((team, *entry.key, json.dumps(entry.row)))
        if len(self._pending) >= 5000:
            self._flush()

    def _flush(self) -> None:
        self.db.executemany("INSERT INTO o VALUES (?, ?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def rows(self, team: str, first_rank: int,
             columns: tuple[str, ...] = QUEUE_COLUMNS) -> Iterator[dict[str, Any]]:
        """The team's entries, best first, ranked from ``first_rank``."""
        self._flush()
        cursor = self.db.execute("SELECT data FROM o WHERE team = ? ORDER BY k1, k2, k3, k4", (team,))
        for rank, (data,) in enumerate(cursor, start=first_rank):
            yield dict(zip(columns, (rank, *json.loads(data)), strict=True))

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@dataclass
class TeamQueue:
    """One team's queue while the export streams: the best ``capacity`` handoffs so far.

    ``keep=False`` (no queue files asked for) keeps nothing of an unlimited team, only
    counts. ``disk`` holds an unlimited team's entries, and a capped team's overflow when
    that is to be written. ``next`` is the team this one's overflow is routed to (its
    ``overflow: {then: route, to: …}``); without it, overflow is carried over.
    """

    team: str
    capacity: int | None
    keep: bool = True
    disk: DiskQueue | None = None
    handoffs: int = 0
    next: TeamQueue | None = None
    #: Entries routed here from other teams' overflow this week.
    overflow_in: int = 0
    overdue: int = 0
    accepted: int = 0
    _heap: list[_Worst] = field(default_factory=list)
    _held: frozenset[int] | None = None

    def offer(self, decision: Decision, row: int) -> None:
        """Count a handoff to this team and keep it if it is among the best so far."""
        self.handoffs += 1
        handoff = decision.handoff
        assert handoff is not None
        self.overdue += handoff.overdue_since is not None
        self.accepted += handoff.accepted
        if self.capacity is None and not self.keep:
            return
        self._take(_Worst(
            sort_key(decision, row),
            (decision.lead_id, handoff.priority, handoff.due or "", handoff.rule, decision.stage,
             decision.fit, decision.engagement, decision.surge, handoff.accepted,
             handoff.overdue_since or "", ""),
        ))

    def _take(self, entry: _Worst) -> None:
        if self.capacity is None:
            if self.disk is not None:
                self.disk.add(self.team, entry)
            return
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, entry)
            return
        if self._heap and entry.key < self._heap[0].key:
            entry = heapq.heapreplace(self._heap, entry)  # the evicted one overflows
        # Out of the heap for good: `capacity` better entries are known.
        if self.disk is not None:
            self.disk.add(self.team, entry)
        if self.next is not None:
            self.next.receive(entry, self.team)

    def receive(self, entry: _Worst, origin: str) -> None:
        """Take an entry another team's overflow routes here (it keeps its queue key)."""
        self.overflow_in += 1
        if entry.row[-1] == "":  # the team it was handed to, through any chain
            entry = _Worst(entry.key, (*entry.row[:-1], origin))
        self._take(entry)

    def put(self, key: SortKey, values: tuple[Any, ...], beyond: bool) -> None:
        """Keep an entry whose place is already known (the SQL path computes it, and counts)."""
        entry = _Worst(key, values)
        if beyond or self.capacity is None:
            if self.disk is not None:
                self.disk.add(self.team, entry)
        else:
            heapq.heappush(self._heap, entry)

    def holds(self, row: int) -> bool:
        """Whether the team works the handoff at input ``row`` this week (once all are offered)."""
        if self.capacity is None:
            return True
        if self._held is None:
            self._held = frozenset(entry.key[3] for entry in self._heap)
        return row in self._held

    @property
    def queued(self) -> int:
        """Handoffs the team works this week: its own and those routed in, up to capacity."""
        total = self.handoffs + self.overflow_in
        return total if self.capacity is None else min(total, self.capacity)

    @property
    def overflow(self) -> int:
        """Handoffs beyond capacity: the team cannot call them this week."""
        return self.handoffs + self.overflow_in - self.queued

    @property
    def carried_over(self) -> int:
        """Handoffs beyond capacity that wait in this team's queue for next week."""
        return self.overflow if self.next is None else 0

    @property
    def overflow_out(self) -> int:
        """Handoffs beyond capacity routed on to ``next`` this week."""
        return self.overflow if self.next is not None else 0

    def rows(self) -> Iterator[dict[str, Any]]:
        """The queue, best first, as output rows with a 1-based rank."""
        if self.capacity is None and self.disk is not None:
            yield from self.disk.rows(self.team, 1)
            return
        for rank, entry in enumerate(sorted(self._heap, key=lambda e: e.key), start=1):
            yield dict(zip(QUEUE_COLUMNS, (rank, *entry.row), strict=True))

    def overflow_rows(self) -> Iterator[dict[str, Any]]:
        """A capped team's handoffs beyond capacity, ranked on after the queue (needs ``disk``)."""
        assert self.capacity is not None and self.disk is not None
        return self.disk.rows(self.team, self.queued + 1)


def place(queues: Mapping[str, TeamQueue], team: str, row: int) -> tuple[str, str]:
    """Where the handoff at input ``row`` to ``team`` stands this week: (status, team holding it).

    ``queued``: its team works it. ``overflow``: beyond that team's capacity, routed to the
    team returned, which works it this week. ``carried_over``: it waits, for next week, in
    the returned team's queue (its own, or the one its overflow was routed to).
    """
    queue = queues[team]
    if queue.holds(row):
        return QUEUED, team
    while queue.next is not None:
        queue = queue.next
        if queue.holds(row):
            return OVERFLOW, queue.team
    return CARRIED_OVER, queue.team


def route_of(playbook: Playbook, team: str) -> str | None:
    """The team ``team``'s overflow is routed to, if its ``overflow:`` says ``route``."""
    spec = playbook.teams.get(team)
    if spec is None or spec.overflow is None or spec.overflow.then != "route":
        return None
    return spec.overflow.to


def team_order(playbook: Playbook, teams: Iterable[str]) -> list[str]:
    """Teams that route their overflow come before the team they route to (checks forbid cycles)."""
    pending = list(teams)
    ordered: list[str] = []
    while pending:
        for name in pending:
            feeders = [t for t in pending if t != name and route_of(playbook, t) == name]
            if not feeders:
                ordered.append(name)
                pending.remove(name)
                break
        else:  # a cycle (validate refuses it): keep declaration order
            ordered.extend(pending)
            break
    return ordered


@dataclass
class NurtureQueue:
    """Marketing's nurture list: every lead with a nurture track, best score first, then lead id.

    Unbounded (every recycled lead is marketing's), so kept on disk when files are asked for.
    ``team``: the first stage's owner, whose list it is (``TEAM.nurture.csv``).
    """

    team: str
    keep: bool = True
    disk: DiskQueue | None = None
    tracks: dict[str, int] = field(default_factory=dict)

    def offer(self, decision: Decision, row: int) -> None:
        """Count a nurtured lead under its track and keep its line if files are written."""
        nurture = decision.nurture
        assert nurture is not None
        self.tracks[nurture.track] = self.tracks.get(nurture.track, 0) + 1
        if not self.keep or self.disk is None:
            return
        recycle = decision.recycle if decision.recycle is not None and decision.recycle.active else None
        score = rank_score(decision.excluded, decision.fit, decision.engagement, None)
        line = (decision.lead_id, nurture.track, decision.stage, nurture.next_content or "",
                recycle.reason if recycle is not None else "", recycle.until if recycle is not None else "",
                score)
        self.disk.add(f"{self.team}.nurture", _Worst((-score, 0.0, decision.lead_id, row), line))

    def rows(self) -> Iterator[dict[str, Any]]:
        """The list, best first, ranked from 1."""
        if self.disk is None:
            return iter(())
        return self.disk.rows(f"{self.team}.nurture", 1, NURTURE_COLUMNS)
