"""A CSV file as pieces of whole lines: Arrow parses the plain ones, the csv module the rest.

Arrow's C++ parser is several times faster than ``csv.reader`` but does not number rows
by line, skip blank lines or read short rows the way :func:`engine.io.readers.read_csv_lists`
does. So the file is cut into byte chunks at line ends, and a chunk goes to Arrow only
when it is *plain*: no quote character, no NUL, no blank line. In a plain chunk every
line is exactly one row, so row numbers are the line numbers, and Arrow and
the csv module cannot read it differently (a row of the wrong width makes Arrow fail,
and the chunk is then read by the csv module). Anything else is read by the row path's
own loop (:func:`engine.io.readers.csv_lists_at`), numbered from the chunk's first line:

* a chunk that is not plain but has no quote: just that chunk (it holds whole rows);
* a chunk with a quote: from there to the end of the file, since a quoted value may
  hold a newline and so a chunk end may fall inside a row.

Memory stays bounded: one chunk (:data:`CHUNK_BYTES`) at a time.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.io.errors import Reject, RejectSink
from engine.io.readers import _header, csv_codec, csv_delimiter, csv_lists_at, read_csv_lists

#: Bytes per chunk: large enough to amortise Arrow's per-call cost, small enough that a
#: chunk's Python lists stay a few MiB.
CHUNK_BYTES = 1 << 21
#: Rows per piece when the csv module reads (the row path from a quote to the end).
ROWS_PER_PIECE = 65536
Row = tuple[int, list[str | None]]
#: Arrow may parse a chunk on several threads. Off: the chunks are read ahead on a
#: thread already (engine.io.prefetch), and on a shared two-core machine Arrow's pool
#: added memory (~30 MiB) more than speed.
USE_THREADS = False
#: Codecs in which a newline, a quote and a delimiter byte are always that character.
_BYTE_SAFE = {"utf-8", "utf-8-sig", "cp932"}


@dataclass
class Piece:
    """Consecutive rows of the file: Arrow columns, or rows as lists.

    ``table`` (Arrow, the wanted columns in order, all strings) when the chunk was
    plain: its rows are numbered ``first_row``, ``first_row + 1``, ...; else ``rows``:
    ``(row number, [cell per wanted column])``, and ``rejects`` the rows the csv reading
    itself set aside, each after as many rows of ``rows`` as its first element says.
    """

    first_row: int = 0
    table: Any = None
    rows: list[Row] = field(default_factory=list)
    rejects: list[tuple[int, Reject]] = field(default_factory=list)


class CsvChunks:
    """The pieces of one CSV file, for the columns ``wanted`` (names in ``header``).

    Not ``numbered``: the caller needs the rows but not their numbers (the merge
    pre-scan), so lines need not be counted and row numbers are not kept.
    """

    def __init__(self, path: str | Path, header: list[str], wanted: list[str], encoding: str | None,
                 delimiter: str | None, numbered: bool = True) -> None:
        self.path, self.header, self.wanted, self.numbered = path, header, wanted, numbered
        self.encoding, self.delimiter = encoding, delimiter
        self.codec = csv_codec(path, encoding)
        self.separator = csv_delimiter(path, delimiter)
        position = {name: i for i, name in enumerate(header) if name}
        self.positions = [position[name] for name in wanted]

    def pieces(self) -> Generator[Piece, None, None]:
        """The whole file's data rows as pieces, in order."""
        if not self._byte_safe():
            yield from self._batched(lambda sink: read_csv_lists(
                self.path, self.header, encoding=self.codec, delimiter=self.delimiter, on_reject=sink))
            return
        with open(self.path, "rb") as handle:
            head = handle.readline()
            if not self._plain_header(head):
                yield from self._batched(lambda sink: read_csv_lists(
                    self.path, self.header, encoding=self.codec, delimiter=self.delimiter, on_reject=sink))
                return
            offset, line = len(head), 2
            leftover = b""
            while True:
                data = handle.read(CHUNK_BYTES)
                buffer = leftover + data
                if not buffer:
                    return
                cut = buffer.rfind(b"\n") + 1 if data else len(buffer)
                if buffer.find(b'"', 0, cut) >= 0 or (cut == 0 and len(buffer) > 4 * CHUNK_BYTES):
                    # A quote (a value may span lines) or no line end in sight: the row
                    # path reads from here to the end.
                    handle.seek(offset)
                    yield from self._rows(handle, line - 1)
                    return
                if cut == 0:
                    leftover = buffer
                    continue
                chunk, leftover = buffer[:cut], buffer[cut:]
                if self.numbered:
                    lines = _lines(chunk)
                    yield from self._chunk(chunk, line, lines)
                    line += lines
                else:  # any Arrow parse will do: rows are rows
                    table = self._arrow(chunk) if b"\x00" not in chunk else None
                    yield from [Piece(table=table)] if table is not None else self._rows(io.BytesIO(chunk), 0)
                offset += len(chunk)

    def _byte_safe(self) -> bool:
        """Lines and cells can be found in the bytes, whatever the text is."""
        return self.codec in _BYTE_SAFE and len(self.separator) == 1 and self.separator not in "\"\r\n"

    def _plain_header(self, head: bytes) -> bool:
        """The first line is the header ``read_header`` found, alone on its line."""
        if b'"' in head or b"\x00" in head or not head.endswith(b"\n") or b"\r" in head[:-2]:
            return False
        try:
            text = head.decode(self.codec)
        except UnicodeDecodeError:
            return False
        return _header(self.path, text.rstrip("\r\n").split(self.separator)) == self.header

    def _chunk(self, chunk: bytes, line: int, lines: int) -> Iterator[Piece]:
        if b"\x00" not in chunk:
            table = self._arrow(chunk)
            if table is not None and table.num_rows == lines:
                yield Piece(first_row=line, table=table)
                return
        yield from self._rows(io.BytesIO(chunk), line - 1)

    def _arrow(self, chunk: bytes) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if self.codec == "cp932":
            try:
                chunk = chunk.decode("cp932").encode("utf-8")
            except UnicodeDecodeError:
                return None  # the row path says where
        names = [f"c{i}" for i in range(len(self.header))]
        include = [names[i] for i in self.positions]
        try:
            table = pacsv.read_csv(
                pa.py_buffer(chunk),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=USE_THREADS,
                                               block_size=max(1 << 20, len(chunk) // 2 + 1)),
                parse_options=pacsv.ParseOptions(delimiter=self.separator, quote_char=False,
                                                  ignore_empty_lines=True),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(dict.fromkeys(include)),
                    column_types=dict.fromkeys(include, pa.string()),
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return table.select(include).rename_columns(self.wanted)

    def _rows(self, raw: Any, line_base: int) -> Iterator[Piece]:
        width = len(self.header)
        return self._batched(lambda sink: csv_lists_at(
            self.path, raw, width, self.codec, line_base, self.delimiter, sink))

    def _batched(self, read: Callable[[RejectSink], Iterator[Row]]) -> Iterator[Piece]:
        """Pieces of at most :data:`ROWS_PER_PIECE` rows; rejects placed among them."""
        positions = self.positions
        piece = Piece()

        def sink(reject: Reject) -> None:
            piece.rejects.append((len(piece.rows), reject))

        for number, values in read(sink):
            if len(piece.rows) >= ROWS_PER_PIECE:
                yield piece
                piece = Piece()
            piece.rows.append((number, [values[i] for i in positions]))
        if piece.rows or piece.rejects:
            yield piece


def _lines(chunk: bytes) -> int:
    """Lines as the csv module counts them: CR, LF and CRLF each end one (and so they
    do for Arrow: a lone CR is a row end to both)."""
    ends = chunk.count(b"\n")
    if b"\r" in chunk:
        ends += chunk.count(b"\r") - chunk.count(b"\r\n")
    return ends + (0 if chunk.endswith((b"\n", b"\r")) else 1)
