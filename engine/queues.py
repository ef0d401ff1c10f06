"""Work queues: each team's handoffs, best first, cut at the team's weekly capacity.

Seed 002: inside-sales time is the scarce resource, so a call list must be prioritised
and no longer than the team can work. Order: priority descending (no priority last),
due time ascending (no due time last), then lead id, then input row — a total order,
so two runs give the same queue.

Memory stays bounded however large the export: a team with a capacity keeps a heap of
at most that many entries while the export streams past; a team *without* one has its
handoffs written to a temporary SQLite file (:class:`DiskQueue`) and read back sorted;
the overflow of a capped team, when asked for, goes there too as entries fall out of the
heap. Without ``--queues`` nothing is kept at all, only counted.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.decision import Decision, rank_score

QUEUE_COLUMNS = (
    "rank", "lead_id", "priority", "due", "handoff_rule", "stage", "fit", "engagement", "surge",
    "accepted", "overdue_since",
)
#: Marketing's nurture list (docs/handoffs.md): each recycled lead and the content to send next.
NURTURE_COLUMNS = (
    "rank", "lead_id", "nurture_track", "stage", "next_content", "recycle_reason", "recycle_until", "score",
)

_NO_DUE = float("inf")

#: (-priority, due timestamp, lead id, row): smaller is called first.
SortKey = tuple[float, float, str, int]


def sort_key(decision: Decision, row: int) -> SortKey:
    """Where a handed-off decision goes in its team's queue (see the module docstring)."""
    handoff = decision.handoff
    assert handoff is not None
    priority = handoff.priority if handoff.priority is not None else float("-inf")
    due = datetime.fromisoformat(handoff.due).timestamp() if handoff.due else _NO_DUE
    return (-priority, due, decision.lead_id, row)


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

    ``keep=False`` only counts (no queue files asked for). ``disk`` holds an unlimited
    team's entries, and a capped team's overflow when that is to be written.
    """

    team: str
    capacity: int | None
    keep: bool = True
    disk: DiskQueue | None = None
    handoffs: int = 0
    overdue: int = 0
    accepted: int = 0
    _heap: list[_Worst] = field(default_factory=list)

    def offer(self, decision: Decision, row: int) -> None:
        """Count a handoff to this team and keep it if it is among the best so far."""
        self.handoffs += 1
        handoff = decision.handoff
        assert handoff is not None
        self.overdue += handoff.overdue_since is not None
        self.accepted += handoff.accepted
        if not self.keep:
            return
        entry = _Worst(
            sort_key(decision, row),
            (decision.lead_id, handoff.priority, handoff.due or "", handoff.rule, decision.stage,
             decision.fit, decision.engagement, decision.surge, handoff.accepted,
             handoff.overdue_since or ""),
        )
        if self.capacity is None and self.disk is not None:
            self.disk.add(self.team, entry)
            return
        if self.capacity is None or len(self._heap) < self.capacity:
            heapq.heappush(self._heap, entry)
            return
        if self._heap and entry.key < self._heap[0].key:
            entry = heapq.heapreplace(self._heap, entry)  # the evicted one overflows
        if self.disk is not None:
            self.disk.add(self.team, entry)

    @property
    def queued(self) -> int:
        """Handoffs that fit in the week's capacity."""
        return self.handoffs if self.capacity is None else min(self.handoffs, self.capacity)

    @property
    def overflow(self) -> int:
        """Handoffs beyond capacity: the team cannot call them this week."""
        return self.handoffs - self.queued

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
