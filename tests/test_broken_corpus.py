"""Every deliberately broken playbook gives its diagnostic at the right place.

A case is a file in tests/broken/; its golden output is the `.diagnostics` file
beside it (update with `pytest --snapshot-update`). Adding a case is adding a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.diagnostics import Severity, render_text
from engine.validate import validate_path

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(p.name for p in BROKEN.glob("*.yaml"))


@pytest.mark.parametrize("name", CASES)
def test_broken_playbook_diagnostics(name: str, snapshot) -> None:  # type: ignore[no-untyped-def]
    cwd = os.getcwd()
    os.chdir(BROKEN)  # file names in the golden output stay relative
    try:
        result = validate_path(Path(name))
    finally:
        os.chdir(cwd)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert errors, f"{name} is meant to be broken but validated"
    sources = {name: (BROKEN / name).read_text(encoding="utf-8", errors="replace")}
    snapshot.snapshot_dir = BROKEN
    snapshot.assert_match(render_text(result.diagnostics, sources), name[:-5] + ".diagnostics")
