"""The merge join over event blocks: a Python step per lead, not per event.

Same contract as :func:`engine.io.grouping._merge` (which reads one
:class:`~engine.io.records.LeadEvent` at a time): leads in file order, each with its
events; orphans rejected; an event whose lead id is below the one before it is the
"not sorted" error. Every reject — the reader's and the orphans' — is sent at the
moment the row-by-row merge would send it, so the rejects file is the same too.

Also here: the merge pre-scan (do the lead ids ascend?) over Arrow columns.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from engine.events import Event, EventColumns
from engine.io.arrow_events import EventBlock, enabled
from engine.io.errors import InputError, Reject, RejectSink, UnsortedInput
from engine.io.files import EventsFile, LeadsFile
from engine.io.pieces import file_pieces
from engine.io.records import LeadRecord

_ORPHAN = "event for a lead id that is not in the leads file"

#: One lead's consecutive events inside one block: (lead id, block, start, end).
Run = tuple[str, EventBlock, int, int]


class _Runs:
    """The runs of a block stream in order, sending each block's rejects when due."""

    def __init__(self, blocks: Iterator[EventBlock], on_reject: RejectSink) -> None:
        self.blocks, self.on_reject = blocks, on_reject
        self.block: EventBlock | None = None
        self.sent = 0  # rejects of self.block sent so far
        self.next = functools.partial(next, self._stream(), None)

    def _stream(self) -> Iterator[Run]:
        """Each run, after the rejects the row path would have sent before it.

        A block with no rejects whose ids ascend from where the last one stopped (a C
        ``sorted`` compare) hands its runs over without a Python step per run.
        """
        last: str | None = None
        for block in self.blocks:
            self.block, self.sent = block, 0
            lead_ids, starts = block.lead_ids, block.starts
            if not lead_ids:
                self.send(len(block))
                continue
            if not block.rejects and (last is None or lead_ids[0] >= last) and lead_ids == sorted(lead_ids):
                yield from zip(lead_ids, itertools.repeat(block), starts, itertools.islice(starts, 1, None))
                last = lead_ids[-1]
                continue
            for k, lead_id in enumerate(lead_ids):
                start = starts[k]
                self.send(start)
                if last is not None and lead_id < last:
                    raise UnsortedInput(
                        "events are not sorted by lead id, as was promised",
                        file=block.file,
                        line=block.rows[start],
                        hint="drop --events-sorted; unsorted events are indexed on disk instead",
                    )
                last = lead_id
                yield lead_id, block, start, starts[k + 1]
            self.send(len(block))

    def send(self, upto: int) -> None:
        """Send the current block's rejects that come before event ``upto``."""
        block = self.block
        assert block is not None
        rejects, sent = block.rejects, self.sent
        while sent < len(rejects) and rejects[sent][0] <= upto:
            self.on_reject(rejects[sent][1])
            sent += 1
        self.sent = sent

    def orphans(self, run: Run) -> None:
        """Reject a run's events as orphans, each after the reader's rejects before it."""
        lead_id, block, start, end = run
        for k in range(start, end):
            if k > start:
                self.send(k)
            self.on_reject(Reject(block.file, block.rows[k], "lead_id", lead_id, _ORPHAN))


def next_ascending(lead: LeadRecord, previous: str | None) -> str:
    """This lead's id, which a merge join needs strictly above the previous lead's."""
    if previous is not None and lead.lead_id <= previous:
        raise UnsortedInput(
            "lead ids are not in ascending order, which sorted events require",
            file=None,
            line=lead.row,
            hint="drop --events-sorted",
        )
    return lead.lead_id


#: Called on each block before its runs are handed out (it may set ``points``).
PrepareBlock = Callable[[EventBlock], None]


def merge_blocks(
    leads: Iterable[LeadRecord], blocks: Iterator[EventBlock], on_reject: RejectSink,
    prepare: PrepareBlock | None = None,
) -> Iterator[tuple[LeadRecord, list[Event] | EventColumns]]:
    """``(lead, events)`` in the leads' order; events as columns unless the lead has activity."""
    if prepare is not None:
        blocks = _prepared(blocks, prepare)
    runs = _Runs(blocks, on_reject)
    pending = runs.next()
    previous_lead: str | None = None
    for lead in leads:
        lead_id = previous_lead = next_ascending(lead, previous_lead)
        while pending is not None and pending[0] < lead_id:
            runs.orphans(pending)
            pending = runs.next()
        parts: list[Run] = []
        while pending is not None and pending[0] == lead_id:
            parts.append(pending)
            pending = runs.next()
        columns = _columns(parts)
        yield lead, ([*lead.activity, *columns] if lead.activity else columns)
    while pending is not None:
        runs.orphans(pending)
        pending = runs.next()


