"""engine.sql.decisions: DuckDB's COPY writes the bytes engine.io.writers writes.

Hostile cells (quotes, delimiters, newlines, a bare CR, formulas, numbers that look
like formulas, Unicode digits) and awkward floats through both writers, CSV and TSV,
with and without the formula guard.
"""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from engine.batch import DECISION_COLUMNS, DECISION_TYPES, NOT_TEXT, Summary
from engine.io import write_cells
from engine.io.writers import format_cell
from engine.sql import decisions

TEXTS = ["plain", "", "a,b", 'say "hi"', "two\nlines", "bare\rreturn", "=SUM(A1)", "+81", "-3.5", "-3.5x",
         "@home", "\tindent", "\rstart", "'quoted", "１２", "-１２", "日本語, yes",
         "tab\there", "x\r\ny", None]
FLOATS = [0.0, -0.0, 1.0, 12.5, -999987.5, 1e16, 1e-05, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, -1e22,
          123456789012345.67, math.inf, -math.inf, None]


def _rows(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {}
        for name in DECISION_COLUMNS:
            kind = DECISION_TYPES[name]
            if kind == "float64":
                row[name] = rng.choice([*FLOATS, rng.uniform(-1e6, 1e6),
                                        struct.unpack("d", rng.getrandbits(64).to_bytes(8, "little"))[0]])
                if isinstance(row[name], float) and math.isnan(row[name]):
                    row[name] = 0.5
            elif kind == "bool":
                row[name] = rng.choice([True, False, None])
            else:
                row[name] = rng.choice(TEXTS)
        rows.append(row)
    return rows


def _table(con: Any, rows: list[dict[str, Any]]) -> None:
    types = {"float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    data = pa.table({name: pa.array([r[name] for r in rows], types[DECISION_TYPES[name]])
                     for name in DECISION_COLUMNS} | {"__row": pa.array(range(2, len(rows) + 2), pa.int64())})
    con.register("rows_arrow", data)
    con.execute(f"CREATE TEMP TABLE {decisions.TABLE} AS SELECT * FROM rows_arrow ORDER BY random()")


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@pytest.mark.parametrize("guard", [True, False])
def test_copy_writes_the_python_writers_bytes(tmp_path: Path, suffix: str, guard: bool) -> None:
    rows = _rows(3000, seed=len(suffix) + guard)
    con = duckdb.connect()
    _table(con, rows)  # stored shuffled: the file must still come out in __row order
    decisions.write(con, tmp_path / f"duck{suffix}", guard)
    cells = ([format_cell(row[name]) for name in DECISION_COLUMNS] for row in rows)
    write_cells(tmp_path / f"python{suffix}", DECISION_COLUMNS, cells, raw_columns=NOT_TEXT, csv_guard=guard)
    assert (tmp_path / f"duck{suffix}").read_bytes() == (tmp_path / f"python{suffix}").read_bytes()


