"""The event: one activity in a lead's history, the unit every aggregate reads.

Kept apart from the readers and the evaluator so both depend on it and not on
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
