"""Work queues: each team's handoffs, best first, cut at the team's weekly capacity.

Seed 002: inside-sales time is the scarce resource, so a call list must be prioritised
and no longer than the team can work. Order: priority descending (no priority last),
due time ascending (no due time last), then lead id, then input row — a total order,
so two runs give the same queue.

Memory is bounded by capacity: a team with a capacity keeps a heap of at most that
many entries while the export streams past. A team *without* a capacity keeps every
handoff (about 150 bytes each) and sorts them at the end — give the team a capacity in
the playbook to bound it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.evaluate import Decision

QUEUE_COLUMNS = (
    "rank", "lead_id", "priority", "due", "handoff_rule", "stage", "fit", "engagement", "surge",
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


@dataclass
class TeamQueue:
    """One team's queue while the export streams: the best ``capacity`` handoffs so far."""

    team: str
    capacity: int | None
    handoffs: int = 0
    _heap: list[_Worst] = field(default_factory=list)

    def offer(self, decision: Decision, row: int) -> None:
        """Count a handoff to this team and keep it if it is among the best so far."""
        self.handoffs += 1
        if self.capacity == 0:
            return
        handoff = decision.handoff
        assert handoff is not None
        entry = _Worst(
            sort_key(decision, row),
            (decision.lead_id, handoff.priority, handoff.due or "", handoff.rule, decision.stage,
             decision.fit, decision.engagement, decision.surge),
        )
        if self.capacity is None or len(self._heap) < self.capacity:
            heapq.heappush(self._heap, entry)
        elif entry.key < self._heap[0].key:
            heapq.heapreplace(self._heap, entry)

    @property
    def queued(self) -> int:
        """Handoffs that fit in the week's capacity."""
        return len(self._heap)

    @property
    def overflow(self) -> int:
        """Handoffs beyond capacity: the team cannot call them this week."""
        return self.handoffs - self.queued

    def rows(self) -> Iterator[dict[str, Any]]:
        """The queue, best first, as output rows with a 1-based rank."""
        for rank, entry in enumerate(sorted(self._heap, key=lambda e: e.key), start=1):
            yield dict(zip(QUEUE_COLUMNS, (rank, *entry.row), strict=True))
