"""Patterns for ``matches``: re2's semantics, so matching is linear in the text.

Python's ``re`` backtracks (``(a+)+$`` can hang a batch run); re2 cannot, and it
rejects the constructs that would need backtracking (backreferences, lookaround),
which the checker reports as ``E-EXPR-REGEX``.

But the google-re2 wrapper costs about a microsecond per call, five times Python's
``re``, and a batch matches titles and emails of every lead. So a pattern with no
repetition at all (literals, classes, alternation, groups, ``^``/``$``, ``.``) —
which cannot backtrack beyond its own length — is also compiled with ``re`` and
searched there whenever the two engines provably agree on the text: always, except
``$`` before a trailing newline (``re`` matches there, re2 does not) and ``(?i)`` on
non-ASCII text (case-folding tables differ). tests/test_expr_regex.py checks the
agreement with hypothesis.
"""

from __future__ import annotations

import re
from functools import lru_cache
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import re2

from engine.diagnostics import EngineError

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

    __slots__ = ("_ascii_only", "_fast", "_looked", "_memo", "_no_trailing_newline", "_regex", "source")

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
        self._fast: re.Pattern[str] | None = None
        self._looked = False  # whether _fast was decided (on the first search)
        self._ascii_only = self._no_trailing_newline = False

    def _python_pattern(self) -> re.Pattern[str] | None:
        """``re``'s compiled pattern when ``re`` may run this one; decided on first search
        (validate compiles every pattern and searches none: it need not pay for this)."""
        shape = _repetition_free(self.source)
        self._looked = True
        if shape is not None:
            self._fast = re.compile(self.source)
            self._ascii_only, self._no_trailing_newline = shape
        return self._fast

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in ``text``."""
        fast = self._fast if self._looked else self._python_pattern()
        if (
            fast is not None
            and not (self._ascii_only and not text.isascii())
            and not (self._no_trailing_newline and text.endswith("\n"))
        ):
            return fast.search(text) is not None
        found = self._memo.get(text)
        if found is None:
            found = self._regex.search(text) is not None
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[text] = found
        return found

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


_PLAIN_OPS = frozenset({sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.BRANCH, sre.SUBPATTERN, sre.IN, sre.AT})
_PLAIN_IN = frozenset({sre.LITERAL, sre.RANGE, sre.NEGATE})
_PLAIN_AT = frozenset({sre.AT_BEGINNING, sre.AT_END})


def _repetition_free(source: str) -> tuple[bool, bool] | None:
    """(needs ASCII text, needs no trailing newline) when ``re`` may run ``source``; else None.

    Only patterns without repetition, categories (``\\d``, ``\\b``: Unicode in ``re``,
    ASCII in re2) or flags other than ``(?i)`` qualify.
    """
    try:
        parsed = sre_parse.parse(source)
    except Exception:
        return None
    flags = parsed.state.flags & ~(sre.SRE_FLAG_UNICODE | sre.SRE_FLAG_IGNORECASE)
    if flags:
        return None
    folding = bool(parsed.state.flags & sre.SRE_FLAG_IGNORECASE)
    saw_end = False
    stack = [list(parsed)]
    while stack:
        for op, arg in stack.pop():
            if op not in _PLAIN_OPS:
                return None
            if folding and not _folds_alike(op, arg):
                return None
            if op is sre.BRANCH:
                stack.extend(list(branch) for branch in arg[1])
            elif op is sre.SUBPATTERN:
                if arg[1] or arg[2]:  # scoped flags
                    return None
                stack.append(list(arg[3]))
            elif op is sre.IN:
                if any(item_op not in _PLAIN_IN for item_op, _ in arg):
                    return None
            elif op is sre.AT:
                if arg not in _PLAIN_AT:
                    return None
                saw_end = saw_end or arg is sre.AT_END
    return folding, saw_end


def _folds_alike(op: Any, arg: Any) -> bool:
    """Under ``(?i)``: literals and ranges that are ASCII, or have no case at all (学生)."""
    if op in (sre.LITERAL, sre.NOT_LITERAL):
        return _caseless_or_ascii(arg)
    if op is sre.IN:
        for item_op, item in arg:
            if item_op is sre.RANGE and not (item[0] < 128 and item[1] < 128):
                return False
            if item_op is sre.LITERAL and not _caseless_or_ascii(item):
                return False
    return True


def _caseless_or_ascii(code: int) -> bool:
    ch = chr(code)
    return code < 128 or (ch.lower() == ch and ch.upper() == ch and ch.casefold() == ch)


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Pattern:
    """The compiled pattern, cached: non-literal patterns repeat across leads."""
    return Pattern(pattern)


class DataPatternError(PatternError, EngineError):
    """A pattern computed at run time (read from a lead's field) that re2 refuses.

    Never a silent False (issue #13, item 7): a lead whose pattern is broken is not
    "no match", it is a lead that cannot be decided, so ``engine evaluate`` rejects it
    with this message and ``decide`` raises it. Patterns written in the playbook are
    checked at validate time instead (``E-EXPR-REGEX``). An :class:`EngineError` too, so
    ``engine test``, ``replay`` and ``explain`` print it for the fixture, never a traceback.
    """

    def __init__(self, message: str) -> None:
        EngineError.__init__(self, message)


def search(pattern: Pattern | str, text: str) -> bool:
    """Whether ``pattern`` (compiled, or a string) occurs in ``text``.

    Raises :class:`DataPatternError` for a string pattern re2 refuses.
    """
    if isinstance(pattern, str):
        source = pattern
        try:
            pattern = compile_pattern(source)
        except PatternError as error:
            raise DataPatternError(
                f"matches(): the pattern {source[:200]!r}, read from the data, is not a valid "
                f"regular expression: {error}") from None
    return pattern.search(text)
