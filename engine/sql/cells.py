"""Stage 2 of the SQL batch path: a text cell → its typed value, or the reject reason, in SQL.

The Python path converts each cell with :func:`engine.io.convert.make_converter`. Doing
that per cell would throw away DuckDB's speed; re-implementing it in SQL would drift
(Unicode ``strip``/``casefold``, full-width digits, ``float()``'s grammar, the mapping's
``strptime`` formats, DST gaps). So each column is split in two:

* cells whose answer SQL gets exactly right by construction — plain ASCII numbers,
  plain ISO 8601 timestamps away from DST changes, text whose null test is decided by
  ASCII or by length — are converted by SQL;
* every other *distinct* cell is handed, once, to the Python path's own converter, and
  its answer (value or the reason text) is joined back. Odd cells are few and repeat
  (``'lots'``, ``'１２０'``, ``'Select'``), so this costs little and the values and
  reasons are the Python path's by definition.

:meth:`Cells.materialize` makes the converted table in one pass over the scanned cells
whenever it can (issue #17: each pass over 3M events costs about a second): a column
with no SQL form (event types, booleans) has its distinct cells converted first and, when
they are few, written into the query as a ``CASE``; a column with a SQL form is assumed
to have no odd cell, and the pass keeps a flag per column to prove it. Only when a flag
is up is the table made again, with those columns' odd cells looked up (inlined when
few, joined as a table when many).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from typing import Any

from engine.io import FieldSpec, Mapping
from engine.io.cell_forms import (
    SQL_INTEGER,
    SQL_ISO,
    SQL_NUMBER,
    SQL_OFFSET,
    SQL_THOUSANDS,
    SQL_UTC_SECONDS,
    SQL_UTC_SECONDS_FORMAT,
)
from engine.io.convert import ConversionError, make_converter, null_set
from engine.io.timestamps import get_timezone
from engine.sql.inputs import forget, literal, quote
from engine.sql.zones import changeover_days

#: SQL type of each mapping field type's value.
SQL_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "integer": "DOUBLE", "bool": "BOOLEAN",
             "datetime": "TIMESTAMPTZ"}

_NUMBER, _THOUSANDS, _INTEGER, _ISO, _OFFSET = SQL_NUMBER, SQL_THOUSANDS, SQL_INTEGER, SQL_ISO, SQL_OFFSET


#: Past the last whitespace character (U+3000, the ideographic space) none is one: a
#: cell starting or ending with such a character (CJK text) needs no regexp either.
_AFTER_SPACES = 0x3001


@cache
def _whitespace_class() -> str:
    """The characters ``str.strip()`` removes, as an RE2 class (Unicode, not just ASCII)."""
    chars = [c for c in map(chr, range(_AFTER_SPACES)) if c.isspace()]
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in chars) + "]"


def strip(cell: str) -> str:
    """``cell.strip()`` in SQL, with Python's definition of whitespace (regexp only when needed)."""
    ws = _whitespace_class()
    # nothing to strip (nearly every cell), or an empty cell (an optional column's usual
    # cell): no regexp
    return (f"CASE WHEN {unpadded(cell)} THEN {cell} WHEN strlen({cell}) = 0 THEN {cell} "
            f"WHEN regexp_matches({cell}, {literal(f'^{ws}|{ws}$')}) "
            f"THEN regexp_replace({cell}, {literal(f'^{ws}+|{ws}+$')}, '', 'g') ELSE {cell} END")


def _ascii(text: str) -> str:
    return f"(strlen({text}) = length({text}))"


def unpadded(cell: str, last: str = "") -> str:
    """The cell's first and last characters are printable ASCII or past every whitespace
    character (nearly every cell, CJK text included): ``strip`` leaves it as it is. The
    first character by comparison (strings compare bytewise, UTF-8 in code point order),
    far cheaper than ascii(); false for an empty cell. ``last``: a column holding the last
    character's code (:func:`last_code`), read twice here but computed once."""
    last = last or last_code(cell)
    return f"{starts_unpadded(cell)} AND ({last} BETWEEN 33 AND 126 OR {last} >= {_AFTER_SPACES})"


def starts_unpadded(cell: str) -> str:
    """:func:`unpadded`'s first half: the first character alone, compared bytewise (no scan
    of the cell); false for an empty cell."""
    return f"({cell} >= '!' AND {cell} < chr(127) OR {cell} >= chr({_AFTER_SPACES}))"


