"""Stream the rows of an export, whatever its format, with the line a person would look at.

Every reader yields ``(row_number, {column: text or None})`` one row at a time so a file
of any size is read in bounded memory. Row numbers point into the file: CSV counts the
header as line 1 (so the first data row is 2, and a row with quoted newlines is numbered
by its first line); JSONL counts lines; Parquet counts rows from 1.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from engine.io.encoding import decode_error, detect_encoding, normalize_encoding
from engine.io.errors import InputError, Reject, RejectSink

Row = dict[str, str | None]

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
PARQUET_SUFFIXES = {".parquet", ".pq"}

#: Rows of a Parquet file converted per record batch: bounds memory, amortises overhead.
PARQUET_BATCH_ROWS = 8192

csv.field_size_limit(min(sys.maxsize, 1 << 28))


def file_format(path: str | Path) -> str:
    """``"csv"``, ``"jsonl"`` or ``"parquet"`` from the extension (``.gz`` is not supported)."""
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(
        f"cannot tell the format from the extension {suffix or '(none)'!r}",
        file=path,
        hint="name the file .csv, .tsv, .jsonl, .ndjson or .parquet",
    )


def read_rows(
    path: str | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    on_reject: RejectSink | None = None,
) -> Iterator[tuple[int, Row]]:
    """Yield ``(row_number, row)`` for each data row of ``path``.

    Rows that cannot be a row at all (JSONL line that is not an object, a CSV line with
    more or fewer values than the header has names) go to ``on_reject``; without a sink
    they raise :class:`InputError`.
    """
    if not Path(path).is_file():
        raise InputError("no such file", file=path)
    kind = file_format(path)
    if kind == "csv":
        return _read_csv(path, encoding, delimiter, on_reject)
    if kind == "jsonl":
        return _read_jsonl(path, encoding, on_reject)
    return _read_parquet(path)


def read_columns(
    path: str | Path, *, encoding: str | None = None, delimiter: str | None = None
) -> list[str] | None:
    """The column names of ``path``, or None for JSONL (whose keys may vary per line)."""
    if not Path(path).is_file():
        raise InputError("no such file", file=path)
    kind = file_format(path)
    if kind == "csv":
        return [name for name in read_header(path, encoding=encoding, delimiter=delimiter) if name]
    if kind == "parquet":
        with open_parquet(path) as parquet:
            return [str(name) for name in parquet.schema_arrow.names]
    return None


def read_header(path: str | Path, *, encoding: str | None = None, delimiter: str | None = None) -> list[str]:
    """A CSV file's cleaned header, unnamed columns included as ``""``: position i names
    value i of every row :func:`read_csv_lists` yields."""
    with _open_text(path, encoding) as text:
        reader = csv.reader(text, delimiter=_delimiter(path, delimiter))
        try:
            names = next(reader, [])
        except UnicodeDecodeError:
            raise decode_error(path, text.encoding) from None
        return _header(path, names)


def read_csv_lists(
    path: str | Path,
    header: list[str],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    on_reject: RejectSink | None = None,
) -> Iterator[tuple[int, list[str | None]]]:
    """Like :func:`read_rows` for CSV, but each row is a list aligned with ``header``.

    The fast path for callers that resolve column positions once per file (from
    :func:`read_header`) instead of building a dict per row. Blank lines, short and long
    rows are handled exactly as :func:`read_rows` does.
    """
    if not Path(path).is_file():
        raise InputError("no such file", file=path)
    rows = _read_csv_lists(path, header, encoding, delimiter, on_reject)
    next(rows)  # the header, found equal to ``header``
    return rows


def _delimiter(path: str | Path, delimiter: str | None) -> str:
    return delimiter or CSV_SUFFIXES.get(Path(path).suffix.lower(), ",")


def _open_text(path: str | Path, encoding: str | None) -> io.TextIOWrapper:
    codec = normalize_encoding(encoding) if encoding else detect_encoding(path)
    # newline="" hands \r\n and quoted newlines to the csv module untouched, as it requires.
    return open(path, encoding=codec, newline="", errors="strict")


def _header(path: str | Path, names: list[str]) -> list[str]:
    """Header names with a stray BOM and surrounding blanks removed.

    A name given more than once cannot say which of its cells is meant (HubSpot's
    "export all properties" repeats "Billing Contact"): every one of them is left
    unnamed, like a column without a name, which no reader reads. A mapping that needs
    such a name is told so by :func:`engine.io.records.check_columns`.
    """
    cleaned = [name.strip() for name in names]
    if cleaned:
        cleaned[0] = cleaned[0].lstrip("\ufeff").strip()
    repeated = _repeated(cleaned)
    return [name if name not in repeated else "" for name in cleaned] if repeated else cleaned


def _repeated(names: list[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in names:
        if name and name in seen:
            repeated.add(name)
        seen.add(name)
    return repeated


def repeated_names(
    path: str | Path, *, encoding: str | None = None, delimiter: str | None = None
) -> set[str]:
    """The names a CSV file's header gives more than once (left unnamed by :func:`read_header`)."""
    if not Path(path).is_file() or file_format(path) != "csv":
        return set()
    with _open_text(path, encoding) as text:
        try:
            names = next(csv.reader(text, delimiter=_delimiter(path, delimiter)), [])
        except (UnicodeDecodeError, csv.Error):
            return set()
    cleaned = [name.strip() for name in names]
    if cleaned:
        cleaned[0] = cleaned[0].lstrip("\ufeff").strip()
    return _repeated(cleaned)


