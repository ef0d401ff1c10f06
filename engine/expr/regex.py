"""Patterns for ``matches``: google-re2 only, so matching is linear in the text.

Python's ``re`` backtracks (``(a+)+$`` can hang a batch run); re2 cannot, and it
rejects the constructs that would need backtracking (backreferences, lookaround),
which the checker reports as ``E-EXPR-REGEX``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

#: re2 compiles into a bounded program; a pattern needing more memory is rejected.
_MAX_MEM = 8 << 20


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _MAX_MEM
    options.log_errors = False
    return options


_OPTIONS = _options()


class PatternError(ValueError):
    """A pattern re2 does not accept; the message is re2's."""


#: Answers remembered per pattern: replay matches the same title at every event.
_MEMO_SIZE = 4096


class Pattern:
    """A compiled re2 pattern with a bounded memo of texts it was searched in.

    The google-re2 wrapper costs microseconds per call (UTF-8 encoding, a match
    object); a lead's title is matched once per event during replay, so the memo
    turns that into a dict lookup.
    """

    __slots__ = ("_memo", "_regex", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._memo: dict[str, bool] = {}
        try:
            self._regex = re2.compile(source, _OPTIONS)
        except re2.error as exc:
            detail = exc.args[0] if exc.args else exc
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", errors="replace")
            raise PatternError(str(detail)) from None

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in ``text``."""
        found = self._memo.get(text)
        if found is None:
            found = self._regex.search(text) is not None
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[text] = found
        return found

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Pattern:
    """The compiled pattern, cached: non-literal patterns repeat across leads."""
    return Pattern(pattern)


def search(pattern: Pattern | str, text: str) -> bool:
    """Whether ``pattern`` (compiled, or a string) occurs in ``text``; bad patterns: False."""
    if isinstance(pattern, str):
        try:
            pattern = compile_pattern(pattern)
        except PatternError:
            return False
    return pattern.search(text)
