"""Shared test helpers: paths to the repo's folders and the shared data beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(autouse=True)
def private_temp_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets a temp directory of its own, for the engine and any subprocess it starts.

    The engine keeps scratch (queue and spill files, DuckDB's folder, crash logs) in the temp
    directory; a test that looked in the shared ``/tmp`` would see, or lose, other processes'
    files (another copy of this suite running beside it). Returned for tests that inspect it.
    """
    import tempfile

    folder = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# Hostile cases are inputs run by tests/test_hostile.py (copied to a temporary folder first),
# never collected themselves: a hostile fixture file is not one of the project's fixtures.
collect_ignore_glob = ["hostile/*"]
