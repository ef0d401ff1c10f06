"""Convert one cell's text to the type a mapping asks for, or say why it cannot be.

Kept tiny and pure so readers can build one converter per column up front and the
per-row loop does no lookups.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from engine.io.mapping import FieldSpec, Mapping
from engine.io.timestamps import TimestampError, TimestampParser, get_timezone

Converter = Callable[[str | None], Any]

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


class ConversionError(ValueError):
    """A cell that does not hold the type its field is declared as."""


def null_set(values: Iterable[str]) -> frozenset[str]:
    """Null markers compared case-insensitively after trimming ("Select", "N/A", "")."""
    return frozenset(value.strip().casefold() for value in values)


def to_number(text: str) -> int | float:
    """Integers stay ``int`` (ids, counts, headcounts); anything else finite is a float.

    Full-width digits and thousands separators, common in Japanese exports, are accepted.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    if _INTEGER.match(cleaned):
        return int(cleaned)
    try:
        number = float(cleaned)
    except ValueError:
        raise ConversionError(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise ConversionError(f"{text!r} is not a finite number")
    return number


def make_converter(spec: FieldSpec, mapping: Mapping) -> Converter:
    """The function turning ``spec.column``'s text into the field's value (None for nulls)."""
    nulls = null_set(spec.null_values if spec.null_values is not None else mapping.null_values)
    longest = _longest(nulls)
    if spec.type == "string":

        def to_string(raw: str | None) -> Any:
            if raw is None:
                return None
            text = raw.strip()
            # Inlined null test (see _longest): this runs for most cells of every file.
            return None if len(text) <= longest and text.casefold() in nulls else text

        return to_string
    if spec.type == "datetime":
        return _datetime_converter(spec, mapping, nulls)
    convert = _typed(spec, mapping)

    def converter(raw: str | None) -> Any:
        if raw is None:
            return None
        text = raw.strip()
        if len(text) <= longest and text.casefold() in nulls:
            return None
        return convert(raw)

    return converter


def _longest(nulls: frozenset[str]) -> int:
    """The length of the longest null marker: a cheap first test for ``text in nulls``.

    Case folding never shortens a string, so stripped text longer than every marker
    cannot be one and needs no ``casefold()``: the usual cell is decided by a length
    compare. -1 when there are no markers at all.
    """
    return max((len(value) for value in nulls), default=-1)


def _datetime_converter(spec: FieldSpec, mapping: Mapping, nulls: frozenset[str]) -> Converter:
    """Datetime cells straight to the parser: the hottest converter (every event has one)."""
    parse = TimestampParser(
        spec.formats if spec.formats is not None else mapping.timestamp_formats,
        get_timezone(mapping.timezone or "UTC"),  # engine evaluate always sets one
    ).parse
    longest = _longest(nulls)

    def to_datetime(raw: str | None) -> Any:
        if raw is None:
            return None
        text = raw.strip()
        if len(text) <= longest and text.casefold() in nulls:
            return None
        try:
            return parse(raw)
        except TimestampError as error:
            raise ConversionError(str(error)) from None

    return to_datetime


def _typed(spec: FieldSpec, mapping: Mapping) -> Callable[[str], Any]:
    """Number, integer and bool conversions (string and datetime have their own converters)."""
    if spec.type == "number":
        return to_number
    if spec.type == "integer":
        return _to_integer
    if spec.type == "bool":
        trues = null_set(spec.true_values or mapping.true_values)
        falses = null_set(spec.false_values or mapping.false_values)
        return lambda text: _to_bool(text, trues, falses)
    raise AssertionError(f"no plain converter for type {spec.type!r}")


def _to_integer(text: str) -> int:
    number = to_number(text)
    if isinstance(number, float):
        if not number.is_integer():
            raise ConversionError(f"{text!r} is not a whole number")
        return int(number)
    return number


def _to_bool(text: str, trues: frozenset[str], falses: frozenset[str]) -> bool:
    key = text.strip().casefold()
    if key in trues:
        return True
    if key in falses:
        return False
    raise ConversionError(f"{text!r} is not a yes/no value (expected one of {sorted(trues | falses)})")
