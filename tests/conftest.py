"""Shared test helpers: paths to the repo's folders and the shared data beside it."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(autouse=True, scope="session")
def statement_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One folder of kept DuckDB statements (engine.sql.statement_cache) for the whole
    session, subprocesses included: the suite never writes to the user's cache, and its
    runs take both paths, a playbook's first run rendering and the next ones reading."""
    folder = tmp_path_factory.mktemp("engine-cache")
    with pytest.MonkeyPatch.context() as session:  # the function-scoped fixture cannot serve a session
        session.setenv("ENGINE_CACHE", str(folder))
        yield folder


# Hostile cases are inputs run by tests/test_hostile.py (copied to a temporary folder first),
# never collected themselves: a hostile fixture file is not one of the project's fixtures.
collect_ignore_glob = ["hostile/*"]
