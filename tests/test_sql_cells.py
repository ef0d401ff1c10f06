"""engine.sql.cells: the SQL half of a conversion gives engine.io's answer on every cell.

Cells near the edges of the SQL fast paths (whitespace of every kind at either end, ISO
8601 shapes with and without 'T', 'Z' or an offset, impossible dates and times, a DST
change) converted in DuckDB and by ``make_converter``: the same value or reject reason.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.io import FieldSpec, cell_forms, load_mapping
from engine.io.convert import ConversionError, make_converter
from engine.io.mapping import with_timezone
from engine.sql import cells as sql_cells
from engine.sql.cells import Cells


@pytest.fixture(autouse=True, params=[0, 10_000], ids=["joined", "inlined"])
def odd_cells(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test twice: the odd cells looked up as a joined table, and written into the query."""
    monkeypatch.setattr(sql_cells, "INLINE_LIMIT", request.param)

DATES = ["2026-09-10", "2026-03-08", "2026-03-29", "2026-11-01", "2026-02-30", "2026-13-01", "0999-01-01"]
TIMES = ["", "T22:20:31", " 22:20:31", "T01:30", "T02:30:00", "T24:00:00", "T23:59:60", "T10:00:00.123",
         "T10:00:00.123456", "T10:00:00.1"]
ZONES = ["", "Z", "+09:00", "-03:30", "+24:00", "z"]
PADS = ["", " ", "\u3000", "\t", "\u00a0", "x"]


def _cells() -> list[str]:
    shapes = [d + t + z for d, t, z in itertools.product(DATES, TIMES, ZONES) if t or not z]
    return shapes + [p + s + q for s in shapes[:40] for p, q in itertools.product(PADS, PADS) if p or q]


def _convert(cells: list[str], spec: FieldSpec, zone: str) -> list[tuple[Any, str | None]]:
    mapping = with_timezone(load_mapping("canonical"), zone)
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    con.register("cells_arrow", pa.table({"c": pa.array(cells, pa.string()),
                                          "i": pa.array(range(len(cells)), pa.int64())}))
    con.execute("CREATE TEMP TABLE t AS SELECT * FROM cells_arrow")
    sql = Cells(con, "t", mapping)
    converted = sql.field(spec, True)
    sql.materialize([f"{converted.value} AS v", f"{converted.reason} AS r", "i"], "out")
    return [(v, r) for v, r, _ in con.execute("SELECT v, r, i FROM out ORDER BY i").fetchall()]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Europe/London"])
def test_timestamps_and_text_convert_as_engine_io_converts(zone: str) -> None:
    cells = _cells()
    mapping = with_timezone(load_mapping("canonical"), zone)
    for spec in (FieldSpec(column="c", type="datetime"), FieldSpec(column="c")):
        python = make_converter(spec, mapping)
        for cell, (value, reason) in zip(cells, _convert(cells, spec, zone), strict=True):
            try:
                expected, why = python(cell), None
            except ConversionError as error:
                expected, why = None, str(error)
            if isinstance(expected, datetime):  # the instant (DuckDB hands it back in its zone)
                expected, value = expected.timestamp(), value.timestamp() if value is not None else None
            assert (value, reason) == (expected, why), cell


