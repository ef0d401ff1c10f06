"""Converting an Arrow column of cells exactly as the row path's converter would.

Two ways, both giving what ``convert(cell)`` gives for every cell:

* once per distinct value (:func:`by_value_encoded`): the converter itself runs on the
  dictionary of the column and the results are spread over the rows — exact by
  construction, and cheap when a column repeats itself (types, content ids, flags);
* string fields whose values are nearly all different (emails, domains): the strip
  and null tests of :func:`engine.io.convert.make_converter`'s ``to_string`` done in
  Arrow, where that is provably the same — no value starts or ends with anything
  ``str.strip`` would remove (the class is built from ``str.isspace`` itself), and the
  null markers are found among the short values in Python;
* datetime fields all in ``…Z`` form that Arrow parses as our parser does
  (:mod:`engine.io.arrow_instants`): UTC datetimes from Arrow's instants.

A value the converter refuses raises :class:`Rejected` here: the caller then reads the
whole batch with the row path, which rejects the row with its reason.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from engine.events import Encoded as Encoded  # declared below the IO layer, for the kernel
from engine.io import arrow_instants
from engine.io.convert import ConversionError, Converter, null_set
from engine.io.mapping import FieldSpec, Mapping

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Above this share of distinct values a string column is converted in Arrow.
_DISTINCT_SHARE = 0.25


class Rejected(Exception):
    """A cell the row path would reject: the batch goes to it."""


def column_values(column: Any, convert: Converter, spec: tuple[FieldSpec, Mapping]) -> list[Any] | None:
    """``convert`` over every cell of ``column``, or None if the row path must read the batch."""
    found = column_encoded(column, convert, spec)
    return found if found is None or isinstance(found, list) else found.expand()


def column_encoded(column: Any, convert: Converter,
                   spec: tuple[FieldSpec, Mapping]) -> list[Any] | Encoded | None:
    """:func:`column_values`, kept :class:`Encoded` when converted once per distinct value."""
    import pyarrow.compute as pc

    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    encoded = pc.dictionary_encode(array)
    field, mapping = spec
    if len(encoded.dictionary) > _DISTINCT_SHARE * len(array):
        null_values = field.null_values if field.null_values is not None else mapping.null_values
        if field.type == "string":
            return strings(array, null_set(null_values))
        if field.type == "datetime":
            formats = field.formats if field.formats is not None else mapping.timestamp_formats
            if arrow_instants.usable(formats, null_values):
                moments = utc_moments(array)
                if moments is not None:
                    return moments
    return _spread(encoded, _strict(convert))


def utc_moments(array: Any) -> list[datetime] | None:
    """Datetime cells that all end in ``Z`` and that Arrow may parse
    (:mod:`engine.io.arrow_instants`), as the UTC datetimes our parser gives for them
    (``fromisoformat`` reads ``Z`` as :data:`datetime.UTC`); else None."""
    import pyarrow.compute as pc

    if len(array) and not pc.all(pc.ends_with(array, "Z")).as_py():
        return None
    micros = arrow_instants.epoch_micros(array)
    if micros is None:
        return None
    return [_EPOCH + timedelta(microseconds=us) for us in micros]


def by_value_encoded(column: Any, convert: Callable[[Any], Any]) -> Encoded | None:
    """``convert`` once per distinct value of ``column``, kept :class:`Encoded` (``expand()``
    spreads it over the rows); None when it raises :class:`Rejected`."""
    import pyarrow.compute as pc

    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    return _spread(pc.dictionary_encode(array), convert)


def _spread(encoded: Any, convert: Callable[[Any], Any]) -> Encoded | None:
    import pyarrow.compute as pc

    distinct = encoded.dictionary.to_pylist()
    try:
        converted = [convert(value) for value in distinct]
        indices = encoded.indices
        if indices.null_count:
            converted.append(convert(None))
            indices = pc.fill_null(indices, len(distinct))
    except Rejected:
        return None
    return Encoded(indices, converted)


@cache
def _padded() -> str:
    """A value that starts or ends with a character ``str.strip()`` removes, as an RE2
    pattern (built on first use: scanning every code point takes ~90 ms of start-up)."""
    space = "".join(f"\\x{{{code:x}}}" for code in range(sys.maxunicode + 1) if chr(code).isspace())
    return f"^[{space}]|[{space}]$"


def strings(array: Any, nulls: frozenset[str]) -> list[Any] | None:
    """``to_string`` over a string array in Arrow; None if a value is padded (Python strips)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(array) and pc.any(pc.match_substring_regex(array, _padded())).as_py():
        return None
    longest = max((len(marker) for marker in nulls), default=-1)
    # Case folding never shortens text, so only values this short can be a marker.
    short = pc.filter(array, pc.less_equal(pc.utf8_length(array), longest))
    markers = [value for value in pc.unique(short).to_pylist()
               if value is not None and value.casefold() in nulls]
    if markers:
        is_null = pc.is_in(array, pa.array(markers, pa.string()))
        array = pc.if_else(is_null, pa.scalar(None, pa.string()), array)
    values: list[Any] = array.to_pylist()
    return values


def _strict(convert: Converter) -> Converter:
    def converted(raw: str | None) -> Any:
        try:
            return convert(raw)
        except ConversionError:
            raise Rejected from None

    return converted
