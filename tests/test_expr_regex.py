"""``matches`` answers as re2 does, whichever engine runs it.

Repetition-free patterns also run on Python's ``re`` (five times cheaper per call);
this checks that the answer never differs from re2's, on texts chosen to hit the known
differences: trailing newlines before ``$``, non-ASCII case folding under ``(?i)``.
"""

from __future__ import annotations

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.expr.regex import Pattern, _repetition_free

PATTERNS = [
    "部長|Director|VP|Head",
    "課長|Manager",
    "(?i)student|学生",
    r"@(gmail\.com|yahoo\.co\.jp|outlook\.com|hotmail\.com)$",
    "^CEO$",
    "^[A-Z][a-z]",
    "[^a-z.]x",
    "(?i)^k.",
    "(?i)[a-f]x",
    "(?i)straße",
    "(?i)ſ",
    "a.b",
    "(?:ab|cd)(e|f)",
    "ＶＰ|ｖｐ",
]
ALPHABET = st.sampled_from(
    [*"abcdefxkKsSß ſ.@\n\r\tABZCEO部長課学生ＶＰｖｐİıé", "\u212a", "gmail.com", "Director"]
)
TEXTS = st.lists(ALPHABET, max_size=12).map("".join)


def test_only_repetition_free_patterns_take_the_fast_path() -> None:
    assert _repetition_free("部長|Director|VP|Head") == (False, False)
    assert _repetition_free(r"@(gmail\.com)$") == (False, True)
    assert _repetition_free("(?i)student|学生") == (True, False)
    plain, repeated = Pattern("部長|Director|VP|Head"), Pattern("a*")
    assert plain.search("VP") and repeated.search("b")  # the first search decides the engine
    assert plain._fast is not None and repeated._fast is None
    for slow in ("(a+)+$", "a*", "a{2}", r"\d", r"\bVP", "(?m)^a", "(?s).", "(?i:a)b", "(?i)ﬀ", "(?i)[à-ÿ]"):
        assert _repetition_free(slow) is None, slow


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(st.sampled_from(PATTERNS), TEXTS)
def test_both_engines_agree(pattern: str, text: str) -> None:
    assert Pattern(pattern).search(text) == (re2.search(pattern, text) is not None), (pattern, text)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(st.lists(st.sampled_from(["a", "K", "ß", "学", r"\.", ".", "^", "$", "[a-c]", "[^x]", "(?:b|k)"]),
                min_size=1, max_size=5), st.booleans(), TEXTS)
def test_generated_patterns_agree(parts: list[str], fold: bool, text: str) -> None:
    pattern = ("(?i)" if fold else "") + "".join(parts)
    try:
        expected = re2.search(pattern, text) is not None
    except re2.error:
        return
    assert Pattern(pattern).search(text) == expected, (pattern, text)