def last_code(cell: str) -> str:
    """The code point of the cell's last character (0 for an empty cell), for :func:`unpadded`.

    An empty cell is answered without the call (``ascii(substring('', -1))`` is 0 as well):
    most events' optional fields are empty (72% of the reference workload's content ids),
    and inside the events pass the guard took 30M events from 14.2 to 13.2 s of CPU,
    7.4 to 6.8 s wall (issue #17; measured there, not alone, where the call is cheap)."""
    return f"CASE WHEN strlen({cell}) = 0 THEN 0 ELSE ascii(substring({cell}, -1)) END"


def _is_null(text: str, nulls: frozenset[str]) -> str:
    """``text`` (stripped) is one of the null markers ``nulls``, decided by ASCII or by length."""
    ascii_nulls = sorted(n for n in nulls if n.isascii())
    if ascii_nulls == [""]:  # the usual markers: an empty cell only
        return f"(strlen({text}) = 0)"
    widest = max((len(n) for n in ascii_nulls), default=0)
    listed = ", ".join(literal(n) for n in ascii_nulls)
    # strlen (bytes, no scan) first: an ASCII cell longer than every marker is none
    return (f"(strlen({text}) <= {widest} AND {_ascii(text)} AND lower({text}) IN ({listed}))"
            if ascii_nulls else "FALSE")


def _not_marker(cell: str, nulls: frozenset[str], *forms: str) -> str:
    """Not a null marker: asked only when a marker has one of ``forms`` (all ASCII)."""
    ascii_nulls = sorted(n for n in nulls if n.isascii())
    if any(re.fullmatch(form, n, re.IGNORECASE) for form in forms for n in ascii_nulls):
        return f"lower({cell}) NOT IN ({', '.join(literal(n) for n in ascii_nulls)})"
    return "TRUE"


def _utc_seconds(cell: str, utc_ok: str) -> str:
    """The instant of a cell of the commonest form, UTC to the second (no regexp,
    engine.io.cell_forms.SQL_UTC_SECONDS), NULL for any other cell: strptime's own answer,
    as microseconds, is the instant (parsing the cell a second time with a cast, or casting
    TIMESTAMP to TIMESTAMPTZ, costs 2 s of CPU at 1M leads); a cell strptime refuses is NULL."""
    # 20 bytes from a digit 1-9 to a 'Z': strptime reads only the form then (a shorter field
    # would need a longer one, which it refuses; it skips blanks only at the ends), checked
    # over every cell a few edits away by tests/test_sql_cells.py; a LIKE of the template
    # cost as much as strptime itself
    utc = f"strlen({cell}) = 20 AND {cell} >= '1' AND {cell} < ':' AND suffix({cell}, 'Z') AND {utc_ok}"
    return (f"CASE WHEN {utc} THEN make_timestamptz(epoch_us(try_strptime({cell}, "
            f"{literal(SQL_UTC_SECONDS_FORMAT)}))) END")


def _text_valid(text: str, nulls: frozenset[str]) -> str:
    """``text`` (stripped) is surely not a null marker: not one of the ASCII ones, and
    longer than all of them (casefold never shortens; past 4 bytes a marker character is
    more characters, with no scan) or ASCII (where casefold is lower)."""
    longest = max((len(n) for n in nulls), default=-1)
    sure = f"(strlen({text}) > {4 * longest} OR {_ascii(text)})" if longest > 0 else "TRUE"
    return f"(NOT {_is_null(text, nulls)} AND {sure})"


@dataclass
class Converted:
    """SQL for one converted cell: its value, the reason it is rejected (NULL if not)."""

    value: str
    reason: str


@dataclass
class Plain:
    """A row every cell of which SQL converts the quick way, with no reject: ``test`` says
    whether a row is one (over the scanned cells and ``columns``, computed first), and
    ``values`` gives each select's value for it, by the select's alias. For such rows a
    streamed view (:meth:`Cells.stream`) skips every careful conversion (issue #17)."""

    columns: list[str]
    test: str
    values: dict[str, str]


#: Odd-cell flags kept per column of the first pass (the bits of a UTINYINT).
FLAGS_PER_COLUMN = 8

