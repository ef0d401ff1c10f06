"""An events file as blocks of columns: the fast read path behind ``EventsFile``.

Building an :class:`~engine.events.Event` per row costs more than deciding on it, so
a clean batch of rows (a :class:`~engine.io.csv_chunks.Piece` Arrow parsed) becomes
Python lists per column with no per-row Python work: lead ids compared in Arrow to find
runs (one Python string per run), types and fields converted once per distinct value by
the row path's own functions, timestamps by Arrow where that is provably our parse
(:mod:`engine.io.arrow_instants`). A batch with any row the row path would reject or
read differently — or with values only Python can read — goes through
:class:`~engine.io.records.EventRows` instead, so rejects are the row path's, row for
row; its events then become the same kind of block.

Rejects are not sent at once: a block keeps each with the index of the event it came
before, and :mod:`engine.io.grouping` sends it when the merge reaches that event —
the moment the row path would have — so the rejects file reads in the same order.

``ENGINE_IO_ROW_PATH=1`` in the environment turns this path off (for comparisons).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from engine.events import epoch_us
from engine.io import arrow_instants
from engine.io.arrow_convert import Encoded, Rejected, by_value_encoded, column_encoded
from engine.io.convert import Converter
from engine.io.csv_chunks import Piece
from engine.io.errors import Reject
from engine.io.pieces import as_rows, file_pieces, piece_rows
from engine.io.prefetch import prefetched
from engine.io.records import EventLayout, LeadEvent, event_type, required_of

if TYPE_CHECKING:  # the file classes pick this reader (engine.io.files)
    from engine.io.files import EventsFile

#: Read the next block on a thread while the caller uses this one (see engine.io.prefetch).
PREFETCH = True
#: Environment variable that forces the row-by-row reader everywhere.
ROW_PATH_ENV = "ENGINE_IO_ROW_PATH"


def enabled() -> bool:
    """The columnar path is on unless :data:`ROW_PATH_ENV` is set to a non-empty value."""
    return not os.environ.get(ROW_PATH_ENV)


class EventBlock:
    """Consecutive accepted events of the file, as columns, split into runs of one lead id.

    Run ``k`` is events ``starts[k]:starts[k + 1]`` of lead ``lead_ids[k]``; consecutive
    runs of a block have different ids (one lead may still continue in the next block).
    ``seq0`` is the first event's ``seq`` (they count up by one); ``rows`` the events'
    row numbers; ``rejects`` ``(event index, reject)`` in order, sent before that event.
    """

    __slots__ = ("arrow", "at_us", "fields", "file", "ids", "lead_ids", "points", "points_key", "rejects",
                 "rows", "seq0", "starts", "sums", "types")

    def __init__(self, file: str, lead_ids: list[str], starts: list[int], at_us: list[int],
                 types: list[str], fields: dict[str, list[Any]], ids: list[str | None] | None,
                 seq0: int, rows: Sequence[int], rejects: list[tuple[int, Reject]]) -> None:
        self.file, self.lead_ids, self.starts = file, lead_ids, starts
        self.at_us, self.types, self.fields, self.ids = at_us, types, fields, ids
        self.seq0, self.rows, self.rejects = seq0, rows, rejects
        self.points: list[int] | None = None  # set by a merge's ``prepare`` (engine.kernel.decay)
        self.points_key: object = None
        self.sums: dict[int, tuple[int, ...]] | None = None  # a run's start → its totals
        #: The columnar path's Arrow forms: "at" (int64 epoch µs), "type" and "fields" (by
        #: name) as :class:`~engine.io.arrow_convert.Encoded`, where converted per distinct value.
        self.arrow: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.at_us)


def event_blocks(events: EventsFile) -> Iterator[EventBlock] | None:
    """The events of ``events`` as blocks, or None when only the row path reads this file."""
    if not enabled():
        return None
    layout = EventLayout(events.path, events.mapping, events.allowed_types, events.encoding,
                         events.delimiter)
    pieces = file_pieces(events.path, layout.wanted, layout.encoding, events.delimiter)
    if pieces is None:
        return None
    blocks = _Blocks(layout).blocks(pieces)
    return prefetched(blocks) if PREFETCH else blocks


class _Blocks:
    """Pieces to blocks for one file."""

    def __init__(self, layout: EventLayout) -> None:
        self.layout, self.spec = layout, layout.spec
        self.source = str(layout.path)
        self.maker = layout.maker({name: i for i, name in enumerate(layout.wanted)})
        mapping = layout.mapping
        formats = self.spec.formats if self.spec.formats is not None else mapping.timestamp_formats
        self.fast_at = arrow_instants.usable(formats, mapping.null_values)
        self.converters: list[tuple[str, str, Converter]] = [(n, c, f) for n, c, f in layout.plan]
        self.specs = {name: (spec, mapping) for name, _, spec in layout.field_specs}

    def blocks(self, pieces: Iterator[Piece]) -> Iterator[EventBlock]:
        seq = 0
        for piece in pieces:
            block = None
            if piece.table is not None:
                block = self._columnar(piece.table, piece.first_row, seq)
                if block is None:
                    piece = as_rows(piece)
            if block is None:
                block = self._by_row(piece, seq)
            seq += len(block)
            yield block

    def _columnar(self, table: Any, first_row: int, seq: int) -> EventBlock | None:
        """The block of a batch whose every row is clean, else None."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        spec = self.spec
        lead = table.column(spec.lead_id).combine_chunks()
        if lead.null_count:
            return None
        if n > 1:
            changes = pc.indices_nonzero(pc.not_equal(lead[1:], lead[:-1]))
            starts = [0, *pc.add(changes, pa.scalar(1, changes.type)).to_pylist()]  # (a Python 1: ~0.2 ms)
        else:
            starts = [0] if n else []
        lead_ids: list[str] = pc.take(lead, starts).to_pylist() if n else []
        for lead_id in lead_ids:
            if not lead_id or lead_id.strip() != lead_id:
                return None  # missing, or padded (the row path strips): rejected or renamed
        starts.append(n)
        arrow: dict[str, Any] = {}  # what stays in Arrow for per-block work (engine.kernel.decay)
        if spec.type is not None:
            encoded_types = by_value_encoded(table.column(spec.type), self._kind)
            types = encoded_types.expand() if encoded_types is not None else None
            arrow["type"] = encoded_types
        else:
            kind = event_type(self.layout, None)
            types = [kind] * n if kind is not None else None
        if types is None or not self.fast_at:
            return None
        at_array = arrow_instants.epoch_micros_array(table.column(spec.at).combine_chunks())
        if at_array is None:
            return None
        at_us = at_array.to_pylist()
        arrow["at"] = at_array
        fields: dict[str, list[Any]] = {}
        for name, column, convert in self.converters:
            found = column_encoded(table.column(column), convert, self.specs[name])
            if found is None:
                return None
            if isinstance(found, Encoded):
                arrow.setdefault("fields", {})[name] = found
                found = found.expand()
            fields[name] = found
        for kind, (name, ok) in required_of(self.layout.allowed_types).items():
            if kind in types:  # a rejected handoff names an unknown reason: the row path rejects it
                values = fields.get(name)
                pairs = zip(types, values, strict=True) if values is not None else None
                if pairs is None or any(t == kind and v not in ok for t, v in pairs):
                    return None
        ids: list[str | None] | None = None
        if spec.id is not None:
            ids = [(raw.strip() if raw else "") or None for raw in table.column(spec.id).to_pylist()]
        block = EventBlock(self.source, lead_ids, starts, at_us, types, fields, ids, seq,
                           range(first_row, first_row + n), [])
        block.arrow = arrow
        return block

    def _kind(self, cell: str | None) -> str:
        kind = event_type(self.layout, cell)
        if kind is None:
            raise Rejected
        return kind

    def _by_row(self, piece: Piece, seq: int) -> EventBlock:
        """The row path over the piece's rows; its events and rejects as a block."""
        made: list[LeadEvent] = []
        rejects: list[tuple[int, Reject]] = []

        def sink(reject: Reject) -> None:
            rejects.append((len(made), reject))

        for item in self.maker(piece_rows(piece, sink), sink, seq):
            made.append(item)
        return block_of(self.source, made, self.layout, seq, rejects)


def block_of(source: str, made: list[LeadEvent], layout: EventLayout, seq: int,
             rejects: list[tuple[int, Reject]]) -> EventBlock:
    """Row-path events (consecutive, from ``seq``) as a block."""
    lead_ids: list[str] = []
    starts: list[int] = []
    previous = None
    for i, item in enumerate(made):
        if item.lead_id != previous:
            lead_ids.append(item.lead_id)
            starts.append(i)
            previous = item.lead_id
    starts.append(len(made))
    events = [item.event for item in made]
    fields = {name: [event.fields[name] for event in events] for name, _, _ in layout.plan}
    ids = [event.id for event in events] if layout.spec.id is not None else None
    return EventBlock(source, lead_ids, starts, [epoch_us(event.at) for event in events],
                      [event.type for event in events], fields, ids, seq,
                      [item.row for item in made], rejects)


__all__ = ["ROW_PATH_ENV", "EventBlock", "block_of", "enabled", "event_blocks"]
