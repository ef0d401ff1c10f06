"""Turn the many ways exports write a moment into one timezone-aware datetime.

Order of attempts is fixed so results never depend on the data: the mapping's explicit
formats first (they say what the user knows), then ISO 8601 (with ``Z``, offsets, naive,
or date-only), then the slash forms Japanese Excel writes (``2024/04/01 9:30``).
A timestamp without an offset is read in the mapping's timezone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.io.errors import InputError

#: Tried after ISO 8601, for exports that went through a spreadsheet.
FALLBACK_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")

_CACHE_LIMIT = 65536


class TimestampError(ValueError):
    """A value that is not a timestamp in any accepted form; the message shows the value."""


def get_timezone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``UTC``, ``Asia/Tokyo``); a clear error for a misspelling."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown timezone {name!r}", hint="use an IANA name such as 'Asia/Tokyo' or 'UTC'"
        ) from None


class TimestampParser:
    """Parses one column's values; caches because exports repeat the same dates a lot.

    The cache has two generations of at most ``_CACHE_LIMIT // 2`` entries each: when
    the young one fills up it becomes the old one and the previous old one is dropped,
    so memory stays bounded while values seen recently (in either) stay cached, instead
    of the whole cache being cleared at once.
    """

    def __init__(self, formats: Sequence[str] = (), default_tz: tzinfo | str = "UTC") -> None:
        self.formats = tuple(formats)
        self.tz = get_timezone(default_tz) if isinstance(default_tz, str) else default_tz
        self._cache: dict[str, datetime] = {}
        self._old: dict[str, datetime] = {}

    def parse(self, value: str) -> datetime:
        """Return ``value`` as an aware datetime or raise :class:`TimestampError`.

        With no explicit formats, ISO 8601 is the first form tried, and for text without
        surrounding blanks ``datetime.fromisoformat`` on the raw value (3.11 reads ``Z``)
        gives what :meth:`_parse` would: that fast path is inlined here because every
        event's timestamp comes through, mostly unique; anything else takes the full path.
        """
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        result = self._old.get(value)
        if result is None:
            if self.formats:
                result = self._parse(value.strip())
            else:
                try:
                    result = datetime.fromisoformat(value)
                except ValueError:
                    result = self._parse(value.strip())
                else:
                    if result.tzinfo is None:
                        result = result.replace(tzinfo=self.tz)
        if len(self._cache) >= _CACHE_LIMIT // 2:
            self._old = self._cache
            self._cache = {}
        self._cache[value] = result
        return result

    def _parse(self, text: str) -> datetime:
        for fmt in self.formats:
            try:
                return self._aware(datetime.strptime(text, fmt))
            except ValueError:
                pass
        iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        try:
            return self._aware(datetime.fromisoformat(iso))
        except ValueError:
            pass
        for fmt in FALLBACK_FORMATS:
            try:
                return self._aware(datetime.strptime(text, fmt))
            except ValueError:
                pass
        expected = ", ".join(repr(f) for f in self.formats) or "ISO 8601"
        raise TimestampError(f"{text!r} is not a timestamp (expected {expected})")

    def _aware(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self.tz)
        return moment


def parse_timestamp(value: str, formats: Sequence[str] = (), default_tz: tzinfo | str = "UTC") -> datetime:
    """One-off convenience over :class:`TimestampParser`."""
    return TimestampParser(formats, default_tz).parse(value)
