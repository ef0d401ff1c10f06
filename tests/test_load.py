"""The loader's guards: hostile or malformed files end in one clear diagnostic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.load import MAX_BYTES, load_file, load_text


def test_positions_point_at_keys_and_values() -> None:
    doc, problems = load_text("a:\n  b: [x, {c: 1}]\n", "f.yaml")
    assert not problems and doc is not None
    assert doc.position(["a", "b", 1, "c"]) == (2, 14)
    assert doc.position(["a", "b", 1, "c"], key=True) == (2, 11)
    # a path that does not exist falls back to its nearest ancestor
    assert doc.position(["a", "b", 1, "missing"]) == (2, 10)


def test_binary_junk_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    doc, problems = load_file(path)
    assert doc is None and [p.code for p in problems] == ["E-LOAD-BINARY"]


def test_non_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "sjis.yaml"
    path.write_bytes("a: 1\nb: 部長\n".encode("cp932"))
    doc, problems = load_file(path)
    assert doc is None
    assert problems[0].code == "E-LOAD-ENCODING" and problems[0].line == 2


def test_oversized_file_is_rejected_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (MAX_BYTES + 10))
    doc, problems = load_file(path)
    assert doc is None and problems[0].code == "E-LOAD-SIZE"


def test_missing_file_is_a_diagnostic(tmp_path: Path) -> None:
    doc, problems = load_file(tmp_path / "nope.yaml")
    assert doc is None and problems[0].code == "E-LOAD-IO"


@pytest.mark.parametrize("depth", [5_000, 50_000])
def test_deep_nesting_ends_quickly_in_a_diagnostic(depth: int) -> None:
    started = time.monotonic()
    doc, problems = load_text("a: " + "[" * depth + "]" * depth)
    assert doc is None and problems
    assert time.monotonic() - started < 30  # a guard against hangs, not a speed target


def test_alias_reuse_within_limits_is_allowed() -> None:
    doc, problems = load_text("a: &x [1, 2]\nb: *x\n")
    assert not problems and doc is not None and doc.data == {"a": [1, 2], "b": [1, 2]}


def test_yaml_12_scalars_stay_strings() -> None:
    doc, _ = load_text("a: yes\nb: 2026-11-01\nc: '1'\nd: 1.5\ne: true\nf: ~\n")
    assert doc is not None
    assert doc.data == {"a": "yes", "b": "2026-11-01", "c": "1", "d": 1.5, "e": True, "f": None}


@pytest.mark.parametrize(
    "text",
    [
        "a: [x'y, " + "[" * 5000 + "]" * 5000 + "]",  # an apostrophe inside a plain scalar
        "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)),  # deep block nesting
    ],
)
def test_nesting_guard_cannot_be_sidestepped(text: str) -> None:
    doc, problems = load_text(text)
    assert doc is None and problems[0].code == "E-LOAD-DEPTH"


def test_quoted_brackets_do_not_count_as_nesting() -> None:
    doc, problems = load_text("a: '" + "[" * 100 + "'\n")
    assert not problems and doc is not None
