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
_GENERATION = _CACHE_LIMIT // 2
#: The cache pays when a generation saw at least one hit per this many new values ...
_PAYING = 8
#: ... else this many values are parsed without it before it is tried again.
_BYPASS = 8 * _GENERATION


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

    Event logs often hold a different instant on every row, and then the cache only
    costs (a miss, an insert, memory): a generation that filled up with fewer than one
    hit per ``_PAYING`` new values turns the cache off for the next ``_BYPASS`` values,
    after which it is tried again.
    """

    def __init__(self, formats: Sequence[str] = (), default_tz: tzinfo | str = "UTC") -> None:
        self.formats = tuple(formats)
        self.tz = get_timezone(default_tz) if isinstance(default_tz, str) else default_tz
        self._cache: dict[str, datetime] = {}
        self._old: dict[str, datetime] = {}
        self._hits = 0
        self._bypass = 0

    def parse(self, value: str) -> datetime:
        """Return ``value`` as an aware datetime or raise :class:`TimestampError`."""
        if self._bypass:
            self._bypass -= 1
            return self._fresh(value)
        cached = self._cache.get(value)
        if cached is None:
            cached = self._old.get(value)
            if cached is None:
                cached = self._fresh(value)
            else:
                self._hits += 1
            if len(self._cache) >= _GENERATION:
                self._next_generation()
            self._cache[value] = cached
        else:
            self._hits += 1
        return cached

    def _next_generation(self) -> None:
        if self._hits * _PAYING < len(self._cache):
            self._bypass = _BYPASS
            self._old = {}
        else:
            self._old = self._cache
        self._cache = {}
        self._hits = 0

    def _fresh(self, value: str) -> datetime:
        """Parse ``value`` without the cache, by a fast path if it is plainly ISO 8601.

        With no explicit formats, ISO is the first form tried, and for text without
        surrounding blanks ``datetime.fromisoformat`` on the raw value (3.11 reads ``Z``)
        gives what :meth:`_parse` would; anything else takes the full path.
        """
        if not self.formats:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.tz)
        return self._parse(value.strip())

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