def test_no_rows_is_a_header(tmp_path: Path) -> None:
    con = duckdb.connect()
    _table(con, [])
    decisions.write(con, tmp_path / "d.csv", True)
    assert (tmp_path / "d.csv").read_text() == ",".join(DECISION_COLUMNS) + "\n"


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@pytest.mark.parametrize("guard", [True, False])
def test_plain_rows_and_hostile_rows_in_one_file(tmp_path: Path, suffix: str, guard: bool) -> None:
    """Most rows of a real export are plain (their line is the cells joined); one cell in
    twenty hostile, every kind of it, puts both spellings in one file, side by side."""
    rng = random.Random(7 + guard)
    plain = {"string": ["stage", "", "L0000123", "inside_sales", "2026-11-01T00:00:00+00:00", "日本語",
                        "x.y@z"],
             "float64": [0.0, 30.0, 90.73, 1e16, None], "bool": [True, False, None]}
    rows = _rows(2000, seed=11)
    for row in rows:
        for name in DECISION_COLUMNS:
            if rng.random() > 0.05:  # else the hostile cell _rows drew stays
                row[name] = rng.choice(plain[DECISION_TYPES[name]])
    con = duckdb.connect()
    _table(con, rows)
    decisions.write(con, tmp_path / f"duck{suffix}", guard)
    cells = ([format_cell(row[name]) for name in DECISION_COLUMNS] for row in rows)
    write_cells(tmp_path / f"python{suffix}", DECISION_COLUMNS, cells, raw_columns=NOT_TEXT, csv_guard=guard)
    assert (tmp_path / f"duck{suffix}").read_bytes() == (tmp_path / f"python{suffix}").read_bytes()
    lines = (tmp_path / f"duck{suffix}").read_text(encoding="utf-8").splitlines()
    d = "\t" if suffix == ".tsv" else ","
    unquoted = [line for line in lines[1:] if '"' not in line and line.count(d) == len(DECISION_COLUMNS) - 1]
    assert len(unquoted) > 100


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@pytest.mark.parametrize("guard", [True, False])
@pytest.mark.parametrize("spoiler", [None, "a,b", "a\tb", "=cmd", "-x", "x\ry", 'say "hi"'])
def test_columns_of_few_values_are_checked_once_per_value(tmp_path: Path, suffix: str, guard: bool,
                                                          spoiler: str | None) -> None:
    """The playbook's names (stages, teams, rule ids) are checked once per distinct value,
    not in every row's test; one value needing care (``spoiler``, in one row) keeps its
    column in the test, so the bytes stay the Python writer's either way."""
    rng = random.Random(3)
    names = ["mql", "inside_sales", "exclusion:competitor;stage:lead", "", "a-b_c", "日本語", "-3.5"]
    plain = {"string": ["", "L0000123", "2026-11-01T00:00:00+00:00", "x.y@z"], "float64": [0.0, 90.73, None],
             "bool": [True, None]}
    rows = _rows(1500, seed=5)  # hostile cells everywhere, and
    for i, row in enumerate(rows):
        for name in DECISION_COLUMNS:
            if name in decisions.FEW_VALUES:
                row[name] = rng.choice(names)
            elif i % 2 or i == 700:  # every other row plain but for its names
                row[name] = rng.choice(plain[DECISION_TYPES[name]])
    if spoiler is not None:
        rows[700]["stage"] = spoiler
    con = duckdb.connect()
    _table(con, rows)
    d = "\t" if suffix == ".tsv" else ","
    checked = decisions._plain_columns(con, list(decisions.FEW_VALUES), d, guard)
    needs_care = spoiler is not None and (d in spoiler or '"' in spoiler or "\r" in spoiler
                                          or (guard and spoiler[0] in "=-"))
    assert checked == set(decisions.FEW_VALUES) - ({"stage"} if needs_care else set())
    decisions.write(con, tmp_path / f"duck{suffix}", guard)
    cells = ([format_cell(row[name]) for name in DECISION_COLUMNS] for row in rows)
    write_cells(tmp_path / f"python{suffix}", DECISION_COLUMNS, cells, raw_columns=NOT_TEXT, csv_guard=guard)
    assert (tmp_path / f"duck{suffix}").read_bytes() == (tmp_path / f"python{suffix}").read_bytes()


@pytest.mark.parametrize("combinations", [decisions.COMBINATIONS, 4])
def test_distinct_values_are_each_columns_whether_read_together_or_apart(
        monkeypatch: pytest.MonkeyPatch, combinations: int) -> None:
    """Each column's distinct values, NULL among them, are the same read as the distinct
    combinations of all the columns or, past ``COMBINATIONS`` of them, column by column."""
    monkeypatch.setattr(decisions, "COMBINATIONS", combinations)
    rng = random.Random(8)
    names = ["stage", "route", "rules"]
    values = {"stage": ["mql", "sql", None], "route": ["inside_sales", ""], "rules": ["a;b", "c", "日本語"]}
    rows = _rows(300, seed=9)
    for row in rows:
        for name in names:
            row[name] = rng.choice(values[name])
    con = duckdb.connect()
    _table(con, rows)
    found = decisions._distinct_values(con, names)
    assert {name: set(found[name]) for name in names} == {name: set(values[name]) for name in names}
    assert all(len(found[name]) == len(values[name]) for name in names)  # each value once


