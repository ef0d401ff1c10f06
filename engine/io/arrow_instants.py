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

import struct
from typing import Any

from engine.io.cell_forms import ARROW_INSTANT

#: What Arrow may parse for us (declared with the other fast forms in engine.io.cell_forms).
ISO_INSTANT = ARROW_INSTANT


def epoch_micros(text: Any) -> list[int] | None:
    """``text`` (an Arrow string array) as UTC epoch microseconds, or None if any value
    is outside :data:`ISO_INSTANT` or is not a real date and time."""
    micros = epoch_micros_array(text)
    return micros.to_pylist() if micros is not None else None


def epoch_micros_array(text: Any) -> Any:
    """:func:`epoch_micros` as an Arrow int64 array (or None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text.null_count:
        return None
    if len(text) and not _utc_seconds(text) \
            and not pc.all(pc.match_substring_regex(text, ISO_INSTANT)).as_py():
        return None
    try:
        instants = pc.cast(text, pa.timestamp("us", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return instants.cast(pa.int64())


#: ``YYYY-MM-DDThh:mm:ssZ`` by byte position: what a byte there may be.
_SHAPE = [b"12", *[b"0123456789"] * 3, b"-", b"01", b"0123456789", b"-", b"0123", b"0123456789", b"T ",
          b"012", b"0123456789", b":", b"012345", b"0123456789", b":", b"012345", b"0123456789", b"Z"]


def _utc_seconds(text: Any) -> bool:
    """Every value is ``YYYY-MM-DD[T ]hh:mm:ssZ`` (a subset of :data:`ISO_INSTANT`, less
    the exact day/hour ranges, which Arrow's cast enforces): the usual export, checked
    position by position over the values' bytes, a few times faster than the regex."""
    import pyarrow as pa
    import pyarrow.compute as pc

    width = len(_SHAPE)
    if text.type != pa.string() or not len(text):
        return False
    lengths = pc.min_max(pc.binary_length(text)).as_py()
    if lengths["min"] != width or lengths["max"] != width:
        return False
    _, offsets, values = text.buffers()
    (start,) = struct.unpack_from("<i", offsets, 4 * text.offset)
    data = memoryview(values)[start:start + width * len(text)].tobytes()
    return all(not data[at::width].translate(None, allowed) for at, allowed in enumerate(_SHAPE))


def usable(formats: list[str] | None, null_values: list[str]) -> bool:
    """Arrow may stand in for our parser: no explicit formats (tried before ISO 8601), and
    no null marker that an ISO instant could spell (every such text holds a digit)."""
    return not formats and not any(any(c.isdigit() for c in marker) for marker in null_values)
