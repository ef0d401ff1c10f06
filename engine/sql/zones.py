"""When a time zone's UTC offset changes: what SQL needs to match Python's zone arithmetic.

DuckDB's zone functions go through ICU and cost about a microsecond a value (issue #17:
spelling each decision's times took 2.7 s of CPU per 3M values). Where a zone's offset
is known not to change any more, SQL adds it as a number instead (:func:`fixed_offset`);
where it does change, naive times on the days around a change are left to Python
(:func:`changeover_days`, used by :mod:`engine.sql.cells`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache

from engine.sql.inputs import literal

#: The years searched for changes. Nothing is assumed of instants before the first.
FIRST_YEAR, LAST_YEAR = 1900, 2100


@cache
def changeover_days(zone: tzinfo) -> tuple[str, ...]:
    """Local dates (±1 day) on which ``zone``'s UTC offset changes, 1900-2100 (none for UTC)."""
    if zone is UTC:
        return ()
    days: list[str] = []
    day = date(FIRST_YEAR, 1, 1)
    last = datetime(FIRST_YEAR, 1, 1, tzinfo=zone).utcoffset()
    while day.year <= LAST_YEAR:
        following = day + timedelta(days=1)
        offset = datetime(following.year, following.month, following.day, tzinfo=zone).utcoffset()
        if offset != last:
            days.extend(str(d) for d in (day - timedelta(days=1), day, following))
        last, day = offset, following
    return tuple(dict.fromkeys(days))


@cache
def fixed_offset(zone: tzinfo) -> tuple[int, int] | None:
    """``(since, seconds)``: from ``since`` (microseconds since the epoch) on, ``zone`` is
    ``seconds`` ahead of UTC for good; None when it still changes or is not whole minutes.

    "For good": no change from ``since`` to the end of 2100. A zone with daylight saving
    changes every year up to then, so one without a change in its last years has no
    such rule, and zoneinfo keeps its last offset past its table. ``since`` is two days
    after the last change, and never before 1900 (local mean times)."""
    days = changeover_days(zone)
    start = date(FIRST_YEAR, 1, 2)
    if days:
        last = date.fromisoformat(days[-1])
        if last.year >= LAST_YEAR - 1:
            return None
        start = max(start, last + timedelta(days=2))
    offset = datetime(LAST_YEAR, 12, 31, tzinfo=zone).utcoffset()
    assert offset is not None
    seconds = int(offset.total_seconds())
    if seconds % 60:
        return None
    since = datetime(start.year, start.month, start.day, tzinfo=zone)
    return int(since.timestamp()) * 1_000_000, seconds


def icu_spelling(c: str, zone: str) -> str:
    """``c`` (a non-NULL TIMESTAMPTZ) in ``zone`` as ``isoformat`` spells it, through
    DuckDB's zone functions (ICU): right for every zone and instant, about 1 µs a value."""
    z = literal(zone)
    local = f"timezone({z}, {c})"
    offset = f"date_diff('second', timezone('UTC', {c}), {local})"
    return (
        f"strftime({local}, '%Y-%m-%dT%H:%M:%S')"
        f" || CASE WHEN strftime({local}, '%f') <> '000000' THEN '.' || strftime({local}, '%f') ELSE '' END"
        f" || CASE WHEN {offset} < 0 THEN '-' ELSE '+' END"
        f" || lpad(CAST(abs({offset}) // 3600 AS VARCHAR), 2, '0') || ':'"
        f" || lpad(CAST((abs({offset}) % 3600) // 60 AS VARCHAR), 2, '0')"
        # an offset of seconds (local mean time, before about 1900) keeps them, as isoformat does
        f" || CASE WHEN abs({offset}) % 60 <> 0 THEN ':' || lpad(CAST(abs({offset}) % 60 AS VARCHAR), 2, '0')"
        " ELSE '' END"
    )


def iso_sql(c: str, zone: str) -> str:
    """``c`` (any SQL expression, a TIMESTAMPTZ) in ``zone``, as
    ``datetime.astimezone(zone).isoformat()`` spells it.

    Where ``zone``'s offset no longer changes (UTC, Asia/Tokyo: engine.sql.zones), the
    local time is the instant plus that offset, a number: no ICU call per value (0.16×
    the CPU time, ``bench/bench_sql_cells.py``). Earlier instants, and zones that change,
    take ICU's answer."""
    from engine.io.timestamps import get_timezone

    spelled = icu_spelling(c, zone)
    fixed = fixed_offset(get_timezone(zone))
    if fixed is None:
        return f"CASE WHEN {c} IS NULL THEN '' ELSE {spelled} END"
    since, seconds = fixed
    naive = f"make_timestamp(epoch_us({c}) + {seconds * 1_000_000})"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    suffix = f"{'-' if seconds < 0 else '+'}{hours:02}:{minutes:02}"
    added = (f"strftime({naive}, '%Y-%m-%dT%H:%M:%S') || CASE WHEN epoch_us({c}) % 1000000 <> 0 "
             f"THEN '.' || strftime({naive}, '%f') ELSE '' END || '{suffix}'")
    return f"CASE WHEN {c} IS NULL THEN '' WHEN epoch_us({c}) >= {since} THEN {added} ELSE {spelled} END"