def test_the_summary_counts_each_value_first_seen_first_and_skips_no_reason() -> None:
    """``summarize``'s one statement of grouping sets counts as ``record_decision`` does:
    the total, each stage and route, each exclusion and recycle reason but the empty one,
    new keys in the order of their first row (the table itself is stored shuffled)."""
    rng = random.Random(4)
    rows = _rows(400, seed=6)
    for row in rows:
        row["stage"] = rng.choice(["sql", "lead", "mql", None])
        row["route"] = rng.choice(["field_sales", "none", "inside_sales"])
        row["excluded"] = rng.choice(["", "", "student", "competitor", None])
        row["recycle_reason"] = rng.choice(["", "lost", "no_budget"])
    con = duckdb.connect()
    _table(con, rows)
    summary = Summary(playbook="pb", as_of="x", output="out.csv", rejects_file="r.csv", queues_dir=None)
    summary.stages["mql"] = 5  # a key the run starts with keeps its place and adds up
    decisions.summarize(con, summary)
    expected: dict[str, dict[str, int]] = {"stage": {"mql": 5}, "route": {}, "excluded": {},
                                           "recycle_reason": {}}
    for row in rows:
        for column, counts in expected.items():
            if row[column] is not None and (row[column] != "" or column in ("stage", "route")):
                counts[row[column]] = counts.get(row[column], 0) + 1
    found = {"stage": summary.stages, "route": summary.routes, "excluded": summary.excluded,
             "recycle_reason": summary.recycled}
    assert {k: list(v.items()) for k, v in found.items()} == {k: list(v.items()) for k, v in expected.items()}
    assert summary.decided == len(rows)


def test_columns_of_few_values_are_output_columns() -> None:
    assert set(decisions.FEW_VALUES) <= set(DECISION_COLUMNS) - NOT_TEXT


#: A CSV with the formula guard and a TSV without: between them the values below meet each
#: delimiter and the guard (two runs a value rather than four: the suite's 10 minutes).
PAIRS = [(".csv", True), (".tsv", False)]


@pytest.mark.parametrize(("suffix", "guard"), PAIRS)
@pytest.mark.parametrize("value", ["acme", "", "o'brien", "a,b", "a\tb", "=cmd", "-3.5", 'say "hi"', "x\ry"])
def test_columns_of_one_value_are_literals_checked_once(tmp_path: Path, suffix: str, guard: bool,
                                                        value: str) -> None:
    """Columns the query gives one value (``constants``) are literals of the view, and the
    CSV's row test leaves them out only when that value needs no care: the bytes stay
    the Python writer's for every value, hostile ones too."""
    constants: dict[str, Any] = {"account": value, "account_primary": "", "target_lead": True,
                                 "due": None, "recycle_until": None, "overdue_since": None}
    rng = random.Random(13)
    plain = {"string": ["", "L0000123", "x.y@z"], "float64": [0.0, 90.73, None], "bool": [True, None]}
    rows = _rows(1200, seed=17)
    for i, row in enumerate(rows):
        for name in DECISION_COLUMNS:
            if i % 3 and name not in constants:  # two rows in three plain
                row[name] = rng.choice(plain[DECISION_TYPES[name]])
    con = duckdb.connect()
    types = {"float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    stored = [name for name in DECISION_COLUMNS if name not in constants and name != "as_of"]
    con.register("rows_arrow", pa.table({name: pa.array([r[name] for r in rows], types[DECISION_TYPES[name]])
                                         for name in stored}
                                        | {"__row": pa.array(range(2, len(rows) + 2), pa.int64())}))
    fixed = decisions.make_table(con, "(SELECT * FROM rows_arrow ORDER BY random())",
                                 "2026-11-01T09:00:00+09:00", "Asia/Tokyo", has_row=True, constants=constants)
    stored_columns = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                                f"WHERE table_name = '{decisions.STORED}'").fetchall()}
    assert not stored_columns & set(constants) and "as_of" not in stored_columns
    d = "\t" if suffix == ".tsv" else ","
    needs_care = d in value or '"' in value or "\r" in value or (guard and value[:1] == "=")
    checked = decisions._plain_columns(duckdb.connect(), ["account", "account_primary"], d, guard, fixed)
    assert checked == {"account_primary"} | (set() if needs_care else {"account"})  # known: nothing read
    lines = decisions._csv_lines(con, d, guard, fixed)
    assert lines is not None  # known cells are literals of the line, not columns read per row
    assert '"account_primary"' not in lines and '"target_lead"' not in lines and '"as_of"' not in lines
    assert ('"account"' in lines) == needs_care
    decisions.write(con, tmp_path / f"duck{suffix}", guard, fixed)
    for row in rows:
        row.update(constants, as_of="2026-11-01T09:00:00+09:00")
    cells = ([format_cell(row[name]) for name in DECISION_COLUMNS] for row in rows)
    write_cells(tmp_path / f"python{suffix}", DECISION_COLUMNS, cells, raw_columns=NOT_TEXT, csv_guard=guard)
    assert (tmp_path / f"duck{suffix}").read_bytes() == (tmp_path / f"python{suffix}").read_bytes()


