"""Write outputs atomically and byte-for-byte reproducibly.

A run that dies midway must not leave a half-written file under the final name, or a
later step would read it as complete: every writer fills ``.NAME.tmp-<pid>`` next to
the target, fsyncs it and renames it into place. A SIGKILL can leave that temp file
behind, never a partial target. Output is deterministic (fixed column order, ``\\n``
line endings, no timestamps in Parquet metadata) so two runs can be diffed and cached.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from engine.io.errors import InputError, Reject
from engine.io.readers import file_format
from engine.io.scratch import fsync_dir

PARQUET_BATCH_ROWS = 8192
REJECT_COLUMNS = ("file", "row", "column", "value", "reason")

#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
FORMULA_START = frozenset("=+-@\t\r")
#: A text cell spreadsheets read as a plain number (``-3.5``, ``+81``): data, left as it is.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: A row with a cell that may need the guard, found with one search over the row joined
#: by ``\x1f`` with one in front (:func:`_suspect`; a false hit, ``\x1f`` inside a cell,
#: only costs the per-cell check). A literal first character keeps the search fast.
_SUSPECT = re.compile("\x1f[=+\\-@\t\r]")


def _suspect(cells: Sequence[str]) -> bool:
    return _SUSPECT.search("\x1f" + "\x1f".join(cells)) is not None


def guard_cell(text: str) -> str:
    """``text`` made safe to open in a spreadsheet: a leading ``'`` when it would start a formula.

    The usual rule (OWASP): a cell starting with ``= + - @``, tab or CR gets a ``'``
    in front, which spreadsheets show as text. A cell that is only a number (``-3.5``)
    is left alone, as it cannot be a formula. Applied to text cells of CSV outputs only;
    numbers and booleans the engine writes are never text cells.

    Examples:
        >>> guard_cell("=1+2"), guard_cell("@SUM(A1)"), guard_cell("-3.5"), guard_cell("Acme")
        ("'=1+2", "'@SUM(A1)", '-3.5', 'Acme')
    """
    if text[:1] in FORMULA_START and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def temp_path(target: Path) -> Path:
    """Where ``target`` is written before it is renamed into place."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