_NUMBERS = st.one_of(
    st.from_regex(cell_forms.SQL_NUMBER, fullmatch=True),
    st.from_regex(cell_forms.SQL_THOUSANDS, fullmatch=True),
    st.from_regex(cell_forms.SQL_INTEGER, fullmatch=True),
    # just outside the fast forms: the definition answers these, SQL must hand them over
    st.from_regex(r"[+-]?[0-9]{14,18}(\.[0-9]{14,18})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.from_regex(r"[ \u3000]?[+-]?[0-9０-９,.]{1,8}[ \u00a0]?", fullmatch=True),
    st.sampled_from(["", "-", ".", "1e", "1,00", "1,000,", "nan", "inf", "１２０", "0x10", "1_000"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NUMBERS, min_size=1, max_size=60))
def test_numbers_convert_as_engine_io_converts(cells: list[str]) -> None:
    """Every fast number form (engine.io.cell_forms) and its near misses: SQL gives the
    definition's value or reject reason, to the bit."""
    mapping = with_timezone(load_mapping("canonical"), "UTC")
    for kind in ("number", "integer"):
        spec = FieldSpec(column="c", type=kind)
        python = make_converter(spec, mapping)
        for cell, (value, reason) in zip(cells, _convert(cells, spec, "UTC"), strict=True):
            try:
                expected, why = python(cell), None
            except ConversionError as error:
                expected, why = None, str(error)
            if expected is not None:
                expected = float(expected)
            assert (value, reason) == (expected, why), (kind, cell)


def test_only_a_plan_of_order_keeping_operators_is_trusted_with_row_order(tmp_path: Any) -> None:
    """The straight read numbers rows by their order, so it runs only when the conversion's
    plan is selects, filters and the CSV reader: DuckDB makes a hash join of an IN list of
    12 constants, and a join does not keep order."""
    from engine.sql.cells import _keeps_order

    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    con = duckdb.connect()
    scan = f"read_csv('{path}', all_varchar = true)"
    listed = ", ".join(f"'v{i}'" for i in range(12))
    assert _keeps_order(con, f"SELECT upper(a) AS u, b FROM {scan} WHERE b <> 'z'")
    assert _keeps_order(con, f"SELECT CASE a WHEN '1' THEN TRUE ELSE FALSE END FROM {scan}")
    assert not _keeps_order(con, f"SELECT a IN ({listed}) FROM {scan}")
    assert not _keeps_order(con, f"SELECT a, count(*) FROM {scan} GROUP BY a")


_ALPHABET = "0123456789 \t.+-:TZtz\u00a0\u3000０a/"


@st.composite
def _utc_seconds(draw: st.DrawFn) -> str:
    """A cell of engine.io.cell_forms.SQL_UTC_SECONDS, or one to three edits away from one."""
    cell = draw(st.from_regex(cell_forms.SQL_UTC_SECONDS, fullmatch=True))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(cell)))
        char = draw(st.sampled_from(_ALPHABET))
        edit = draw(st.sampled_from(["replace", "insert", "delete"]))
        if edit == "replace" and at < len(cell):
            cell = cell[:at] + char + cell[at + 1:]
        elif edit == "insert":
            cell = cell[:at] + char + cell[at:]
        else:
            cell = cell[:at] + cell[at + 1:]
    return cell


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_utc_seconds(), st.sampled_from(
    ["2026-09-10T24:00:00Z", "2026-09-10T 2:20:31Z", "2026-09-10T22:20:3.Z", " 026-09-10T22:20:31Z",
     "0999-09-10T22:20:31Z", "2026-02-29T10:00:00Z", "2024-02-29T10:00:00Z", "2026-09-10T23:59:60Z"])),
    min_size=1, max_size=60))
def test_utc_seconds_without_a_regexp_convert_as_engine_io_converts(cells: list[str]) -> None:
    """The UTC-to-the-second form SQL checks with LIKE and strptime instead of a regexp
    (issue #17), and cells a few edits from it: the definition's instant or reason."""
    for zone in ("UTC", "Asia/Tokyo"):
        mapping = with_timezone(load_mapping("canonical"), zone)
        spec = FieldSpec(column="c", type="datetime")
        python = make_converter(spec, mapping)
        for cell, (value, reason) in zip(cells, _convert(cells, spec, zone), strict=True):
            try:
                expected, why = python(cell).timestamp(), None
            except ConversionError as error:
                expected, why = None, str(error)
            assert (value.timestamp() if value is not None else None, reason) == (expected, why), cell


@pytest.mark.parametrize("odd_column", [0, 7, 8, 10])
def test_an_odd_cell_is_found_whichever_flag_bit_it_raises(odd_column: int) -> None:
    """The first pass keeps the assumed columns' flags as bits, eight to a column: an odd
    cell (full-width digits) in any of eleven number columns is looked up, not lost."""
    names = [f"c{i}" for i in range(11)]
    rows = [[str(r * 10 + i) for i in range(11)] for r in range(5)]
    rows[3][odd_column] = "１２０"
    con = duckdb.connect()
    con.register("cells_arrow", pa.table({n: [row[i] for row in rows] for i, n in enumerate(names)}))
    con.execute("CREATE TEMP TABLE t AS SELECT * FROM cells_arrow")
    mapping = with_timezone(load_mapping("canonical"), "UTC")
    sql = Cells(con, "t", mapping)
    values = [sql.field(FieldSpec(column=n, type="number"), True).value for n in names]
    sql.materialize([f"{v} AS {n}" for v, n in zip(values, names, strict=True)], "out")
    got = con.execute(f"SELECT {', '.join(names)} FROM out").fetchall()
    python = make_converter(FieldSpec(column="c", type="number"), mapping)
    assert [list(row) for row in got] == [[float(python(cell)) for cell in row] for row in rows]
    assert got[3][odd_column] == 120.0


