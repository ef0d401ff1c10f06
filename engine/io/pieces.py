"""A file's rows as :class:`~engine.io.csv_chunks.Piece` s, for the columnar readers.

CSV goes through :class:`~engine.io.csv_chunks.CsvChunks`; Parquet is read a record
batch at a time, and a batch whose wanted columns are all strings is handed over as
Arrow columns (anything else is turned into text cells exactly as the row path's
:func:`~engine.io.readers.to_text` does). JSONL has no columnar reading: None.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

from engine.io.csv_chunks import CsvChunks, Piece
from engine.io.errors import RejectSink
from engine.io.readers import file_format, open_parquet, read_header, to_text

#: Rows per Parquet record batch read.
PARQUET_BATCH_ROWS = 65536


def file_pieces(path: str | Path, wanted: list[str], encoding: str | None,
                delimiter: str | None, numbered: bool = True) -> Generator[Piece, None, None] | None:
    """The rows of ``path`` (columns ``wanted``, which the file must have), or None for JSONL;
    ``numbered=False``: row numbers may be missing (see :class:`CsvChunks`)."""
    kind = file_format(path)
    if kind == "csv":
        header = read_header(path, encoding=encoding, delimiter=delimiter)
        return CsvChunks(path, header, wanted, encoding, delimiter, numbered).pieces()
    if kind == "parquet":
        return _parquet_pieces(path, wanted)
    return None


def _parquet_pieces(path: str | Path, wanted: list[str]) -> Generator[Piece, None, None]:
    import pyarrow as pa

    parquet = open_parquet(path)
    first = 1
    with parquet:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            table = pa.Table.from_batches([batch]).select(wanted)
            if all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in table.schema.types):
                yield Piece(first_row=first, table=table)
            else:
                columns = [column.to_pylist() for column in table.columns]
                rows = [(first + i, [to_text(value) for value in values])
                        for i, values in enumerate(zip(*columns, strict=True))]
                yield Piece(rows=rows)
            first += table.num_rows


def as_rows(piece: Piece) -> Piece:
    """An Arrow piece as rows of cells, for the row path."""
    columns = [column.to_pylist() for column in piece.table.columns]
    first = piece.first_row
    return Piece(rows=[(first + i, list(values)) for i, values in enumerate(zip(*columns, strict=True))])


def piece_rows(piece: Piece, on_reject: RejectSink) -> Iterator[tuple[int, list[str | None]]]:
    """The piece's rows, sending the csv reading's own rejects where the row path would."""
    pending, at = piece.rejects, 0
    for i, row in enumerate(piece.rows):
        while at < len(pending) and pending[at][0] <= i:
            on_reject(pending[at][1])
            at += 1
        yield row
    for _, reject in pending[at:]:
        on_reject(reject)
