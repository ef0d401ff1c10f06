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


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The compiled re2 pattern, cached: non-literal patterns repeat across leads."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", errors="replace")
        raise PatternError(str(detail)) from None


def search(pattern: Any, text: str) -> bool:
    """Whether ``pattern`` (compiled, or a string) occurs in ``text``; bad patterns: False."""
    if isinstance(pattern, str):
        try:
            pattern = compile_pattern(pattern)
        except PatternError:
            return False
    return pattern.search(text) is not None
