"""The loader's guards: hostile or malformed files end in one clear diagnostic."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.load import KIND_WINDOW, MAX_BYTES, declared_kind, load_file, load_text


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


@pytest.mark.parametrize(
    ("text", "at", "says"),
    [
        ("a: [1, 2\nb: 3\nc: 4\n", (1, 4), "unclosed '[' opened at 1:4; the parser noticed at 2:2"),
        ("a: {x: 1\n\n\nb: 2\n", (1, 4), "unclosed '{' opened at 1:4; the parser noticed at 4:2"),
        ('a: 1\nb: "abc\nc: 3\n', (2, 4), 'unclosed " quote opened at 2:4; the parser noticed at 4:1'),
        # not an opening: where it was noticed, naming the block it sits in
        ("a:\n  - 1\n b: 2\n", (3, 2), "did not find expected key at 3:2 (in the block mapping "
                                       "that starts at 1:1)"),
        ("a: b: c\n", (1, 5), "mapping values are not allowed in this context"),
    ],
)
def test_syntax_errors_name_where_the_construct_opened(text: str, at: tuple[int, int],
                                                       says: str) -> None:
    doc, problems = load_text(text, "f.yaml")
    assert doc is None and [p.code for p in problems] == ["E-LOAD-SYNTAX"]
    assert (problems[0].line, problems[0].col) == at
    assert says in problems[0].message


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    doc, problems = load_file(fifo)
    assert doc is None and problems[0].code == "E-LOAD-IO" and "FIFO" in problems[0].message
    assert time.monotonic() - started < 5


def test_a_directory_is_refused(tmp_path: Path) -> None:
    doc, problems = load_file(tmp_path)
    assert doc is None and problems[0].code == "E-LOAD-IO"
    assert "is a directory" in problems[0].message


def test_text_handed_in_directly_has_the_size_limit_too() -> None:
    doc, problems = load_text("a: " + "x" * MAX_BYTES)
    assert doc is None and problems[0].code == "E-LOAD-SIZE"
    doc, problems = load_text("a: " + "é" * (MAX_BYTES // 2))  # under in characters, over in bytes
    assert doc is None and problems[0].code == "E-LOAD-SIZE"


def test_kind_is_sniffed_from_the_head_only(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"kind: Fixture\n" + b"#" * (KIND_WINDOW * 4))
    assert declared_kind(path) == "Fixture"
    os.mkfifo(tmp_path / "pipe.yaml")
    assert declared_kind(tmp_path / "pipe.yaml") is None