class _Terminated(BaseException):
    """Raised in place of SIGTERM's default death so the temp file is removed."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``target``, on any failure it goes."""
    final = Path(target)
    if not final.parent.is_dir():
        raise InputError("the output directory does not exist", file=final.parent)
    temp = temp_path(final)
    try:
        with _sigterm_raises():
            yield temp
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, final)
    except _Terminated:
        _remove(temp)
        raise SystemExit(128 + signal.SIGTERM) from None
    except BaseException:
        _remove(temp)
        raise
    fsync_dir(final.parent)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def format_cell(value: Any) -> str:
    """A value as CSV text: one spelling per value so outputs are comparable."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def write_rows(
    target: str | Path,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    encoding: str = "utf-8",
    csv_guard: bool = True,
) -> int:
    """Write ``rows`` (only ``columns``, in that order) to ``target``; return the row count.

    The format follows the extension. ``encoding="utf-8-sig"`` gives a CSV Excel opens
    correctly in Japanese locales. In a CSV, ``csv_guard`` passes every ``str`` value
    through :func:`guard_cell`; JSONL and Parquet keep values as they are.
    """
    kind = file_format(target)
    with atomic_path(target) as temp:
        if kind == "csv":
            return _write_csv(temp, columns, rows, encoding, Path(target).suffix.lower() == ".tsv", csv_guard)
        if kind == "jsonl":
            return _write_jsonl(temp, columns, rows)
        return _write_parquet(temp, columns, rows)


class _CsvOut:
    """csv.writer with ``\n`` endings that still quotes cells holding a bare ``\r``.

    The csv module only quotes characters of the line terminator, so a lone ``\r`` would
    be written raw and split the row when read back; such rows are written fully quoted.
    """

    def __init__(self, handle: IO[str], delimiter: str = ",") -> None:
        self.plain = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        self.quoted = csv.writer(handle, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, cells: Sequence[str]) -> bool:
        """Write one row; True when it was written fully quoted."""
        quoted = "\r" in "".join(cells)
        (self.quoted if quoted else self.plain).writerow(cells)
        return quoted


def _write_csv(
    temp: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], encoding: str, tsv: bool,
    csv_guard: bool,
) -> int:
    def cells() -> Iterator[list[str]]:
        for row in rows:
            # text cells as they are (guarded); the rest spelled by format_cell
            texts = [v if type(v) is str else format_cell(v) for v in map(row.get, columns)]
            if csv_guard and _suspect(texts):
                texts = [guard_cell(t) if type(v) is str else t
                         for v, t in zip(map(row.get, columns), texts, strict=True)]
            yield texts

    return _write_cells(temp, columns, cells(), encoding, tsv)


def _guarded(rows: Iterable[Sequence[str]], raw: Collection[int]) -> Iterator[Sequence[str]]:
    """Rows of text with :func:`guard_cell` applied to every cell but those at ``raw`` positions."""
    for cells in rows:
        if _suspect(cells):
            cells = [c if i in raw else guard_cell(c) for i, c in enumerate(cells)]
        yield cells


def _write_cells(temp: Path, columns: Sequence[str], rows: Iterable[Sequence[str]], encoding: str,
                 tsv: bool) -> int:
    count = 0
    with open(temp, "w", encoding=encoding, newline="") as handle:
        writer = _CsvOut(handle, "\t" if tsv else ",")
        writer.writerow(columns)
        for cells in rows:
            writer.writerow(cells)
            count += 1
    return count


def write_cells(target: str | Path, columns: Sequence[str], rows: Iterable[Sequence[str]], *,
                raw_columns: Collection[str] = (), csv_guard: bool = True) -> int:
    """``write_rows`` for a CSV or TSV ``target`` whose rows are already text, one cell per
    column in order, spelled as :func:`format_cell` would (``Decision.to_cells``).

    ``raw_columns`` hold numbers or booleans spelled as text: never guarded, as
    ``write_rows`` never guards a value that is not a ``str``.
    """
    if file_format(target) != "csv":
        raise ValueError(f"{target}: write_cells writes CSV or TSV only")
    if csv_guard:
        rows = _guarded(rows, frozenset(i for i, name in enumerate(columns) if name in raw_columns))
    with atomic_path(target) as temp:
        return _write_cells(temp, columns, rows, "utf-8", Path(target).suffix.lower() == ".tsv")


class _Last:
    """A file-like sink keeping the last text written (``csv.writer`` writes a row at once)."""

    last = ""

    def write(self, text: str) -> int:
        self.last = text
        return len(text)


def csv_line_maker(columns: Sequence[str], *, raw_columns: Collection[str] = (), csv_guard: bool = True,
                   tsv: bool = False) -> Callable[[Sequence[str]], tuple[str, bool]]:
    """A function spelling one row of text cells exactly as :func:`write_cells` writes it.

    It returns the line without its ``\n`` and whether the row was written fully quoted
    (a cell held a ``\r``), so a caller can hold finished lines (one string a row, not
    one a cell) and append cells of its own before :func:`write_lines` writes them.
    """
    sink = _Last()
    out = _CsvOut(sink, "\t" if tsv else ",")  # type: ignore[arg-type]
    raw = frozenset(i for i, name in enumerate(columns) if name in raw_columns)

    def line(cells: Sequence[str]) -> tuple[str, bool]:
        if csv_guard and _suspect(cells):
            cells = [c if i in raw else guard_cell(c) for i, c in enumerate(cells)]
        quoted = out.writerow(cells)
        return sink.last[:-1], quoted

    return line


def write_lines(target: str | Path, columns: Sequence[str], lines: Iterable[str], *,
                tsv: bool = False) -> int:
    """A CSV or TSV ``target``: the header, then finished lines (:func:`csv_line_maker`), each with ``\n``."""
    with atomic_path(target) as temp, open(temp, "w", encoding="utf-8", newline="") as handle:
        _CsvOut(handle, "\t" if tsv else ",").writerow(columns)
        count = 0
        for text in lines:
            handle.write(text)
            handle.write("\n")
            count += 1
        return count


def _write_jsonl(temp: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with open(temp, "w", encoding="utf-8", newline="") as handle:
        for row in rows:
            record = {name: row.get(name) for name in columns}
            handle.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
            count += 1
    return count


def _write_parquet(temp: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Column types come from the first batch (all-null columns become strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: Any = None
    schema: Any = None
    count = 0
    batch: list[Mapping[str, Any]] = []
    try:
        for row in rows:
            batch.append(row)
            if len(batch) >= PARQUET_BATCH_ROWS:
                schema, writer = _parquet_flush(pa, pq, temp, columns, batch, schema, writer)
                count += len(batch)
                batch.clear()
        if batch or writer is None:
            schema, writer = _parquet_flush(pa, pq, temp, columns, batch, schema, writer)
            count += len(batch)
    finally:
        if writer is not None:
            writer.close()
    return count


def _parquet_flush(
    pa: Any,
    pq: Any,
    temp: Path,
    columns: Sequence[str],
    batch: list[Mapping[str, Any]],
    schema: Any,
    writer: Any,
) -> tuple[Any, Any]:
    data = {name: [_parquet_value(row.get(name)) for row in batch] for name in columns}
    if schema is None:
        fields = []
        for name in columns:
            inferred = pa.array(data[name]).type
            fields.append(pa.field(name, pa.string() if pa.types.is_null(inferred) else inferred))
        schema = pa.schema(fields)
    table = pa.Table.from_pydict(data, schema=schema)
    if writer is None:
        writer = pq.ParquetWriter(
            str(temp), schema, compression="zstd", write_statistics=True, store_schema=True
        )
    writer.write_table(table)
    return schema, writer


def _parquet_value(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    return value


class RejectsWriter:
    """Rejected rows to a CSV (file, row, column, value, reason), atomically, with a count.

    Use as a context manager and pass the instance as ``on_reject``.
    """

    def __init__(self, target: str | Path, *, csv_guard: bool = True) -> None:
        self.target = Path(target)
        self.csv_guard = csv_guard  # every column is text: file names, values, reasons from the data
        self.count = 0
        self._atomic: contextlib.AbstractContextManager[Path] | None = None
        self._handle: IO[str] | None = None
        self._writer: _CsvOut | None = None

    def __enter__(self) -> RejectsWriter:
        self._atomic = atomic_path(self.target)
        temp = self._atomic.__enter__()
        self._handle = open(temp, "w", encoding="utf-8", newline="")
        self._writer = _CsvOut(self._handle)
        self._writer.writerow(REJECT_COLUMNS)
        return self

    def __call__(self, reject: Reject) -> None:
        assert self._writer is not None, "use RejectsWriter as a context manager"
        cells = [reject.file, str(reject.row), reject.column or "", reject.value or "", reject.reason]
        self._writer.writerow([guard_cell(c) for c in cells] if self.csv_guard else cells)
        self.count += 1

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._handle is not None and self._atomic is not None
        self._handle.close()
        return self._atomic.__exit__(*exc)
