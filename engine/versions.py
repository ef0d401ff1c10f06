"""``metadata.version`` must move forward when a playbook's rules change (``diff --check-version``).

Versions are free strings; the usual ones (``2026.11.1``, ``1.4.0``, ``v2``) are compared
part by part as numbers. When two versions cannot be ordered (``beta`` → ``gamma``) a
change of string is accepted and the message says that it was a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_PARTS = re.compile(r"^v?(\d+(?:[._-]\d+)*)$", re.IGNORECASE)


def parse(version: str) -> tuple[int, ...] | None:
    """``2026.11.1`` → ``(2026, 11, 1)``; None when it is not dotted numbers."""
    match = _PARTS.match(version.strip())
    if match is None:
        return None
    return tuple(int(p) for p in re.split(r"[._-]", match.group(1)))


def compare(before: str, after: str) -> int | None:
    """-1, 0 or 1 as ``after`` is older, equal or newer; None when they cannot be ordered."""
    if before == after:
        return 0
    old, new = parse(before), parse(after)
    if old is None or new is None:
        return None
    width = max(len(old), len(new))
    old, new = old + (0,) * (width - len(old)), new + (0,) * (width - len(new))
    return (new > old) - (new < old)


def version_problems(diffs: Iterable[Any]) -> list[str]:
    """Messages for playbooks whose rules changed while their version stayed or went back.

    Changes to ``metadata`` alone (owners, description, the version itself) do not
    change decisions, so they need no new version.
    """
    problems = []
    for diff in diffs:
        if diff.status != "changed" or not diff.semantic:
            continue
        before, after = diff.version
        order = compare(str(before), str(after))
        if order == 0:
            problems.append(f"{diff.path}: the rules changed but metadata.version is still "
                            f"{before!r}; raise it (e.g. {_next(str(before))!r})")
        elif order == -1:
            problems.append(f"{diff.path}: metadata.version went back from {before!r} to {after!r}")
    return problems


def notes(diffs: Iterable[Any]) -> list[str]:
    """Versions changed but not comparable: accepted, and said so (the engine guessed)."""
    return [f"{d.path}: metadata.version {d.version[0]!r} → {d.version[1]!r} cannot be ordered; "
            "accepted because it changed" for d in diffs
            if d.status == "changed" and d.semantic and compare(str(d.version[0]),
                                                                str(d.version[1])) is None]


def _next(version: str) -> str:
    parts = parse(version)
    if parts is None:
        return version + ".1"
    return ".".join(map(str, (*parts[:-1], parts[-1] + 1)))
