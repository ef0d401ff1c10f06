"""engine.sql.zones and the decisions' times: SQL spells an instant as Python's ``isoformat``.

Where a zone's offset no longer changes, SQL adds it as a number instead of asking ICU
(issue #17); these tests compare both ways with ``datetime.astimezone(zone).isoformat()``
on generated instants, including each side of the moment the fixed offset starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.io.timestamps import get_timezone
from engine.sql.duckdb_backend import iso_sql
from engine.sql.zones import fixed_offset

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZONES = ["UTC", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "America/Sao_Paulo", "Europe/Moscow",
         "Europe/London", "America/New_York"]


def _spelled(instants: list[datetime], zone: str) -> list[str]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/Los_Angeles'")  # not the zone asked for: it must not matter
    con.register("t_arrow", pa.table({"c": pa.array(instants, pa.timestamp("us", tz="UTC")),
                                      "i": pa.array(range(len(instants)), pa.int64())}))
    rows = con.execute(f"SELECT {iso_sql('c', zone)} FROM t_arrow ORDER BY i").fetchall()
    return [text for (text,) in rows]


def _edges() -> list[datetime]:
    """A microsecond either side of each zone's fixed-offset start, and the start."""
    out = []
    for zone in ZONES:
        fixed = fixed_offset(get_timezone(zone))
        if fixed is not None:
            start = EPOCH + timedelta(microseconds=fixed[0])
            out += [start + timedelta(microseconds=d) for d in (-1_000_001, -1, 0, 1, 999_999)]
    return out


_INSTANTS = st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2150, 1, 1),
                         timezones=st.just(UTC))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_INSTANTS, st.sampled_from(_edges())), min_size=1, max_size=40))
def test_times_are_spelled_as_python_spells_them(instants: list[datetime]) -> None:
    for zone in ZONES:
        expected = [i.astimezone(get_timezone(zone)).isoformat() for i in instants]
        assert _spelled(instants, zone) == expected, zone


def test_only_zones_that_no_longer_change_skip_icu() -> None:
    """UTC and Tokyo are fixed (Tokyo since 1951); London and New York change every year;
    São Paulo stopped in 2019; an offset of whole minutes only."""
    assert fixed_offset(get_timezone("UTC")) is not None
    tokyo = fixed_offset(get_timezone("Asia/Tokyo"))
    assert tokyo is not None and tokyo[1] == 9 * 3600
    assert EPOCH + timedelta(microseconds=tokyo[0]) < datetime(1952, 1, 1, tzinfo=UTC)
    sao_paulo = fixed_offset(get_timezone("America/Sao_Paulo"))
    assert sao_paulo is not None
    assert EPOCH + timedelta(microseconds=sao_paulo[0]) > datetime(2019, 2, 1, tzinfo=UTC)
    assert fixed_offset(get_timezone("Europe/London")) is None
    assert fixed_offset(get_timezone("America/New_York")) is None
    assert "make_timestamp" in iso_sql("c", "Asia/Tokyo")
    assert "make_timestamp" not in iso_sql("c", "Europe/London")


def test_an_offset_with_seconds_is_spelled_with_its_seconds() -> None:
    """Local mean time (before about 1900) is seconds off UTC: Kolkata +05:21:10, New York
    -04:56:02. SQL wrote ``+05:21`` where Python's isoformat writes ``+05:21:10``."""
    instants = [datetime(1880, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC),
                datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC)]
    for zone in ("Asia/Kolkata", "America/New_York", "Asia/Tokyo"):
        expected = [i.astimezone(get_timezone(zone)).isoformat() for i in instants]
        assert _spelled(instants, zone) == expected, zone
    assert _spelled(instants[:1], "Asia/Kolkata")[0].endswith("+05:21:10")
