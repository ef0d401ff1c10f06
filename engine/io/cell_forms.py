"""The cell forms a fast path may convert by itself; everything else goes to the definition.

What a cell *means* is defined once: :func:`engine.io.convert.make_converter` (numbers,
integers, booleans, text and null markers) and :class:`engine.io.timestamps.TimestampParser`
(timestamps). The Arrow reader (:mod:`engine.io.arrow_instants`) and the SQL path
(:mod:`engine.sql.cells`) are accelerators, not second definitions: each converts only
text fully matching one of the forms below — forms where its own cast provably gives the
definition's answer — and hands every other distinct cell to the definition itself.
A property test per form checks the claim on generated text (tests/test_io_arrow_instants.py,
tests/test_sql_cells.py); to widen a fast path, widen its form here and let those tests
judge.
"""

from __future__ import annotations

#: Plain decimal numbers DuckDB's ``CAST(… AS DOUBLE)`` reads as Python's ``float()``
#: does: at most 15 digits each side, so no rounding differences can arise.
SQL_NUMBER = r"^[+-]?([0-9]{1,15}(\.[0-9]{0,15})?|\.[0-9]{1,15})([eE][+-]?[0-9]{1,2})?$"
#: Thousands-grouped numbers (``1,234,567.5``), read with the commas removed.
SQL_THOUSANDS = r"^[+-]?[0-9]{1,3}(,[0-9]{3}){1,4}(\.[0-9]{1,15})?$"
#: Integers small enough to be exact as a DOUBLE.
SQL_INTEGER = r"^[+-]?[0-9]{1,15}$"
#: ISO 8601 dates and times DuckDB's TIMESTAMP/TIMESTAMPTZ casts read as our parser does
#: (naive ones on a day the clocks change are still left to Python: fold rules).
SQL_ISO = (r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}"
           r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{3}|\.[0-9]{6})?)?"
           r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$")
#: The commonest export shape of all, a UTC time to the second (``2026-09-10T22:20:31Z``):
#: SQL reads it without a regular expression (a third of the events' conversion, issue
#: #17) — 20 bytes from a first digit 1-9 to a last ``Z``, and DuckDB's ``strptime`` with
#: :data:`SQL_UTC_SECONDS_FORMAT` for the punctuation, the digits and their ranges (the
#: cast alone lets a blank, ``3.`` seconds or hour 24 through; strptime refuses them, and
#: on 20 such bytes reads nothing but this form) — then casts it.
SQL_UTC_SECONDS = r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
SQL_UTC_SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: The explicit-zone suffix of an :data:`SQL_ISO` cell.
SQL_OFFSET = r"(Z|[+-][0-9]{2}:[0-9]{2})$"
#: What Arrow's ISO 8601 cast may parse for us: a full date and time in the years
#: 1000-2999 with an explicit ``Z`` or ``±hh:mm`` offset, nothing before or after (field
#: ranges are checked by Arrow: Feb 30 fails the cast).
ARROW_INSTANT = (
    r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