def _read_csv(
    path: str | Path, encoding: str | None, delimiter: str | None, on_reject: RejectSink | None
) -> Iterator[tuple[int, Row]]:
    rows = _read_csv_lists(path, None, encoding, delimiter, on_reject)
    _, header = next(rows)
    # Columns with an empty name (a trailing comma on every line) carry nothing: skip them.
    keep = [(i, name) for i, name in enumerate(header) if name]
    for start, values in rows:
        yield start, {name: values[i] for i, name in keep}


def _read_csv_lists(
    path: str | Path,
    expected: list[str] | None,
    encoding: str | None,
    delimiter: str | None,
    on_reject: RejectSink | None,
) -> Iterator[tuple[int, list[str | None]]]:
    """``(1, header)``, then the data rows, each at least as wide as the header.

    Numbered by their first line; blank lines skipped; rows with fewer values than the
    header has names, or more non-blank ones, rejected. The row loop (``_padded_rows``, shared
    with :func:`csv_lists_at`) does as little as it can per row. ``expected`` is
    the header a caller resolved positions from: another one now is an error.
    """
    with _open_text(path, encoding) as text:
        # Any: its rows are list[str], which the padding below widens to list[str | None].
        reader: Any = csv.reader(text, delimiter=_delimiter(path, delimiter))
        try:
            header = _header(path, next(reader, []))
            if expected is not None and header != expected:
                raise InputError("the header changed while the file was being read", file=path, line=1)
            yield 1, [*header]
            yield from _padded_rows(path, reader, len(header), 0, text.encoding, delimiter, on_reject)
        except UnicodeDecodeError:
            raise decode_error(path, text.encoding) from None
        except csv.Error as error:
            raise InputError(f"malformed CSV: {error}", file=path, line=reader.line_num) from None


def csv_codec(path: str | Path, encoding: str | None) -> str:
    """The codec :func:`read_csv_lists` reads ``path`` with (given, else detected)."""
    return normalize_encoding(encoding) if encoding else detect_encoding(path)


def csv_delimiter(path: str | Path, delimiter: str | None) -> str:
    """The delimiter :func:`read_csv_lists` splits ``path`` on (given, else from the extension)."""
    return _delimiter(path, delimiter)


def csv_lists_at(
    path: str | Path,
    raw: IO[bytes],
    width: int,
    codec: str,
    line_base: int,
    delimiter: str | None,
    on_reject: RejectSink | None,
) -> Iterator[tuple[int, list[str | None]]]:
    """The data rows of ``path`` from ``raw``, a binary stream at a line start past the header.

    ``line_base`` lines come before it in the file. Rows, numbers, blank lines, long and
    short rows and errors are exactly those of :func:`read_csv_lists` (the same loop,
    numbered from ``line_base``): the columnar reader resumes the row path here when a
    part of the file needs it.
    """
    # Mid-file there is no BOM to drop, and a U+FEFF there is data: plain UTF-8.
    text = io.TextIOWrapper(raw, encoding="utf-8" if codec == "utf-8-sig" else codec, newline="",
                            errors="strict")
    reader: Any = csv.reader(text, delimiter=_delimiter(path, delimiter))
    try:
        yield from _padded_rows(path, reader, width, line_base, codec, delimiter, on_reject)
    except UnicodeDecodeError:
        raise decode_error(path, codec) from None
    except csv.Error as error:
        raise InputError(f"malformed CSV: {error}", file=path, line=line_base + reader.line_num) from None
    finally:
        text.detach()  # ``raw`` is the caller's to close


