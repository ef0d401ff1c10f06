"""A leads file through Arrow: the same :class:`~engine.io.records.LeadRecord` s, parsed in C.

A lead needs a record and a dict of fields whichever way it is read, so the gain here
is the parse (Arrow instead of ``csv.reader``) and converting each column once per
distinct value with the row path's own converters. A batch with any lead the row path
would reject or read differently — a blank or padded id, a value a converter refuses —
and any file with activity rules (they synthesize events per row) is read by
:class:`~engine.io.records.LeadRows`, lazily, so rejects are sent at the same moments.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from typing import TYPE_CHECKING, Any

from engine.io.arrow_convert import column_values
from engine.io.arrow_events import enabled
from engine.io.csv_chunks import Piece
from engine.io.errors import RejectSink
from engine.io.mapping import field_spec
from engine.io.pieces import as_rows, file_pieces, piece_rows
from engine.io.records import LeadLayout, LeadRecord, LeadRows

if TYPE_CHECKING:  # the file classes pick this reader (engine.io.files)
    from engine.io.files import LeadsFile


def lead_records(leads: LeadsFile) -> Iterator[LeadRecord] | None:
    """The leads of ``leads`` via Arrow, or None when the row path reads this file."""
    if not enabled():
        return None
    layout = LeadLayout(leads.path, leads.mapping, leads.as_of, leads.allowed_types, leads.encoding,
                        leads.delimiter)
    if layout.has_activity:
        return None
    pieces = file_pieces(leads.path, layout.wanted, layout.encoding, leads.delimiter)
    if pieces is None:
        return None
    return _records(layout, pieces, leads.on_reject)


def _records(layout: LeadLayout, pieces: Iterator[Piece], on_reject: RejectSink) -> Iterator[LeadRecord]:
    maker = layout.maker({name: i for i, name in enumerate(layout.wanted)})
    for piece in pieces:
        if piece.table is not None:
            records = _columnar(layout, piece.table, piece.first_row)
            if records is not None:
                yield from records
                continue
            piece = as_rows(piece)
        yield from maker(piece_rows(piece, on_reject), on_reject)


def _columnar(layout: LeadLayout, table: Any, first_row: int) -> list[LeadRecord] | None:
    ids = table.column(layout.spec.id).to_pylist()
    for lead_id in ids:
        if not lead_id or lead_id.strip() != lead_id:
            return None  # missing or padded: the row path rejects or strips it
    names: list[str] = []
    columns: list[list[Any]] = []
    specs = {name: field_spec(raw) for name, raw in layout.spec.fields.items()}
    for name, column, convert in layout.plan:
        values = column_values(table.column(column), convert, (specs[name], layout.mapping))
        if values is None:
            return None
        names.append(name)
        columns.append(values)
    n = len(ids)
    for name in layout.missing:
        names.append(name)
        columns.append([None] * n)
    # All C-level iteration: a dict per lead from the columns, then the records.
    fields = list(map(dict, map(zip, repeat(names), zip(*columns, strict=True))))
    return list(map(LeadRecord, ids, fields, range(first_row, first_row + n)))


__all__ = ["LeadRows", "lead_records"]
