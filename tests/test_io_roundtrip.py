"""Property: whatever text we write as CSV or JSONL, the readers give back unchanged
(CSV with the formula guard: each cell as :func:`engine.io.writers.guard_cell` made it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.io import read_rows, write_rows
from engine.io.writers import guard_cell

# Cells as exports hold them: any text but NUL and lone surrogates, incl. quotes and newlines.
cell = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
rows = st.lists(st.tuples(cell, cell), max_size=8)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_write_then_read_is_identity(data: list[tuple[str, str]]) -> None:
    records = [{"a": a, "b": b} for a, b in data]
    guarded = [{k: guard_cell(v) for k, v in r.items()} for r in records]
    with tempfile.TemporaryDirectory() as folder:
        for name, guard, expected in (("o.csv", False, records), ("o.jsonl", True, records),
                                      ("g.csv", True, guarded)):  # JSONL is never guarded
            target = Path(folder) / name
            write_rows(target, ["a", "b"], records, csv_guard=guard)
            got = [row for _, row in read_rows(target)]
            assert got == expected
