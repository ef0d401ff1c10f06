"""Timestamps: ISO forms, explicit formats (Olist), default timezone, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.io import InputError, TimestampError, TimestampParser, parse_timestamp

JST = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:00:00+09:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2024-01-15T10:00:00.000+0000", datetime(2024, 1, 15, 10, tzinfo=UTC)),
        ("2026-11-01 09:00", datetime(2026, 11, 1, tzinfo=UTC)),  # naive: Asia/Tokyo
        ("2026-11-01", datetime(2026, 10, 31, 15, tzinfo=UTC)),
        ("2026/11/01 9:00", datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_iso_and_spreadsheet_forms(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text, default_tz="Asia/Tokyo")
    assert parsed.tzinfo is not None
    assert parsed == expected


def test_olist_day_first_formats() -> None:
    parser = TimestampParser(["%d-%m-%Y %H:%M", "%d-%m-%Y"], "America/Sao_Paulo")
    assert parser.parse("26-02-2018 19:58") == datetime(2018, 2, 26, 22, 58, tzinfo=UTC)
    assert parser.parse("01-02-2018").date().isoformat() == "2018-02-01"
    # Day-first is taken as given, not guessed: 13 can only be a day.
    assert parser.parse("13-01-2018").month == 1


def test_bad_value_is_shown() -> None:
    with pytest.raises(TimestampError, match="'01-May'"):
        parse_timestamp("01-May", ["%d-%m-%Y"])


def test_unknown_timezone() -> None:
    with pytest.raises(InputError, match="Asia/Tokio"):
        TimestampParser((), "Asia/Tokio")


def test_deterministic_and_cached() -> None:
    parser = TimestampParser((), "UTC")
    assert parser.parse("2026-01-01T00:00:00Z") is parser.parse("2026-01-01T00:00:00Z")
    assert parse_timestamp("2026-01-01T00:00:00+09:00").utcoffset() == timedelta(hours=9)
    assert JST.utcoffset(None) == timedelta(hours=9)


def test_cache_steps_aside_for_unique_values_and_comes_back() -> None:
    import engine.io.timestamps as timestamps

    parser = TimestampParser((), "Asia/Tokyo")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    unique = [(start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S") for i in range(40000)]
    for i, text in enumerate(unique):  # every value new: the cache stops paying
        assert parser.parse(text) == start + timedelta(seconds=i) - timedelta(hours=9)
    assert 0 < parser._bypass <= timestamps._BYPASS and len(parser._cache) <= 1 and not parser._old
    parser._bypass = 1  # the bypass runs out: values are cached again
    assert parser.parse("2026-01-01") is not parser.parse("2026-01-01")
    assert parser.parse("2026-01-01") is parser.parse("2026-01-01")
    assert parser.parse("2026/01/01 9:00") == datetime(2026, 1, 1, tzinfo=UTC)


def test_null_markers_are_matched_after_case_folding() -> None:
    from engine.io.convert import make_converter
    from engine.io.mapping import FieldSpec, parse_mapping

    mapping = parse_mapping('null_values: ["", "Straße", "N/A"]\nleads: {id: id}\n')
    to_text = make_converter(FieldSpec(column="x"), mapping)
    to_time = make_converter(FieldSpec(column="x", type="datetime"), mapping)
    for null in ["", "  ", "STRASSE", " straße ", "n/a", None]:
        assert to_text(null) is None and to_time(null) is None
    assert to_text(" Strasser ") == "Strasser"
    assert to_time(" 2026-01-01T00:00:00Z ") == datetime(2026, 1, 1, tzinfo=UTC)
