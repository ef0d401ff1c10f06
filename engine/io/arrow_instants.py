"""Timestamp text to UTC epoch microseconds in Arrow, only where that is provably our parse.

:class:`engine.io.timestamps.TimestampParser` is the definition of what a timestamp
cell means. Arrow's ISO 8601 cast is used in its place only for text matching
:data:`ISO_INSTANT`: a full date and time in the years 1000-2999 with an explicit ``Z``
or ``±hh:mm`` offset, nothing before or after. For such text the zone the mapping
would give a naive value does not matter, and our parser reads it with
``datetime.fromisoformat``: the same instant (tests/test_io_arrow_instants.py checks it
on generated text). Anything else — naive, date-only, slash forms, explicit formats,
blanks, impossible dates that Arrow rejects — makes the caller use the row path.
"""

from __future__ import annotations

from typing import Any

#: What Arrow may parse for us. Field ranges are checked by Arrow (Feb 30 fails the cast).
ISO_INSTANT = (
    r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


def epoch_micros(text: Any) -> list[int] | None:
    """``text`` (an Arrow string array) as UTC epoch microseconds, or None if any value
    is outside :data:`ISO_INSTANT` or is not a real date and time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text.null_count:
        return None
    if len(text) and not pc.all(pc.match_substring_regex(text, ISO_INSTANT)).as_py():
        return None
    try:
        instants = pc.cast(text, pa.timestamp("us", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    micros: list[int] = instants.cast(pa.int64()).to_pylist()
    return micros


def usable(formats: list[str] | None, null_values: list[str]) -> bool:
    """Arrow may stand in for our parser: no explicit formats (tried before ISO 8601), and
    no null marker that an ISO instant could spell (every such text holds a digit)."""
    return not formats and not any(any(c.isdigit() for c in marker) for marker in null_values)