def test_known_cells_and_their_delimiters_are_one_literal() -> None:
    """A run of known cells between two varying ones is one literal, delimiters and an
    apostrophe included; a line with no known cell is its columns joined."""
    assert decisions._joined([None, "a", "", None, "o'b"], ",") == "concat(__r0, ',a,,', __r3, ',o''b')"
    assert decisions._joined(["x", None, None], "\t") == "concat('x\t', __r1, '\t', __r2)"
    assert decisions._joined([None, None], ",") == "concat(__r0, ',', __r1)"


@pytest.mark.parametrize(("suffix", "guard"), PAIRS)
@pytest.mark.parametrize("spoiler", [None, "a,b", "a\tb", 'say "hi"', "two\nlines", "x\ry", "=cmd", "-3.5",
                                     "@home"])
def test_a_file_of_plain_cells_is_the_cells_joined(tmp_path: Path, suffix: str, guard: bool,
                                                   spoiler: str | None) -> None:
    """Every text column is checked over all its cells once: when none needs care the
    lines are the cells joined, with no row test (issue #17); one cell needing care, or
    seeming to (a guarded ``-3.5``), keeps its column in the row's test. The bytes are
    the Python writer's either way."""
    rng = random.Random(21)
    plain = {"string": ["", "L0000123", "2026-11-01T00:00:00+00:00", "x.y@z", "日本語", "mql"],
             "float64": [0.0, 90.73, -3.5, 1e16, None], "bool": [True, False, None]}
    rows = [{name: rng.choice(plain[DECISION_TYPES[name]]) for name in DECISION_COLUMNS} for _ in range(800)]
    if spoiler is not None:
        rows[400]["lead_id"] = spoiler
    con = duckdb.connect()
    _table(con, rows)
    d = "\t" if suffix == ".tsv" else ","
    texts = [name for name in DECISION_COLUMNS if DECISION_TYPES[name] == "string"]
    checked = decisions._plain_columns(con, texts, d, guard)
    spoiled = spoiler is not None and (d in spoiler or '"' in spoiler or "\n" in spoiler or "\r" in spoiler
                                       or (guard and spoiler[0] in "=-@"))
    assert checked == set(texts) - ({"lead_id"} if spoiled else set())
    lines = decisions._csv_lines(con, d, guard, {})
    assert lines is not None and ("__plain" in lines) == spoiled
    decisions.write(con, tmp_path / f"duck{suffix}", guard)
    cells = ([format_cell(row[name]) for name in DECISION_COLUMNS] for row in rows)
    write_cells(tmp_path / f"python{suffix}", DECISION_COLUMNS, cells, raw_columns=NOT_TEXT, csv_guard=guard)
    assert (tmp_path / f"duck{suffix}").read_bytes() == (tmp_path / f"python{suffix}").read_bytes()