def _prepared(blocks: Iterator[EventBlock], prepare: PrepareBlock) -> Iterator[EventBlock]:
    for block in blocks:
        prepare(block)
        yield block


def _columns(parts: list[Run]) -> EventColumns:
    """The events of consecutive runs as one lead's columns (slices of the blocks' lists)."""
    if len(parts) == 1:
        _, block, start, end = parts[0]
        ids, points = block.ids, block.points
        return EventColumns(
            block.at_us[start:end],
            block.types[start:end],
            {name: values[start:end] for name, values in block.fields.items()},
            ids[start:end] if ids is not None else None,
            list(range(block.seq0 + start, block.seq0 + end)),
            points[start:end] if points is not None else None,
            block.points_key,
            block.sums[start] if block.sums is not None else None,
        )
    if not parts:
        return EventColumns([], [], {}, None, [])
    at_us: list[int] = []
    types: list[str] = []
    fields: dict[str, list[Any]] = {}
    ids_or_none: list[str | None] | None = [] if parts[0][1].ids is not None else None
    seqs: list[int] = []
    for _, block, start, end in parts:
        at_us += block.at_us[start:end]
        types += block.types[start:end]
        for name, values in block.fields.items():
            fields.setdefault(name, []).extend(values[start:end])
        if ids_or_none is not None and block.ids is not None:
            ids_or_none += block.ids[start:end]
        seqs += range(block.seq0 + start, block.seq0 + end)
    keys = {block.points_key for _, block, _, _ in parts}
    joined: list[int] | None = None
    if len(keys) == 1 and all(block.points is not None for _, block, _, _ in parts):
        joined = [q for _, block, start, end in parts for q in block.points[start:end]]  # type: ignore[index]
    sums: tuple[int, ...] | None = None
    if len(keys) == 1 and all(block.sums is not None for _, block, _, _ in parts):
        totals = [block.sums[start] for _, block, start, _ in parts]  # type: ignore[index]
        sums = tuple(sum(column) for column in zip(*totals, strict=True))
    key = keys.pop() if joined is not None or sums is not None else None
    return EventColumns(at_us, types, fields, ids_or_none, seqs, joined, key, sums)


def ids_ascending(items: LeadsFile | EventsFile, strict: bool) -> bool | None:
    """Whether the file's lead ids (stripped, blanks skipped) ascend — strictly: and never
    repeat — read in Arrow; None when only the row path can read the file."""
    if not enabled():
        return None
    if isinstance(items, LeadsFile):
        column = items.mapping.leads.id
    else:
        assert items.mapping.events is not None
        column = items.mapping.events.lead_id
    try:
        pieces = file_pieces(items.path, [column], items.encoding, items.delimiter, numbered=False)
    except InputError:
        return None  # the real read reports it
    if pieces is None:
        return None
    previous: str | None = None
    with contextlib.closing(pieces):  # an early answer closes the file now
        for piece in pieces:
            for lead_id, repeated in _piece_ids(piece):
                if not lead_id:
                    continue
                if previous is not None and (lead_id < previous or (strict and lead_id == previous)):
                    return False
                if strict and repeated:
                    return False
                previous = lead_id
    return True


def _piece_ids(piece: Any) -> Iterator[tuple[str, bool]]:
    """Each run of equal ids in a piece, stripped, and whether it repeats; from Arrow
    one Python string per run."""
    if piece.table is None:
        for _, values in piece.rows:
            raw = values[0]
            yield (raw.strip() if raw else ""), False
        return
    import pyarrow.compute as pc

    # A missing id (Parquet null) is a blank: skipped, and no run runs across it.
    column = pc.fill_null(piece.table.column(0).combine_chunks(), "")
    n = len(column)
    if n == 0:
        return
    if n > 1:
        starts = [0, *pc.add(pc.indices_nonzero(pc.not_equal(column[1:], column[:-1])), 1).to_pylist()]
    else:
        starts = [0]
    values = pc.take(column, starts).to_pylist()
    starts.append(n)
    for k, raw in enumerate(values):
        yield (raw.strip() if raw else ""), starts[k + 1] - starts[k] > 1
