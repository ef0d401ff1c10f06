"""Stage 1 of the SQL batch path: an export file → a DuckDB table of text cells and row numbers.

DuckDB reads the file itself — that is the point of the SQL backend: its CSV, JSON and
Parquet readers are parallel and columnar. Every cell stays text, exactly as
:mod:`engine.io.readers` hands cells to a mapping's converters, so stage 2
(:mod:`engine.sql.cells`) converts them the same way, and every row carries the
number engine.io reports (CSV: its line, the header being line 1; JSONL: its line;
Parquet: its position from 1), so rejects point at the same rows. A CSV file is at first
only a view over DuckDB's reader (``Scanned.lazy``): the conversion reads it straight,
numbering rows by their order, when its plan keeps that order, else copies it first
(:meth:`Inputs.copy_scan`, numbered by rowid).

Two things DuckDB would do differently are handled here rather than approximated:

* encodings DuckDB cannot read (CP932/Shift_JIS, anything but UTF-8) are transcoded,
  streamed, to a temporary UTF-8 file (removed by :meth:`Inputs.close`), using
  engine.io's own detection, so both backends read the same characters;
* files whose rows are not one line each (blank lines, quoted newlines, rows of the
  wrong width, malformed JSON lines, Parquet columns of exotic types): DuckDB would
  number rows differently or stop, so such a file is read by engine.io's reader (the
  same rows, the same structural rejects) and handed to DuckDB as Arrow batches.
  Correct first; fast whenever the file is regular, which exports nearly always are.
  A CSV file DuckDB read in strict mode has engine.io's rows, so only blank lines (both
  skip them) and quoted line breaks can make its numbers differ; numbers are written only
  with rejects, so the line count that tells runs only for a file with a rejected row
  (:meth:`Inputs.numbered`), which is then read again by engine.io's reader if it must.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.io import InputError, Reject, file_format, read_rows
from engine.io.encoding import decode_error, detect_encoding, normalize_encoding
from engine.io.readers import CSV_SUFFIXES, read_header
from engine.io.scratch import temp_dir

#: The row-number column every scanned table has (engine.io's numbering).
ROW = "__row"
_FALLBACK_BATCH = 50_000
#: DuckDB's CSV buffer in bytes (None: its default). Tests make it small so that a small
#: file is read in many parallel pieces, as a large export is.
CSV_BUFFER_SIZE: int | None = None
_DIRECT_CODECS = {"utf-8", "utf-8-sig"}


#: DuckDB's CSV buffer (16 × its 2 MiB longest line) and the smallest piece we ask for
#: (a line may not be longer than the buffer).
_DUCKDB_BUFFER = 32 << 20
_SMALLEST_BUFFER = (2 << 20) + 1


def _buffer_size(path: Path | str) -> int | None:
    """The CSV buffer for ``path``: :data:`CSV_BUFFER_SIZE`, or small enough that a file
    under a few DuckDB buffers is still read in a piece per thread and more. DuckDB reads
    a buffer on one thread: the 100k-lead file (11.6 MB) was one piece, its conversion one
    thread (issue #17). None: DuckDB's own size."""
    if CSV_BUFFER_SIZE:
        return CSV_BUFFER_SIZE
    pieces = 4 * (os.cpu_count() or 1)
    size = os.path.getsize(path)
    if size >= pieces * _DUCKDB_BUFFER or size < 2 * _SMALLEST_BUFFER:
        return None
    return max(_SMALLEST_BUFFER, size // pieces)


def quote(name: str) -> str:
    """A SQL identifier for any column name (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Scanned:
    """One input as a DuckDB table: ``ROW`` plus a VARCHAR column per wanted column present.

    ``columns``: the file's column names (None for JSONL, whose first row's keys are
    checked instead, as engine.io does); ``first_keys``: that first row's keys;
    ``rejects``: rows the fallback reader refused as rows (wrong width, bad JSON).
    """

    table: str
    path: Path
    columns: list[str] | None
    present: list[str]
    first_keys: list[str] | None = None
    rejects: list[Reject] = field(default_factory=list)
    by_duckdb: bool = True
    #: CSV read by DuckDB whose row numbers are not yet known to be lines (source, header
    #: lines): checked by :meth:`Inputs.numbered` only if one of its rows is rejected.
    unverified: tuple[Path, int] | None = None
    #: A CSV file not yet copied: (DuckDB's reader, the cell selects). The table is a view
    #: with no ``ROW`` column until :meth:`Inputs.copy_scan` (engine.sql.records converts
    #: straight from the reader when it can keep the file's order).
    lazy: tuple[str, list[str]] | None = None


class Renumber(Exception):
    """A rejected row's number is not its line: read ``path`` again with engine.io's reader."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class Inputs:
    """Scans files into one DuckDB connection; owns (and removes) the transcoded copies."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self._temporary: list[Path] = []
        #: files to read with engine.io's reader (their DuckDB row numbers were not lines)
        self.careful: set[Path] = set()

    def close(self) -> None:
        """Remove every temporary UTF-8 copy made for this run."""
        for path in self._temporary:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._temporary.clear()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop(self, table: str) -> None:
        """Forget a scanned table once its rows are converted (DuckDB slows down holding copies)."""
        forget(self.con, table, f"{table}_file")

    # -- columns first: missing columns are errors before any reading -------------------

    def columns(self, path: Path, encoding: str | None) -> tuple[list[str] | None, list[str] | None]:
        """The file's column names (CSV header, Parquet schema) or, for JSONL, the first row's keys."""
        if not path.is_file():
            raise InputError("no such file", file=path)
        kind = file_format(path)
        if kind == "csv":
            return [n for n in read_header(path, encoding=encoding) if n], None
        if kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                return [str(n) for n in pq.read_schema(path).names], None
            except (pa.ArrowInvalid, OSError) as error:
                raise InputError(f"not a readable Parquet file: {error}", file=path) from None
        return None, _first_json_keys(path, encoding)

    # -- scanning ---------------------------------------------------------------------

    def scan(self, path: Path, name: str, encoding: str | None, wanted: list[str],
             raw: bool = False) -> Scanned:
        """Make table ``name`` from ``path`` with the ``wanted`` columns it has (others: absent).

        ``raw`` (a CSV read lazily, for engine.sql.streamed's one pass): an empty cell is
        read as ``''`` by DuckDB itself, and a cell is NULL only when it is exactly one
        unquoted NUL character, which the caller must not take as read (the pass counts
        such a row as bad, so the general path, with this method's default, decides it).
        The default's ``COALESCE`` of every cell cost 0.6 s of CPU per 30M events (issue #17)."""
        columns, first_keys = self.columns(path, encoding)
        kind = file_format(path)
        present = [c for c in dict.fromkeys(wanted) if columns is None or c in columns]
        scanned = Scanned(name, path, columns, present, first_keys)
        if path in self.careful:
            pass
        elif kind == "csv" and self._csv(scanned, encoding, raw):
            return scanned
        if kind == "jsonl" and self._jsonl(scanned, encoding):
            return scanned
        if kind == "parquet" and self._parquet(scanned):
            return scanned
        self._fallback(scanned, encoding)
        return scanned

    def _csv(self, scanned: Scanned, encoding: str | None, raw: bool = False) -> bool:
        path = scanned.path
        header = read_header(path, encoding=encoding)
        if len(header) < 2:
            return False  # a one-column file's blank lines are rows to DuckDB, not to engine.io
        source = self._utf8(path, normalize_encoding(encoding) if encoding else detect_encoding(path))
        delimiter = CSV_SUFFIXES.get(path.suffix.lower(), ",")
        names = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
        scan = (
            f"read_csv({literal(str(source))}, header = true, auto_detect = false, "
            f"columns = {{{names}}}, delim = {literal(delimiter)}, quote = '\"', escape = '\"', "
            "strict_mode = true, parallel = true"
            + (", nullstr = chr(0), allow_quoted_nulls = false" if raw else "")
            + (f", buffer_size = {buffer})" if (buffer := _buffer_size(source)) else ")")
        )
        position = {column: i for i, column in enumerate(header) if column}
        cells = [f"c{position[c]} AS {quote(c)}" if raw else f"COALESCE(c{position[c]}, '') AS {quote(c)}"
                 for c in scanned.present]
        # Not read yet: a view over DuckDB's reader (a copy of 30M events as text cells costs
        # a pass); copy_scan() copies it, numbered, when the conversion cannot keep the order.
        self.drop(scanned.table)
        self.con.execute(f"CREATE TEMP VIEW {scanned.table}_file AS SELECT * FROM {scan}")
        self.con.execute(f"CREATE TEMP VIEW {scanned.table} AS "
                         f"SELECT {', '.join(cells) or 'NULL AS __none'} FROM {scanned.table}_file")
        scanned.lazy = (scan, cells)
        # DuckDB read it in strict mode, so its rows are engine.io's; only their numbers can
        # differ (blank lines, which both skip; quoted line breaks). Numbers reach the output
        # only through rejects, so the line count waits until a row is rejected (numbered()).
        scanned.unverified = (source, 1)
        return True

    def copy_scan(self, scanned: Scanned) -> None:
        """A lazy CSV scan's cells copied to a table and numbered by line (its rowid: a plain
        copy keeps DuckDB's reading order); Renumber to engine.io's reader if DuckDB cannot read it."""
        assert scanned.lazy is not None
        scan, cells = scanned.lazy
        self.drop(scanned.table)
        scanned.lazy = None
        if not self._create(scanned.table, scan, cells, "rowid + 2"):
            self.careful.add(scanned.path)
            raise Renumber(scanned.path)

    def _jsonl(self, scanned: Scanned, encoding: str | None) -> bool:
        path = scanned.path
        if scanned.first_keys is None:
            return False
        codec = normalize_encoding(encoding) if encoding else "utf-8-sig"
        source = self._utf8(path, codec)
        names = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in scanned.present) or "'__none': 'VARCHAR'"
        scan = (f"read_json({literal(str(source))}, format = 'newline_delimited', "
                f"columns = {{{names}}}, maximum_object_size = 268435456)")
        cells = [quote(c) for c in scanned.present]
        if not self._create(scanned.table, scan, cells, "rowid + 1"):
            return False
        return self._one_line_each(scanned.table, source, header_lines=0)

    def _parquet(self, scanned: Scanned) -> bool:
        scan = f"read_parquet({literal(str(scanned.path))}, file_row_number = true)"
        try:
            described = f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {scan})"
            types = dict(self.con.execute(described).fetchall())
        except Exception:
            return False
        cells = []
        for column in scanned.present:
            text = _parquet_text(quote(column), str(types.get(column, "")))
            if text is None:
                return False
            cells.append(f"{text} AS {quote(column)}")
        return self._create(scanned.table, scan, cells, "file_row_number + 1")

    def _create(self, table: str, scan: str, cells: list[str], row: str) -> bool:
        select = ", ".join([f"CAST({row} AS BIGINT) AS {ROW}", *cells])
        try:  # the file once, as DuckDB read it; the cells as a view (row numbers from rowid)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_file AS SELECT * FROM {scan}")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {select} FROM {table}_file")
        except Exception:
            return False
        return True

    def _one_line_each(self, table: str, source: Path, header_lines: int) -> bool:
        """True when every record is one line (then DuckDB's row i is line i + header)."""
        lines = _count_lines(source)
        records = int(self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        return lines is not None and lines == records + header_lines

    def numbered(self, scanned: Scanned, records: int) -> None:
        """Raise :class:`Renumber` unless ``scanned``'s row numbers are its lines.

        Called once a row of the file is rejected (its number is then written); ``records``:
        the rows DuckDB read.
        """
        if scanned.unverified is None:
            return
        source, header_lines = scanned.unverified
        lines = _count_lines(source)
        if lines is None or lines != records + header_lines:
            self.careful.add(scanned.path)
            raise Renumber(scanned.path)
        scanned.unverified = None

    def _fallback(self, scanned: Scanned, encoding: str | None) -> None:
        """engine.io's reader makes the rows (and the structural rejects); DuckDB gets Arrow."""
        import pyarrow as pa

        scanned.by_duckdb = False
        self.drop(scanned.table)
        names = scanned.present
        schema = pa.schema([(ROW, pa.int64()), *((n, pa.string()) for n in names)])
        rows = read_rows(scanned.path, encoding=encoding, on_reject=scanned.rejects.append)
        batch: list[tuple[int, dict[str, str | None]]] = []
        created = False

        def flush() -> None:
            nonlocal created
            data = pa.table([pa.array([n for n, _ in batch], pa.int64()),
                             *(pa.array([r.get(c) for _, r in batch], pa.string()) for c in names)],
                            schema=schema)
            self.con.register("__fallback_batch", data)
            verb = "INSERT INTO" if created else "CREATE TEMP TABLE"
            tail = "SELECT * FROM __fallback_batch"
            self.con.execute(f"{verb} {scanned.table} {tail}" if created
                             else f"{verb} {scanned.table} AS {tail}")
            self.con.unregister("__fallback_batch")
            created = True
            batch.clear()

        for item in rows:
            batch.append(item)
            if len(batch) >= _FALLBACK_BATCH:
                flush()
        flush()

    def _utf8(self, path: Path, codec: str) -> Path:
        """``path`` itself when DuckDB reads its encoding, else a streamed UTF-8 copy."""
        if codec in _DIRECT_CODECS:
            return path
        handle, name = tempfile.mkstemp(prefix=".engine-utf8-", suffix=path.suffix, dir=temp_dir())
        target = Path(name)
        self._temporary.append(target)
        decoder = codecs.getincrementaldecoder(codec)("strict")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out, open(path, "rb") as raw:
                while chunk := raw.read(1 << 20):
                    out.write(decoder.decode(chunk))
                out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            raise decode_error(path, codec) from None
        return target


def forget(con: Any, *names: str) -> None:
    """Drop whichever of ``names`` exist, each as the table or view it is (CREATE OR REPLACE
    cannot change an object's kind, and DROP must name it): ``DROP TABLE IF EXISTS``, and
    ``DROP VIEW`` when DuckDB answers that the name is a view. 0.3 ms a name, where asking
    the catalogue first took 2 ms a call, some ten calls a run (issue #17)."""
    from engine.sql.opening import driver

    for name in names:
        try:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        except driver().CatalogException:  # a view of that name
            con.execute(f"DROP VIEW {name}")


def _parquet_text(column: str, duck_type: str) -> str | None:
    """A Parquet column as the text engine.io's ``to_text`` gives, or None (use the fallback)."""
    if duck_type == "VARCHAR":
        return column
    if duck_type == "BOOLEAN":
        return f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN 'true' ELSE 'false' END"
    if duck_type in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
                     "UBIGINT", "HUGEINT"}:
        return f"CAST({column} AS VARCHAR)"
    if duck_type == "DOUBLE":  # DuckDB and repr() both print the shortest round-trip form
        return (f"CASE WHEN isnan({column}) THEN 'nan' WHEN isinf({column}) THEN "
                f"(CASE WHEN {column} > 0 THEN 'inf' ELSE '-inf' END) ELSE CAST({column} AS VARCHAR) END")
    if duck_type == "DATE":
        return f"strftime({column}, '%Y-%m-%d')"
    return None


def _count_lines(path: Path) -> int | None:
    """Lines as Python's universal newlines count them; None if a bare ``\\r`` makes that unsure."""
    newlines = returns = pairs = 0
    last = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
            pairs += chunk.count(b"\r\n") + (1 if last == b"\r" and chunk[:1] == b"\n" else 0)
            last = chunk[-1:]
    if returns != pairs:
        return None
    return newlines + (1 if last not in (b"", b"\n") else 0)


def _first_json_keys(path: Path, encoding: str | None) -> list[str] | None:
    """The keys of the first non-blank JSONL line, or None if it is not an object."""
    codec = normalize_encoding(encoding) if encoding else "utf-8-sig"
    try:
        with open(path, encoding=codec, errors="strict") as text:
            for line in text:
                if line.strip():
                    data = json.loads(line)
                    return [str(k) for k in data] if isinstance(data, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return []
