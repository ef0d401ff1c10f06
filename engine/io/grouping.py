"""Pair each lead with its events in bounded memory, in the leads file's order.

Two strategies, chosen automatically when both inputs can be read twice:

* merge — when lead ids ascend strictly in the leads file and never descend in the
  events file (what ``bench/gen.py`` writes, and what ``ORDER BY lead_id`` exports
  give): a merge join holding one lead's events at a time; an event whose id falls
  between two leads is an orphan, known at once.
* spill — otherwise: events go to a temporary SQLite index on disk, looked up per lead.

One-shot iterators are spilled unless the caller vouches for the order with
``events_sorted=True``, in which case a violation is an error, never a wrong answer.

The merge of an :class:`EventsFile` that Arrow can read (CSV, Parquet) runs over
blocks of columns (:mod:`engine.io.arrow_events`, :mod:`engine.io.block_merge`) and
yields each lead's events as :class:`~engine.events.EventColumns`; the pre-scan reads
the id columns in Arrow too. Leads, rejects and errors are the row path's, in the same
order (tests/test_io_arrow_differential.py). The spill stays row by row.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator

from engine.events import Event, EventColumns
from engine.io.arrow_events import event_blocks
from engine.io.block_merge import PrepareBlock, ids_ascending, merge_blocks, next_ascending
from engine.io.errors import Reject, RejectSink, UnsortedInput
from engine.io.files import EventsFile, LeadsFile
from engine.io.records import LeadEvent, LeadRecord

_ORPHAN = "event for a lead id that is not in the leads file"
_DUPLICATE = "lead id appears earlier in the leads file"
_BATCH = 5000


def iter_leads_with_events(
    leads: Iterable[LeadRecord],
    events: Iterable[LeadEvent],
    *,
    on_reject: RejectSink,
    events_sorted: bool | None = None,
    spill_dir: str | None = None,
    prepare: PrepareBlock | None = None,
) -> Iterator[tuple[LeadRecord, list[Event] | EventColumns]]:
    """Yield ``(lead, events)`` for every lead, in the leads' order.

    Each sequence holds the lead's synthesized activity followed by its file events in
    file order. Merged from an events file the columnar path reads, a lead without
    activity gets an :class:`~engine.events.EventColumns` (equal, event for event, to
    the list the row path gives). Orphan events and repeated lead ids go to ``on_reject``.
    ``prepare`` sees each block of such a merge first (the kernel adds decayed points).
    """
    if events_sorted is None:
        events_sorted = _both_ascending(leads, events)
    if events_sorted:
        blocks = event_blocks(events) if isinstance(events, EventsFile) else None
        if blocks is not None:
            return merge_blocks(leads, blocks, on_reject, prepare)
        return _merge(leads, events, on_reject)
    return _spill(leads, events, on_reject, spill_dir)


def _replayable(items: Iterable[object]) -> bool:
    return iter(items) is not items


def _both_ascending(leads: Iterable[LeadRecord], events: Iterable[LeadEvent]) -> bool:
    """A read-only pre-pass: can the merge join be used? Only for re-iterable inputs."""
    if not (_replayable(leads) and _replayable(events)):
        return False
    return _ascending(leads, strict=True) and _ascending(events, strict=False)


def _ascending(items: Iterable[LeadRecord] | Iterable[LeadEvent], strict: bool) -> bool:
    """Lead ids ascend (strictly: and never repeat); in Arrow when the file allows."""
    if isinstance(items, LeadsFile | EventsFile):
        fast = ids_ascending(items, strict)
        if fast is not None:
            return fast
    previous: str | None = None
    for lead_id in _ids_of(items):
        if previous is not None and (lead_id <= previous if strict else lead_id < previous):
            return False
        previous = lead_id
    return True


def _ids_of(items: Iterable[LeadRecord] | Iterable[LeadEvent]) -> Iterator[str]:
    """Lead ids in order, cheaply when the source can list them without converting rows."""
    if isinstance(items, LeadsFile | EventsFile):
        return items.lead_ids()
    return (item.lead_id for item in items)


def _merge(
    leads: Iterable[LeadRecord], events: Iterable[LeadEvent], on_reject: RejectSink
) -> Iterator[tuple[LeadRecord, list[Event]]]:
    """The merge join: one pass over both inputs, one lead's events in memory at a time.

    The loop that takes a lead's events is the hot one (it runs once per event), so it
    is written out in place rather than through a helper taking the next event.
    """
    stream = iter(events)
    pending: LeadEvent | None = next(stream, None)
    previous_lead: str | None = None
    for lead in leads:
        lead_id = previous_lead = next_ascending(lead, previous_lead)
        while pending is not None and pending.lead_id < lead_id:
            _orphan(pending, on_reject)
            pending = _following(stream, pending.lead_id)
        found = list(lead.activity)
        while pending is not None and pending.lead_id == lead_id:
            found.append(pending.event)
            pending = next(stream, None)
            if pending is not None and pending.lead_id < lead_id:
                _unsorted(pending)
        yield lead, found
    while pending is not None:
        _orphan(pending, on_reject)
        pending = _following(stream, pending.lead_id)


def _following(stream: Iterator[LeadEvent], last: str) -> LeadEvent | None:
    """The next event, which must not belong to a lead id below ``last``."""
    item = next(stream, None)
    if item is not None and item.lead_id < last:
        _unsorted(item)
    return item


def _unsorted(item: LeadEvent) -> None:
    raise UnsortedInput(
        "events are not sorted by lead id, as was promised",
        file=item.file,
        line=item.row,
        hint="drop --events-sorted; unsorted events are indexed on disk instead",
    )


def _orphan(item: LeadEvent, on_reject: RejectSink) -> None:
    on_reject(Reject(item.file, item.row, "lead_id", item.lead_id, _ORPHAN))


def _spill(
    leads: Iterable[LeadRecord],
    events: Iterable[LeadEvent],
    on_reject: RejectSink,
    spill_dir: str | None,
) -> Iterator[tuple[LeadRecord, list[Event]]]:
    handle, db_path = tempfile.mkstemp(prefix=".engine-events-", suffix=".sqlite", dir=spill_dir)
    os.close(handle)
    db = sqlite3.connect(db_path)
    leads_file = str(leads.path) if isinstance(leads, LeadsFile) else ""
    try:
        _index_events(db, events)
        seen = db.cursor()
        for lead in leads:
            try:
                seen.execute("INSERT INTO lead(id) VALUES (?)", (lead.lead_id,))
            except sqlite3.IntegrityError:
                on_reject(Reject(leads_file, lead.row, "lead_id", lead.lead_id, _DUPLICATE))
                continue
            rows = db.execute("SELECT blob FROM ev WHERE lead_id = ? ORDER BY seq", (lead.lead_id,))
            yield lead, [*lead.activity, *(_load(blob) for (blob,) in rows)]
        orphans = db.execute(
            "SELECT lead_id, file, row FROM ev WHERE lead_id NOT IN (SELECT id FROM lead) ORDER BY seq"
        )
        for lead_id, file, row in orphans:
            on_reject(Reject(file, row, "lead_id", lead_id, _ORPHAN))
    finally:
        db.close()
        os.unlink(db_path)


def _index_events(db: sqlite3.Connection, events: Iterable[LeadEvent]) -> None:
    """Write the events to disk in batches; the temporary index never needs durability."""
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("CREATE TABLE ev (seq INTEGER PRIMARY KEY, lead_id TEXT, file TEXT, row INTEGER, blob BLOB)")
    db.execute("CREATE TABLE lead (id TEXT PRIMARY KEY)")
    stream = iter(events)
    position = 0
    while True:
        batch = []
        for item in stream:
            batch.append((position, item.lead_id, item.file, item.row, _dump(item.event)))
            position += 1
            if len(batch) >= _BATCH:
                break
        if not batch:
            break
        db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", batch)
    db.execute("CREATE INDEX ev_lead ON ev(lead_id, seq)")
    db.commit()


def _dump(event: Event) -> bytes:
    # A plain tuple pickles several times faster than the slotted frozen dataclass.
    state = (event.type, event.at, event.fields, event.id, event.seq)
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def _load(blob: bytes) -> Event:
    kind, at, fields, event_id, seq = pickle.loads(blob)
    return Event(kind, at, fields, event_id, seq)


__all__ = ["iter_leads_with_events"]
