"""Arrow's timestamp parse equals ours on every string the fast path lets Arrow parse."""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.events import epoch_us
from engine.io.arrow_instants import ISO_INSTANT, epoch_micros, usable
from engine.io.timestamps import TimestampError, TimestampParser

ZONES = ["UTC", "Asia/Tokyo", "America/Sao_Paulo"]


@st.composite
def iso_like(draw: st.DrawFn) -> str:
    """Near-ISO text: valid and invalid fields, both separators, offsets, fractions."""
    year = draw(st.integers(900, 3100))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    sep = draw(st.sampled_from(["T", " ", "t"]))
    fraction = draw(st.sampled_from(["", ".", ".5", ".123", ".123456", ".1234567"]))
    zone = draw(st.sampled_from(["Z", "z", "+09:00", "-05:30", "+00:00", "-00:00", "+23:59", "+24:00",
                                 "+0900", "+09", "", "+09:60"]))
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


def _ours(text: str, zone: str) -> int | None:
    try:
        return epoch_us(TimestampParser((), zone).parse(text))
    except TimestampError:
        return None


def _check(text: str) -> None:
    arrow = epoch_micros(pa.array([text], pa.string()))
    if arrow is None:
        return  # the row path reads it
    assert re.fullmatch(ISO_INSTANT, text) or (len(text) == 20 and text.endswith("Z"))
    for zone in ZONES:
        assert arrow == [_ours(text, zone)], (text, zone)


@settings(max_examples=3000)
@given(iso_like())
@example("2026-13-01T00:00:00Z")
@example("2026-00-10T00:00:00Z")
@example("2026-01-00T00:00:00Z")
@example("2026-01-01T00:60:00Z")
@example("2026-01-01 29:00:00Z")
@example("2024-02-29T23:59:59.999999-00:00")
@example("2026-10-22 16:30:17.1+23:59")
def test_arrow_instants_equal_ours_near_iso(text: str) -> None:
    _check(text)


@settings(max_examples=1000)
@given(st.from_regex(ISO_INSTANT, fullmatch=True))
def test_arrow_instants_equal_ours_on_the_whole_pattern(text: str) -> None:
    _check(text)


@settings(max_examples=300)
@given(st.text(alphabet="0123456789-:T Z+.", max_size=30))
def test_anything_else_arrow_accepts_is_ours_too(text: str) -> None:
    _check(text)


@settings(max_examples=2000)
@given(st.lists(st.integers(0, 9), min_size=14, max_size=14), st.sampled_from("T t"))
def test_the_byte_shape_check_leaves_ranges_to_arrow(digits: list[int], sep: str) -> None:
    """Every digit combination of YYYY-MM-DDThh:mm:ssZ: Arrow accepts only what we read alike."""
    d = "".join(map(str, digits))
    _check(f"{d[0:4]}-{d[4:6]}-{d[6:8]}{sep}{d[8:10]}:{d[10:12]}:{d[12:14]}Z")


def test_one_bad_value_sends_the_batch_to_the_row_path() -> None:
    good = "2026-10-01T00:00:00Z"
    assert epoch_micros(pa.array([good, good])) == [epoch_us(TimestampParser().parse(good))] * 2
    assert epoch_micros(pa.array([good, "2026-10-01T00:00:00"])) is None  # naive: the zone decides
    assert epoch_micros(pa.array([good, "2026-02-30T00:00:00Z"])) is None
    assert epoch_micros(pa.array([good, None])) is None


def test_formats_and_digit_null_markers_turn_arrow_off() -> None:
    assert usable(None, [""]) and usable([], ["", "N/A"])
    assert not usable(["%d/%m/%Y %H:%M"], [""])
    assert not usable(None, ["0000-00-00"])


@settings(max_examples=500)
@given(st.from_regex(ISO_INSTANT, fullmatch=True))
def test_utc_moments_are_our_datetimes_exactly(text: str) -> None:
    """Same instant, same tzinfo (so the same isoformat too) as TimestampParser's."""
    from engine.io.arrow_convert import utc_moments

    moments = utc_moments(pa.array([text]))
    if moments is None:
        return
    ours = TimestampParser((), "Asia/Tokyo").parse(text)
    assert moments == [ours]
    assert moments[0].tzinfo is ours.tzinfo and moments[0].isoformat() == ours.isoformat()