def test_text_against_several_null_markers_converts_as_engine_io_converts() -> None:
    """Null markers of different widths, cases and scripts: the SQL tests that skip
    scanning a cell (byte length first) decide exactly what casefold decides."""
    markers = ["", "N/A", "null", "なし", "-", "ß"]
    mapping = with_timezone(load_mapping("canonical"), "UTC").model_copy(update={"null_values": markers})
    cells = [variant for marker in markers for variant in (
        marker, marker.upper(), marker.lower(), marker.title(), f" {marker} ", f"\u3000{marker}",
        f"{marker}x")]
    cells += ["ＮＵＬＬ", "nuLL", "ss", "SS", "ẞ", "n/ａ", "ナシ", "NULLNULL", "x" * 30, "é", "ſ"]
    spec = FieldSpec(column="c")
    python = make_converter(spec, mapping)
    con = duckdb.connect()
    con.register("cells_arrow", pa.table({"c": pa.array(cells, pa.string()),
                                          "i": pa.array(range(len(cells)), pa.int64())}))
    con.execute("CREATE TEMP TABLE t AS SELECT * FROM cells_arrow")
    sql = Cells(con, "t", mapping)
    converted = sql.field(spec, True)
    sql.materialize([f"{converted.value} AS v", "i"], "out")
    got = [v for v, _ in con.execute("SELECT v, i FROM out ORDER BY i").fetchall()]
    assert got == [python(cell) for cell in cells]
    assert got[cells.index("SS")] is None and got[cells.index("NULLNULL")] == "NULLNULL"


_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_TEXT = st.text(alphabet=st.sampled_from(
    _SPACES + "aZ!~ é\u2fff\u3001\u30de\u4e00\u90e8\u9577\U0001f600"), min_size=0, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXT, min_size=1, max_size=60))
def test_text_strips_as_engine_io_strips(cells: list[str]) -> None:
    """Text cells with every kind of whitespace, ASCII and not, at either end, and the
    characters around the fast checks' edges (``~``, U+3000/U+3001, CJK, an emoji): SQL's
    strip gives ``str.strip()``'s cell, or NULL where the definition says null."""
    mapping = with_timezone(load_mapping("canonical"), "UTC")
    spec = FieldSpec(column="c")
    python = make_converter(spec, mapping)
    for cell, (value, reason) in zip(cells, _convert(cells, spec, "UTC"), strict=True):
        assert (value, reason) == (python(cell), None), repr(cell)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=60))
def test_last_code_is_the_last_characters_code_point(cells: list[str | None]) -> None:
    """The plain tests' last character: its code point, 0 for an empty cell (answered
    without the call) and NULL for a missing one, whatever the character."""
    con = duckdb.connect()
    con.register("cells_arrow", pa.table({"c": pa.array(cells, pa.string()),
                                          "i": pa.array(range(len(cells)), pa.int64())}))
    got = [code for code, _ in con.execute(f"SELECT {sql_cells.last_code('c')}, i FROM cells_arrow "
                                           "ORDER BY i").fetchall()]
    assert got == [None if c is None else ord(c[-1]) if c else 0 for c in cells]


def test_strptime_reads_nothing_but_the_form_from_twenty_bytes_ending_in_z() -> None:
    """Why the UTC-seconds guard needs no LIKE of the template: on 20 bytes from a digit
    1-9 to a 'Z', DuckDB's strptime accepts only the form itself. Every cell one or two
    substitutions, or a deletion and an insertion, away from a time of the form: a DuckDB
    whose strptime grew lenient would fail here, not in a user's decisions."""
    import re

    form = re.compile(cell_forms.SQL_UTC_SECONDS)
    base = "2026-01-05T12:00:00Z"
    alphabet = "0123456789 \t.+-:TZtz/,\u00a0"
    cells = set()
    for i in range(20):
        for a in alphabet:
            one = base[:i] + a + base[i + 1:]
            cells.add(one)
            cells.update(one[:j] + b + one[j + 1:] for j in range(i + 1, 20) for b in "0 +-.:T")
        short = base[:i] + base[i + 1:]
        cells.update(short[:k] + a + short[k:] for k in range(20) for a in alphabet)
    shaped = [c for c in cells if len(c.encode()) == 20 and c.endswith("Z") and "1" <= c[0] <= "9"]
    assert len(shaped) > 20_000
    con = duckdb.connect()
    read = con.execute(f"SELECT c FROM (SELECT unnest(?) AS c) WHERE try_strptime(c, "
                       f"'{cell_forms.SQL_UTC_SECONDS_FORMAT}') IS NOT NULL", [shaped]).fetchall()
    assert len(read) > 100
    assert [c for (c,) in read if not form.match(c)] == []
