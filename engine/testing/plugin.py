"""A pytest plugin that collects fixture YAML files and snapshot-tests their timelines.

Each ``kind: Fixture`` file is one test: replay it against its playbook, render the
timeline (:mod:`engine.render`) and compare it with ``snapshots/NAME.txt`` beside
the fixture using pytest-snapshot (``--snapshot-update`` rewrites; a missing
snapshot fails). ``engine test`` runs pytest with this plugin; plain ``pytest``
picks it up from the repository's root ``conftest.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_snapshot.plugin import Snapshot

from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.fixtures import Fixture, is_fixture, load_fixture
from engine.render import render_timeline
from engine.replay import Timeline, replay
from engine.testing.coverage import Coverage
from engine.validate import ValidationResult, load_playbook

SNAPSHOT_DIR = "snapshots"
_COVERAGE = pytest.StashKey[Coverage]()
_PLAYBOOKS = pytest.StashKey[dict[Path, ValidationResult]]()
_SEEN = pytest.StashKey[set[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("engine", "playbook fixtures")
    group.addoption("--engine-coverage", action="store_true",
                    help="Report playbook rules no fixture exercised.")
    group.addoption("--engine-threshold", type=float, default=None,
                    help="Fail when rule coverage is below this percentage.")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_COVERAGE] = Coverage()
    config.stash[_PLAYBOOKS] = {}
    config.stash[_SEEN] = set()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and is_fixture(file_path):
        return FixtureFile.from_parent(parent, path=file_path)
    return None


class FixtureFile(pytest.File):
    """One fixture file: one test item."""

    def collect(self) -> Iterator[pytest.Item]:
        yield FixtureItem.from_parent(self, name=self.path.stem)


class SnapshotMismatch(Exception):
    """The replayed timeline differs from the stored one."""


class FixtureItem(pytest.Item):
    """Replay one fixture and compare its timeline with the snapshot."""

    def _load(self) -> tuple[Fixture, CompiledPlaybook]:
        cache = self.config.stash[_PLAYBOOKS]

        def playbooks(path: Path) -> ValidationResult:
            if path not in cache:
                cache[path] = load_playbook(path)
            return cache[path]

        fixture = load_fixture(self.path, playbooks)
        compiled = cache[fixture.playbook_path].compiled
        assert compiled is not None
        return fixture, compiled

    def runtest(self) -> None:
        fixture, cp = self._load()
        timeline = replay(cp, fixture.lead, fixture.events, fixture.as_of,
                          lead_id=fixture.lead_id, check_at=fixture.check_at, contacts=fixture.contacts)
        self.config.stash[_COVERAGE].add(cp, (s.decision for s in timeline.steps))
        text = render(fixture, cp, timeline)
        snapshot_dir = self.path.parent / SNAPSHOT_DIR
        name = f"{self.path.stem}.txt"
        self.config.stash[_SEEN].add((snapshot_dir / name).resolve())
        stored = snapshot_dir / name
        before = stored.read_text(encoding="utf-8") if stored.is_file() else None
        update = bool(self.config.getoption("snapshot_update", default=False))
        if before is not None and before != text and not update:
            raise SnapshotMismatch(_diff(self.path, before, text))
        with Snapshot(update, False, snapshot_dir) as snapshot:
            snapshot.assert_match(text, name)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, SnapshotMismatch):
            return str(excinfo.value)
        if isinstance(excinfo.value, EngineError):
            detail = "\n".join(f"  {d.file}:{d.line}:{d.col}: {d.message}"
                               for d in excinfo.value.diagnostics)
            return f"{excinfo.value.message}\n{detail}".rstrip()
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"fixture {self.path.name}"


def render(fixture: Fixture, cp: CompiledPlaybook, timeline: Timeline) -> str:
    """The snapshot text: a header naming fixture and playbook, then the timeline."""
    meta = cp.playbook.metadata
    title = (f"fixture {fixture.name}: {fixture.description}\n"
             f"playbook {meta.name} {meta.version}, lead {fixture.lead_id}\n")
    return render_timeline(timeline, title)


def _diff(path: Path, before: str, now: str) -> str:
    lines = difflib.unified_diff(before.splitlines(), now.splitlines(),
                                 fromfile=f"{path.name} (snapshot)", tofile=f"{path.name} (now)",
                                 lineterm="", n=2)
    return (f"{path}: the playbook now decides differently\n"
            + "\n".join(lines)
            + "\n(review the change; if it is intended run `engine test --snapshot-update`)")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    coverage = config.stash[_COVERAGE]
    orphans = _orphans(config)
    for orphan in orphans:
        terminalreporter.write_line(f"orphaned snapshot (no fixture): {orphan}")
    if config.getoption("engine_coverage") or config.getoption("engine_threshold") is not None:
        terminalreporter.write_sep("-", "playbook rule coverage")
        terminalreporter.write(coverage.report())


def _orphans(config: pytest.Config) -> list[Path]:
    seen = config.stash[_SEEN]
    folders = {p.parent for p in seen}
    return sorted(p for folder in folders for p in folder.glob("*.txt") if p.resolve() not in seen)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    threshold = session.config.getoption("engine_threshold")
    if threshold is not None and session.config.stash[_COVERAGE].percent < threshold:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
