"""Refuse output paths that would overwrite an input or another output of the same run.

``--out leads.csv --leads leads.csv`` used to replace the export with its decisions, and
``--rejects`` equal to ``--out`` left only one of the two. Paths are compared as the
files they name: resolved through symlinks and ``..`` (the target may not exist yet),
and with ``os.path.samefile`` where both exist (hard links, case-insensitive file
systems). A queue folder that holds an input is refused too: its team files are written
into it under names the playbook chooses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from engine.diagnostics import EngineError

#: (what names the path for the user, e.g. "--out", the path)
Named = tuple[str, Path]


def same_file(a: Path, b: Path) -> bool:
    """Whether writing ``a`` would write ``b``."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): the real paths decided
        return False


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def refuse_overlaps(inputs: Sequence[Named], outputs: Sequence[Named], queues: Named | None = None) -> None:
    """Raise :class:`EngineError` when an output is an input or another output, or when the
    queue folder holds an input; nothing has been written when it does."""
    earlier: list[Named] = []
    for label, path in outputs:
        for other_label, other in (*inputs, *earlier):
            if same_file(path, other):
                what = "the input" if (other_label, other) in inputs else "the output"
                raise EngineError(
                    f"{label} {path} is {what} {other_label} {other}: writing it would destroy "
                    f"{'the input' if what == 'the input' else 'the other output'}, nothing was written "
                    f"(hint: give {label} a path of its own)"
                )
        earlier.append((label, path))
    if queues is not None:
        label, folder = queues
        for other_label, other in inputs:
            if _inside(other, folder):
                raise EngineError(
                    f"{label} {folder} holds the input {other_label} {other}: the run writes a file "
                    "per team there, nothing was written (hint: give the queues a folder of their own)"
                )
