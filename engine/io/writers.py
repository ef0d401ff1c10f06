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
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from engine.io.errors import InputError, Reject
from engine.io.readers import file_format

PARQUET_BATCH_ROWS = 8192
REJECT_COLUMNS = ("file", "row", "column", "value", "reason")


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
    _fsync_dir(final.parent)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
) -> int:
    """Write ``rows`` (only ``columns``, in that order) to ``target``; return the row count.

    The format follows the extension. ``encoding="utf-8-sig"`` gives a CSV Excel opens
    correctly in Japanese locales.
    """
    kind = file_format(target)
    with atomic_path(target) as temp:
        if kind == "csv":
            return _write_csv(temp, columns, rows, encoding, Path(target).suffix.lower() == ".tsv")
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

    def writerow(self, cells: Sequence[str]) -> None:
        writer = self.quoted if "\r" in "".join(cells) else self.plain
        writer.writerow(cells)


def _write_csv(
    temp: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], encoding: str, tsv: bool
) -> int:
    # text cells as they are; the rest spelled by format_cell
    cells = ([v if type(v) is str else format_cell(v) for v in map(row.get, columns)] for row in rows)
    return _write_cells(temp, columns, cells, encoding, tsv)


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


def write_cells(target: str | Path, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """``write_rows`` for a CSV or TSV ``target`` whose rows are already text, one cell per
    column in order, spelled as :func:`format_cell` would (``Decision.to_cells``)."""
    if file_format(target) != "csv":
        raise ValueError(f"{target}: write_cells writes CSV or TSV only")
    with atomic_path(target) as temp:
        return _write_cells(temp, columns, rows, "utf-8", Path(target).suffix.lower() == ".tsv")


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

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
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
        self._writer.writerow(
            [reject.file, str(reject.row), reject.column or "", reject.value or "", reject.reason]
        )
        self.count += 1

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._handle is not None and self._atomic is not None
        self._handle.close()
        return self._atomic.__exit__(*exc)
