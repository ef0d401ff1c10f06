"""Stage 1 of the SQL batch path: DuckDB itself reads regular files; others go through engine.io."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from engine.sql.inputs import ROW, Inputs, Renumber, Scanned, forget
from tests.export_factory import LEAD_COLUMNS, make_rows, write_csv


def _numbered(inputs: Inputs, scanned: Scanned) -> list[tuple[object, ...]]:
    """(row number, lead_id, title) per row, in order; a lazy CSV scan (no ``ROW`` column
    yet) copied and numbered first, as the conversion does when it cannot keep the order."""
    if scanned.lazy is not None:
        inputs.copy_scan(scanned)
    return inputs.con.execute(f"SELECT {ROW}, lead_id, title FROM t ORDER BY {ROW}").fetchall()


def _scan(path: Path, encoding: str | None = None) -> tuple[bool, list[tuple[object, ...]], list[Path]]:
    con = duckdb.connect()
    with Inputs(con) as inputs:
        scanned = inputs.scan(path, "t", encoding, ["lead_id", "title"])
        rows = _numbered(inputs, scanned)
        temporary = list(inputs._temporary)
        assert all(p.exists() for p in temporary)
    assert not any(p.exists() for p in temporary)  # removed when the run ends
    return scanned.by_duckdb, rows, temporary


def test_regular_csv_is_read_by_duckdb_with_line_numbers(tmp_path: Path) -> None:
    leads, _ = make_rows(30)
    by_duckdb, rows, temporary = _scan(write_csv(tmp_path / "l.csv", LEAD_COLUMNS, leads))
    assert by_duckdb and not temporary
    assert [r[0] for r in rows] == list(range(2, 32)) and rows[0][1] == "L00001"


def test_cp932_is_transcoded_to_a_temporary_utf8_copy(tmp_path: Path) -> None:
    leads, _ = make_rows(30)
    path = write_csv(tmp_path / "l.csv", LEAD_COLUMNS, leads, encoding="cp932")
    by_duckdb, rows, temporary = _scan(path)
    assert by_duckdb and len(temporary) == 1
    assert {r[2] for r in rows} >= {"部長", "学生"}


def test_blank_lines_and_quoted_newlines_fall_back_to_engine_io_once_numbers_matter(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text('lead_id,title\nA,x\n\nB,"two\nlines"\nC,y\n', encoding="utf-8")
    con = duckdb.connect()
    with Inputs(con) as inputs:
        scanned = inputs.scan(path, "t", None, ["lead_id", "title"])
        # DuckDB's rows are engine.io's; only the numbers are off, and nothing has needed them yet
        assert scanned.by_duckdb and scanned.unverified is not None
        assert [r[1:] for r in _numbered(inputs, scanned)] == [("A", "x"), ("B", "two\nlines"), ("C", "y")]
        with pytest.raises(Renumber):  # a row is rejected: its number must be its line
            inputs.numbered(scanned, 3)
        again = inputs.scan(path, "t", None, ["lead_id", "title"])
        assert not again.by_duckdb
        rows = _numbered(inputs, again)
    assert rows == [(2, "A", "x"), (4, "B", "two\nlines"), (6, "C", "y")]


def test_one_line_per_row_keeps_duckdb_numbers_when_checked(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("lead_id,title\r\nA,x\r\nB,y\r\n", encoding="utf-8")
    con = duckdb.connect()
    with Inputs(con) as inputs:
        scanned = inputs.scan(path, "t", None, ["lead_id", "title"])
        inputs.numbered(scanned, 2)  # no Renumber: the lines are the rows
        assert scanned.by_duckdb and scanned.unverified is None and not inputs.careful


@pytest.mark.parametrize("megabytes", [0.1, 3, 11.6, 117, 300])
def test_a_file_under_a_few_duckdb_buffers_is_read_in_a_piece_per_thread_and_more(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, megabytes: float) -> None:
    """DuckDB reads a CSV buffer on one thread: a file of a few buffers (the 100k-lead
    file is 11.6 MB, DuckDB's buffer 32 MiB) gets buffers of an eighth of it on 2 cores,
    no smaller than a line may be long; a small or a large file keeps DuckDB's own."""
    from engine.sql import inputs

    monkeypatch.setattr(inputs.os, "cpu_count", lambda: 2)
    path = tmp_path / "f.csv"
    with open(path, "wb") as handle:
        handle.truncate(int(megabytes * 1e6))  # sparse: only its size matters
    size = path.stat().st_size
    buffer = inputs._buffer_size(path)
    if size < 2 * inputs._SMALLEST_BUFFER or size >= 8 * inputs._DUCKDB_BUFFER:
        assert buffer is None
    else:
        assert buffer is not None and inputs._SMALLEST_BUFFER <= buffer < inputs._DUCKDB_BUFFER
        assert size / buffer >= 2 and (size / buffer > 7 or buffer == inputs._SMALLEST_BUFFER)
    monkeypatch.setattr(inputs, "CSV_BUFFER_SIZE", 1 << 15)
    assert inputs._buffer_size(path) == 1 << 15


def test_forget_drops_tables_and_views_by_their_kind_and_skips_the_missing() -> None:
    """``forget`` drops each name as what it is (a table, a view, nothing), so a stage can
    make the name anew as either kind."""
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE kept AS SELECT 1 AS a")
    con.execute("CREATE TEMP TABLE t AS SELECT 1 AS a")
    con.execute("CREATE TEMP VIEW v AS SELECT * FROM kept")
    forget(con, "v", "missing", "t")
    names = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert names == {"kept"}
    con.execute("CREATE TEMP VIEW t AS SELECT 2 AS a")  # the name is free for the other kind
    con.execute("CREATE TEMP TABLE v AS SELECT 3 AS a")
    forget(con, "t", "v")
    assert con.execute("SELECT count(*) FROM information_schema.tables").fetchall()[0][0] == 1