def _padded_rows(
    path: str | Path, reader: Any, width: int, line_base: int, codec: str, delimiter: str | None,
    on_reject: RejectSink | None,
) -> Iterator[tuple[int, list[str | None]]]:
    """The loop both CSV readers share: each row numbered by its first line (``line_base``
    lines precede the reader's); a row with fewer values than ``width``, or more non-blank
    ones, rejected; an open quote at the end of the file an error."""
    last_line = start = line_base + reader.line_num
    values: list[str | None]
    for values in reader:
        start = last_line + 1
        last_line = line_base + reader.line_num
        if (len(values) == width and width) or _usable(path, start, values, width, on_reject):
            yield start, values
    if last_line - start > 0:
        _check_closed_quote(path, codec, delimiter, start, last_line)


def _check_closed_quote(path: str | Path, codec: str, delimiter: str | None, start: int,
                        end: int) -> None:
    """The last row spans lines: make sure a quote was closed, not left open to the end.

    Python's csv reader takes an unterminated quote as a value running to the end of
    the file, silently swallowing every later row; a strict re-read of just that row
    tells the two apart.
    """
    with open(path, encoding=codec, newline="") as handle:
        lines = list(itertools.islice(handle, start - 1, end))
    try:
        list(csv.reader(io.StringIO("".join(lines)), delimiter=_delimiter(path, delimiter),
                        strict=True))
    except csv.Error:
        raise InputError(
            f"a quote opened on line {start} is never closed: lines {start}-{end} would be read "
            "as one value", file=path, line=start,
            hint="close the quote (or double a quote inside a quoted value as \"\")") from None


def _usable(
    path: str | Path, line: int, values: list[str | None], width: int, on_reject: RejectSink | None
) -> bool:
    """False for a blank line (skipped) or a row of the wrong width (rejected).

    A short row is rejected like a long one rather than padded: a value missing at the
    end of a line more likely means a broken export (a field cut short, a lost
    delimiter) than empty fields, and a padded row would be decided on shifted or
    empty cells without anyone knowing (issue #13, item 6).
    """
    count = len(values)
    if not values or (count == 1 and not (values[0] or "").strip() and width > 1):
        return False  # blank line
    if count < width:
        problem = f"the row has {count} value{'s' if count != 1 else ''} but the header has {width} names"
        _bad_row(path, line, problem, on_reject, ",".join(v or "" for v in values)[:200])
        return False
    if count > width and any((v or "").strip() for v in values[width:]):
        problem = f"the row has {count} values but the header has {width} names"
        _bad_row(path, line, problem, on_reject, ",".join(v or "" for v in values[width:])[:200])
        return False
    return True


def _bad_row(
    path: str | Path, line: int, problem: str, on_reject: RejectSink | None, value: str | None
) -> None:
    if on_reject is None:
        raise InputError(problem, file=path, line=line)
    on_reject(Reject(str(path), line, None, value, problem))


def _read_jsonl(
    path: str | Path, encoding: str | None, on_reject: RejectSink | None
) -> Iterator[tuple[int, Row]]:
    codec = normalize_encoding(encoding) if encoding else "utf-8-sig"
    with open(path, encoding=codec, newline="", errors="strict") as text:
        line_no = 0
        try:
            for line_no, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                row = _json_row(line)
                if isinstance(row, str):
                    _bad_row(path, line_no, row, on_reject, line.strip()[:200])
                    continue
                yield line_no, row
        except UnicodeDecodeError:
            raise decode_error(path, codec) from None


def _json_row(line: str) -> Row | str:
    """The row a JSONL line holds, or a string saying why it holds none."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        return f"not valid JSON: {error.msg} at character {error.pos + 1}"
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    return {str(key): to_text(value) for key, value in data.items()}


def to_text(value: Any) -> str | None:
    """A cell as text, the one representation mappings convert from; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def open_parquet(path: str | Path) -> Any:
    """The file as a ``pyarrow.parquet.ParquetFile``, or the InputError saying it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"not a readable Parquet file: {error}", file=path) from None


def _read_parquet(path: str | Path) -> Iterator[tuple[int, Row]]:
    parquet = open_parquet(path)
    number = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            names = [str(name) for name in batch.schema.names]
            columns = [column.to_pylist() for column in batch.columns]
            for i in range(batch.num_rows):
                number += 1
                yield (
                    number,
                    {name: to_text(col[i]) for name, col in zip(names, columns, strict=True)},
                )
