"""Durations as playbooks write them: ``90d``, ``2h``, ``30m``, ``1w``, ``45s``.

One parser shared by the model (SLAs, cooldowns, half-lives) and the expression
language (``within="14d"``), so the two can never disagree on what ``1w`` means.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")

#: The largest duration accepted anywhere: ten years. Bigger ones are typos.
MAX_SECONDS = 3650 * 86400


class DurationError(ValueError):
    """A duration string that does not parse; the message says what is accepted."""


def parse_seconds(text: str) -> int:
    """Return the number of seconds ``text`` denotes.

    Examples:
        >>> parse_seconds("90d")
        7776000
        >>> parse_seconds("2h")
        7200
    """
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise DurationError(
            f"{text!r} is not a duration; write a whole number and a unit: "
            "s (seconds), m (minutes), h (hours), d (days), w (weeks), e.g. '14d'"
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than ten years; is it a typo?")
    return seconds


def parse_duration(text: str) -> timedelta:
    """Return ``text`` as a :class:`timedelta` (see :func:`parse_seconds`)."""
    return timedelta(seconds=parse_seconds(text))


def format_seconds(seconds: int) -> str:
    """Render seconds in the largest unit that divides them exactly.

    Examples:
        >>> format_seconds(1209600)
        '2w'
        >>> format_seconds(5400)
        '90m'
    """
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