#: Distinct odd cells of a column written into the query as a ``CASE``; past this, a
#: lookup table joined to the rows.
INLINE_LIMIT = 32


@dataclass
class _Pending:
    """A column whose odd cells go to Python: ``always`` when it has no SQL form at all."""

    cell: str
    odd: str
    sql_type: str
    convert: Callable[[str], Any]
    name: str
    always: bool

    @property
    def value_token(self) -> str:
        return f"{self.name}.__lookup_value"

    @property
    def reason_token(self) -> str:
        return f"{self.name}.__lookup_reason"


class Cells:
    """Builds the SQL for converted columns of one scanned table, with their Python lookups.

    Per column: the SQL value where SQL is exact and a flag for the cells it is not
    (computed once per row, in a subquery the final select reads); the flagged cells'
    distinct values go through the Python converter, and the final select
    (:meth:`materialize`) picks one or the other.
    """

    def __init__(self, con: Any, table: str, mapping: Mapping) -> None:
        self.con, self.table, self.mapping = con, table, mapping
        self._count = itertools.count()
        self._prepared: list[tuple[str, str]] = []  # (alias, SQL) computed in the first pass
        self._stripped: dict[str, str] = {}
        self._pending: list[_Pending] = []
        self._found: dict[str, list[Any]] = {}  # a column's distinct odd cells, by cell and test

    def _column(self, prefix: str, sql: str) -> str:
        alias = quote(f"__{prefix}{next(self._count)}")
        self._prepared.append((alias, sql))
        return alias

    def stripped(self, cell: str) -> str:
        """``cell.strip()``, computed once per row however often the SQL mentions it."""
        if cell not in self._stripped:
            self._stripped[cell] = self._column("s", strip(cell))
        return self._stripped[cell]

    def field(self, spec: FieldSpec, present: bool) -> Converted:
        """``make_converter(spec)`` over column ``spec.column`` (absent column: NULL, no reject)."""
        sql_type = SQL_TYPES[spec.type]
        if not present:
            return Converted(f"CAST(NULL AS {sql_type})", "CAST(NULL AS VARCHAR)")
        convert = make_converter(spec, self.mapping)
        nulls = self._nulls(spec)
        cell = quote(spec.column)
        return self._split(cell, sql_type, self._fast(spec, cell, nulls), convert)

    def cleaned(self, column: str, present: bool) -> str:
        """An activity field: stripped, the mapping's null markers NULL (``_Activity._clean``)."""
        return self.field(FieldSpec(column=column), present).value

    def plain_text(self, spec: FieldSpec, last: str = "") -> tuple[str, str]:
        """(test, value) for a text field's cell that :meth:`field` converts with no strip,
        no look-up and no reject: empty, or unpadded and surely not a null marker (``last``:
        as for :func:`unpadded`)."""
        nulls = self._nulls(spec)
        cell = quote(spec.column)
        empty = "CAST(NULL AS VARCHAR)" if "" in nulls else "''"
        return (f"(strlen({cell}) = 0 OR ({unpadded(cell, last)} AND {_text_valid(cell, nulls)}))",
                f"CASE WHEN strlen({cell}) = 0 THEN {empty} ELSE {cell} END")

    def plain_number(self, spec: FieldSpec) -> tuple[str, str]:
        """(test, value) for a number field's cell that :meth:`field` converts in SQL with no
        look-up and no reject: empty when that is a null marker (NULL), or of the plain
        number form and no marker (the same ``TRY_CAST`` as :meth:`_fast`'s)."""
        cell = quote(spec.column)
        form = (f"regexp_full_match({cell}, {literal(_NUMBER)}) AND "
                f"{_not_marker(cell, self._nulls(spec), _NUMBER, _THOUSANDS)}")
        return (f"({self._empty_is_null(spec)}({form}))",
                f"CASE WHEN strlen({cell}) = 0 THEN CAST(NULL AS DOUBLE) ELSE TRY_CAST({cell} AS DOUBLE) END")

    def plain_instant(self, spec: FieldSpec) -> str | None:
        """A datetime field's value when its cell is UTC to the second and strptime reads it
        (:meth:`field`'s value then), else NULL; None when the mapping's formats decide."""
        formats = spec.formats if spec.formats is not None else self.mapping.timestamp_formats
        if formats:
            return None
        cell = quote(spec.column)
        return _utc_seconds(cell, _not_marker(cell, self._nulls(spec), SQL_UTC_SECONDS))

    def plain_datetime(self, spec: FieldSpec, at: str) -> tuple[str, str] | None:
        """(column, test) for a datetime field's cell :meth:`field` converts with no look-up
        and no reject: column ``at`` is :meth:`plain_instant`'s value, and the cell is plain
        when that read, or when it is empty and that is a null marker; None as for
        :meth:`plain_instant`."""
        instant = self.plain_instant(spec)
        if instant is None:
            return None
        return f"{instant} AS {at}", f"{self._empty_is_null(spec)}{at} IS NOT NULL"

    def _empty_is_null(self, spec: FieldSpec) -> str:
        """``strlen(cell) = 0 OR `` when an empty cell is one of the field's null markers, else ''."""
        return f"strlen({quote(spec.column)}) = 0 OR " if "" in self._nulls(spec) else ""

    def _nulls(self, spec: FieldSpec) -> frozenset[str]:
        """The field's null markers (the mapping's unless it has its own)."""
        return null_set(spec.null_values if spec.null_values is not None else self.mapping.null_values)

    def lookup(self, cell: str, sql_type: str, convert: Callable[[str], Any],
               known: Iterable[str] = ()) -> Converted:
        """Every distinct non-NULL cell through ``convert``: its value or its reason.

        ``known``: cells expected to be common (the playbook's event types): each is put
        through ``convert`` now and answered in SQL, so a file holding only those needs no
        look at its distinct cells before the one pass (a cell ``convert`` refuses stays odd).
        """
        answers = []
        for raw in sorted(set(known)):
            try:
                answers.append((raw, _sql_value(_arrow_value(convert(raw), sql_type), sql_type)))
            except ConversionError:
                continue
        if not answers:
            return self._split(cell, sql_type, _Fast("NULL", "FALSE", "FALSE"), convert)
        value = _inline(cell, [raw for raw, _ in answers], [answer for _, answer in answers])
        if sql_type == "VARCHAR" and all(answer == literal(raw) for raw, answer in answers):
            value = cell  # each known cell is its own value (event types mostly): no second CASE
        listed = _inline(cell, [raw for raw, _ in answers], ["TRUE"] * len(answers))
        # a CASE, not an IN list: DuckDB makes a join of a long IN list, and a join loses the
        # file's order (materialize_in_order)
        return self._split(cell, sql_type, _Fast(value, f"COALESCE({listed}, FALSE)", "FALSE"), convert)

    # -- the SQL half -----------------------------------------------------------------

    def _fast(self, spec: FieldSpec, cell: str, nulls: frozenset[str]) -> _Fast:
        """(SQL value where exact, its condition, the null-marker test), per field type."""
        def is_null(text: str) -> str:
            return _is_null(text, nulls)

        if spec.type == "string":
            stripped = self.stripped(cell)
            return _Fast(stripped, _text_valid(stripped, nulls), is_null(stripped))
        def plain_ok(*forms: str) -> str:
            return _not_marker(cell, nulls, *forms)

        slow_null = is_null(strip(cell))
        if spec.type == "number":
            plain = f"regexp_full_match({cell}, {literal(_NUMBER)})"
            grouped = f"regexp_full_match({cell}, {literal(_THOUSANDS)})"
            value = (f"CASE WHEN {plain} THEN TRY_CAST({cell} AS DOUBLE) "
                     f"WHEN {grouped} THEN TRY_CAST(replace({cell}, ',', '') AS DOUBLE) END")
            return _Fast(value, f"({plain} OR {grouped}) AND {plain_ok(_NUMBER, _THOUSANDS)}", slow_null)
        if spec.type == "integer":
            valid = f"regexp_full_match({cell}, {literal(_INTEGER)})"
            return _Fast(f"CASE WHEN {valid} THEN CAST(CAST({cell} AS BIGINT) AS DOUBLE) END",
                         f"{valid} AND {plain_ok(_INTEGER)}", slow_null)
        if spec.type == "datetime":
            formats = spec.formats if spec.formats is not None else self.mapping.timestamp_formats
            if formats:
                return _Fast("NULL", "FALSE", slow_null)  # strptime formats: Python decides
            return self._iso(cell, plain_ok(_ISO), plain_ok(SQL_UTC_SECONDS), slow_null)
        return _Fast("NULL", "FALSE", slow_null)  # bool: a handful of distinct cells

    def _iso(self, cell: str, plain_ok: str, utc_ok: str, slow_null: str) -> _Fast:
        zone = self.mapping.timezone or "UTC"  # engine evaluate always sets one
        # DuckDB reads the 'T' and the 'Z' of these shapes itself; 'Z' is tested first (cheap)
        aware = f"(suffix({cell}, 'Z') OR regexp_matches({cell}, {literal(_OFFSET)}))"
        naive = f"timezone({literal(zone)}, TRY_CAST({cell} AS TIMESTAMP))"
        shape = f"regexp_full_match({cell}, {literal(_ISO)})"
        days = changeover_days(get_timezone(zone))
        if days:  # a naive time on a day the clocks change: Python's fold rules decide
            listed = ", ".join(literal(d) for d in days)
            shape = f"({shape} AND ({aware} OR left({cell}, 10) NOT IN ({listed})))"
        # the commonest shape first (_utc_seconds); a cell of another shape, or one strptime
        # refuses, goes on to the general shape (COALESCE evaluates its second argument only
        # for those rows)
        value = (f"COALESCE({_utc_seconds(cell, utc_ok)}, CASE WHEN {shape} AND {plain_ok} THEN "
                 f"(CASE WHEN {aware} THEN TRY_CAST({cell} AS TIMESTAMPTZ) ELSE {naive} END) END)")
        return _Fast(value, "", slow_null)  # valid: the value is not NULL

    # -- the Python half --------------------------------------------------------------

    def _split(self, cell: str, sql_type: str, fast: _Fast, convert: Callable[[str], Any]) -> Converted:
        if fast.valid == "":  # the fast value is NULL exactly when SQL cannot decide
            value = self._column("v", f"CAST({fast.value} AS {sql_type})")
            decided = f"{value} IS NOT NULL"
        else:
            value = self._column("v", f"CASE WHEN {fast.valid} THEN CAST({fast.value} AS {sql_type}) END")
            decided = fast.valid
        odd = self._column("o", f"CASE WHEN {cell} IS NULL OR {decided} OR {fast.is_null} "
                                "THEN FALSE ELSE TRUE END")
        name = f"__lookup_{next(self._count)}_{self.table}"
        pending = _Pending(cell, odd, sql_type, convert, name, always=fast.valid == "FALSE")
        self._pending.append(pending)
        # the lookup's value and reason are tokens until materialize() knows how each column
        # gets its odd cells (none, a CASE, or a joined table)
        return Converted(f"CASE WHEN {odd} THEN CAST({pending.value_token} AS {sql_type}) ELSE {value} END",
                         f"CASE WHEN {odd} THEN {pending.reason_token} END")

    def materialize(self, selects: list[str], table: str, derived: str = "") -> None:
        """Table ``table__rows`` of ``selects`` over the scanned cells, every lookup resolved,
        and view ``table`` over it adding ``derived`` (columns computed from the stored ones:
        what need not take memory for every row, issue #17).

        One pass when the odd cells are known to be few (see the module docstring); a
        second, with the odd columns' cells looked up, only when the first pass found some.
        """
        rows = f"{table}__rows"
        forget(self.con, table, rows)  # from an earlier attempt (Renumber)
        select, lookups, assumed = self._first_pass(selects)
        self.con.execute(f"CREATE TEMP TABLE {rows} AS {select}")
        odd = self._raised(rows, assumed)
        if odd:
            lookups.update((p.name, self._lookup(p)) for p in odd)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS {self._select(selects, lookups)}")
        self.con.execute(f"CREATE TEMP VIEW {table} AS SELECT *{_more(derived)} FROM {rows}")

    def materialize_in_order(self, selects: list[str], table: str, row_offset: int,
                             derived: str = "", plain: Plain | None = None) -> bool:
        """Like :meth:`materialize` for a scan with no row numbers (a CSV read lazily,
        :mod:`engine.sql.inputs`), where a row's number is its place in the converted table:
        the view also adds ``__row`` = rowid + ``row_offset``. DuckDB keeps the scan's order
        through a plain select but not through a join (its optimizer makes one of an ``IN``
        list of 12 constants), so this runs only when every operator of the statement's plan
        keeps order (:func:`_keeps_order`) and no odd cell needs a look-up; otherwise it
        makes nothing and returns False (the caller copies the scan, numbered, and uses
        :meth:`materialize`). With ``plain``, as in :meth:`stream`: a plain row takes its
        values from it and skips the careful conversions; and the plain values alone are
        tried first (:meth:`_plain_only`)."""
        rows = f"{table}__rows"
        forget(self.con, table, rows)
        plain = _covering(selects, plain)
        if plain is None or not self._plain_only(selects, rows, plain):
            select, _, assumed = self._first_pass(selects, plain)
            if not _keeps_order(self.con, select):
                return False
            self.con.execute(f"CREATE TEMP TABLE {rows} AS {select}")
            if self._raised(rows, assumed):
                self.con.execute(f"DROP TABLE {rows}")
                return False
        numbered = f"CAST(rowid + {row_offset} AS BIGINT) AS __row"
        self.con.execute(f"CREATE TEMP VIEW {table} AS SELECT {numbered}, *{_more(derived)} FROM {rows}")
        return True

    def _plain_only(self, selects: list[str], rows: str, plain: Plain) -> bool:
        """Table ``rows`` from ``plain``'s values alone, the columns :meth:`_first_pass`'s
        select gives, when every row is plain (a clean export); else nothing made, False.

        The careful conversions are most of the statement's SQL (20 KB for ten fields) and
        DuckDB plans it twice, for the order check and for the table: a fixed 0.1 s of CPU
        a run (issue #17). A file with one row that is not plain pays a pass of the plain
        test and values more, then takes the careful statement."""
        if any(p.always for p in self._pending):  # a look-up of every such cell comes first
            return False
        names = [item.rsplit(" AS ", 1)[-1] for item in selects]
        values = [f"CASE WHEN __plain THEN {plain.values[name]} END AS {name}" for name in names]
        flags = [f"CAST(0 AS UTINYINT) AS {name}" for name in _flag_columns(self._pending)]
        select = f"SELECT {', '.join([*values, *flags])}, __plain FROM {self._source(plain, careful=False)}"
        if not _keeps_order(self.con, select):
            return False
        self.con.execute(f"CREATE TEMP TABLE {rows} AS {select}")
        if self.con.execute(f"SELECT bool_or(__plain IS NOT TRUE) FROM {rows}").fetchall()[0][0]:
            self.con.execute(f"DROP TABLE {rows}")
            return False
        return True

    def stream(self, selects: list[str], derived: str = "", plain: Plain | None = None,
               unread: Sequence[str] = ()) -> str:
        """The SELECT of ``selects`` straight over the scan (nothing stored, no row
        numbers), adding ``derived`` and ``__bad``: the row has a problem, or a cell only
        a look-up converts. :mod:`engine.sql.streamed` folds it into per-lead aggregates,
        inlined in its statement (a view of it cost its binding once more: issue #17); a
        bad row sends the run through :meth:`materialize` and its look-ups.

        With ``plain``, a plain row takes its values from it, and every careful conversion
        (strips, flags, the problem's checks) is a ``CASE`` branch it never enters: DuckDB
        evaluates a branch only for the rows that reach it.

        ``unread``: cells a NULL of which means the reader did not read it as text (a raw
        scan, :meth:`engine.sql.inputs.Inputs.scan`): such a row is bad too. A plain row has
        none (its test is NULL, so false, for a NULL cell)."""
        if unread:
            selects = [*selects, f"({' OR '.join(f'{cell} IS NULL' for cell in unread)}) AS __unread"]
            if plain is not None:
                plain = Plain(plain.columns, plain.test, {**plain.values, "__unread": "FALSE"})
        plain = _covering(selects, plain)
        select, _, assumed = self._first_pass(selects, plain)
        bad = [f"{flags} <> 0" for flags in _flag_columns(assumed)] + (["__unread"] if unread else [])
        test = f"(__problem IS NOT NULL OR {' OR '.join(bad) or 'FALSE'})"
        if plain is not None:  # a plain row is never bad, and skips the test (0.4 s of CPU at 1M leads)
            test = f"CASE WHEN __plain THEN FALSE ELSE {test} END"
        return f"SELECT *{_more(derived)}, {test} AS __bad FROM ({select})"

    def _source(self, plain: Plain | None = None, careful: bool = True) -> str:
        """The scanned cells, with the prepared columns the careful conversions read
        (``careful``); with ``plain``, its columns and each row's ``__plain`` too."""
        if plain is None:
            added = "".join(f", {sql} AS {alias}" for alias, sql in self._prepared)
            return f"(SELECT *{added} FROM {self.table}) AS {self.table}"
        added = "".join(f", CASE WHEN __plain THEN NULL ELSE {sql} END AS {alias}"
                        for alias, sql in self._prepared if careful)
        first = f"SELECT *{_more(', '.join(plain.columns))} FROM {self.table}"
        return f"(SELECT *{added} FROM (SELECT *, ({plain.test}) AS __plain FROM ({first}))) AS {self.table}"

    def _first_pass(self, selects: list[str], plain: Plain | None = None
                    ) -> tuple[str, dict[str, tuple[str, str, str]], list[_Pending]]:
        """The first pass's select (``selects`` and the assumed columns' flags), its lookups, and
        the columns assumed to have no odd cell: those with a SQL form, their lookups NULL
        until their flags say otherwise; the columns with none are looked up now. ``plain``,
        if any, gives a value for every select (the callers' :func:`_covering`)."""
        lookups = {p.name: self._lookup(p) for p in self._pending if p.always}
        assumed = [p for p in self._pending if not p.always]
        for p in assumed:
            lookups[p.name] = ("NULL", "NULL", "")
        # the flags as bits of one small integer per FLAGS_PER_COLUMN columns: each extra
        # column of 30M rows costs its write (a flag column each: 0.9 s of CPU at 1M leads)
        flags = []
        for word, name in enumerate(_flag_columns(assumed)):
            start = word * FLAGS_PER_COLUMN
            bits = " + ".join(f"CAST({p.odd} AS UTINYINT) * {1 << k}"
                              for k, p in enumerate(assumed[start:start + FLAGS_PER_COLUMN]))
            flags.append(f"CAST({bits} AS UTINYINT) AS {name}")
        return self._select([*selects, *flags], lookups, plain), lookups, assumed

    def _raised(self, table: str, assumed: list[_Pending]) -> list[_Pending]:
        """The assumed columns whose flag is up in some row of ``table``."""
        if not assumed:
            return []
        checks = ", ".join(f"bit_or({flags})" for flags in _flag_columns(assumed))
        words = self.con.execute(f"SELECT {checks} FROM {table}").fetchall()[0]
        return [p for i, p in enumerate(assumed)
                if (words[i // FLAGS_PER_COLUMN] or 0) >> (i % FLAGS_PER_COLUMN) & 1]

    def _select(self, selects: list[str], lookups: dict[str, tuple[str, str, str]],
                plain: Plain | None = None) -> str:
        if plain is not None:  # a plain row's values, and the careful ones in the other branch
            flags = {name: "CAST(0 AS UTINYINT)" for name in _flag_columns(self._pending)}
            values = {**plain.values, **flags}
            selects = [f"CASE WHEN __plain THEN {values[name]} ELSE {expr} END AS {name}"
                       for expr, name in (item.rsplit(" AS ", 1) for item in selects)] + ["__plain"]
        sql = ", ".join(selects)
        for p in self._pending:
            value, reason, _ = lookups[p.name]
            sql = sql.replace(p.value_token, value).replace(p.reason_token, reason)
        joins = " ".join(join for _, _, join in lookups.values() if join)
        return f"SELECT {sql} FROM {self._source(plain)} {joins}"

    def _lookup(self, item: _Pending) -> tuple[str, str, str]:
        """(value SQL, reason SQL, join) for ``item``'s odd cells, each through its converter once."""
        import pyarrow as pa

        query = f"SELECT DISTINCT {item.cell} FROM {self._source()} WHERE {item.odd}"
        key = f"{item.cell}|{dict(self._prepared).get(item.odd, item.odd)}"  # type and its shown form
        found = self._found  # kept across passes: a copied scan has the same cells
        if key not in found:
            found[key] = [r for (r,) in self.con.execute(f"{query} LIMIT {INLINE_LIMIT + 1}").fetchall()]
            if len(found[key]) > INLINE_LIMIT:
                found[key] = [r for (r,) in self.con.execute(query).fetchall()]
        raws = sorted(found[key])  # sorted: the same query text for the same cells, run after run
        values: list[Any] = []
        reasons: list[str | None] = []
        for raw in raws:
            try:
                values.append(_arrow_value(item.convert(raw), item.sql_type))
                reasons.append(None)
            except ConversionError as error:
                values.append(None)
                reasons.append(str(error))
        if len(raws) <= INLINE_LIMIT:
            return (_inline(item.cell, raws, [_sql_value(v, item.sql_type) for v in values]),
                    _inline(item.cell, raws, [literal(r) if r is not None else "NULL" for r in reasons]), "")
        arrow_type = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
                      "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "BIGINT": pa.int64()}[item.sql_type]
        # Names no input column has: an export's own `reason` or `value` column stays unambiguous.
        data = pa.table({"__lookup_raw": pa.array(raws, pa.string()),
                         "__lookup_value": pa.array(values, arrow_type),
                         "__lookup_reason": pa.array(reasons, pa.string())})
        self.con.register(f"{item.name}_arrow", data)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {item.name} AS SELECT * FROM {item.name}_arrow")
        self.con.unregister(f"{item.name}_arrow")
        return (item.value_token, item.reason_token,
                f"LEFT JOIN {item.name} ON {item.name}.__lookup_raw = {item.cell}")


#: Plan operators that keep their input's order (DuckDB's "order preservation": a select,
#: its filter and one table's scan); anything else (a join, an aggregate) may not.
_ORDERED_OPERATORS = frozenset({"PROJECTION", "FILTER", "READ_CSV"})


def _keeps_order(con: Any, select: str) -> bool:
    """True when every operator of ``select``'s physical plan keeps its input's order."""
    import json

    names: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        names.append(str(node.get("name", "")))
        for child in node.get("children", []):
            walk(child)

    for _, text in con.execute(f"EXPLAIN (FORMAT json) {select}").fetchall():
        for node in json.loads(text):
            walk(node)
    return bool(names) and set(names) <= _ORDERED_OPERATORS


def _covering(selects: list[str], plain: Plain | None) -> Plain | None:
    """``plain`` if it gives a value for every select (else it cannot serve: None)."""
    if plain is not None and all(item.rsplit(" AS ", 1)[-1] in plain.values for item in selects):
        return plain
    return None


def _flag_columns(assumed: list[_Pending]) -> list[str]:
    """The first pass's flag columns for ``assumed``: one per FLAGS_PER_COLUMN columns."""
    return [f"__odd{i}" for i in range((len(assumed) + FLAGS_PER_COLUMN - 1) // FLAGS_PER_COLUMN)]


def _more(columns: str) -> str:
    return f", {columns}" if columns else ""


def _inline(cell: str, raws: list[str], answers: list[str]) -> str:
    """``CASE cell WHEN raw THEN answer … END`` (NULL for a cell not listed, and for none)."""
    pairs = zip(raws, answers, strict=True)
    branches = " ".join(f"WHEN {literal(raw)} THEN {answer}" for raw, answer in pairs if answer != "NULL")
    return f"(CASE {cell} {branches} END)" if branches else "NULL"


def _sql_value(value: Any, sql_type: str) -> str:
    """A converted value as an exact SQL literal of ``sql_type``."""
    if value is None:
        return "NULL"
    if sql_type == "VARCHAR":
        return literal(value)
    if sql_type == "BOOLEAN":
        return "TRUE" if value else "FALSE"
    if sql_type == "BIGINT":
        return str(int(value))
    if sql_type == "DOUBLE":  # repr is the shortest text that reads back as the same double
        return f"CAST({literal(repr(float(value)))} AS DOUBLE)"
    return f"CAST({literal(value.isoformat())} AS TIMESTAMPTZ)"  # aware, in UTC (_arrow_value)


@dataclass
class _Fast:
    value: str
    valid: str
    is_null: str


def _arrow_value(value: Any, sql_type: str) -> Any:
    if value is None:
        return None
    if sql_type == "TIMESTAMPTZ":
        return value.astimezone(UTC)
    if sql_type == "DOUBLE":
        return float(value)
    if sql_type == "VARCHAR" and not isinstance(value, str):
        return str(value)
    return value
