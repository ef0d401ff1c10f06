"""`engine test` end to end: a changed weight or threshold fails with a readable diff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example playbooks and fixtures to break."""
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    shutil.copytree(ROOT / "fixtures", tmp_path / "fixtures")
    return tmp_path


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", "test", *args], cwd=project,
                          capture_output=True, text=True, check=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_examples_pass_with_full_coverage(project: Path) -> None:
    result = run(project, "--coverage", "--threshold", "95")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule coverage: 100.0%" in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("      inquiry: 40\n", "      inquiry: 35\n"),  # a weight
        ("(surge and fit >= 30 and stage < \"promising\")",
         "(surge and fit >= 50 and stage < \"promising\")"),  # a threshold
    ],
)
def test_changed_rule_fails_with_readable_diff(project: Path, old: str, new: str) -> None:
    edit(project / "playbooks" / "smb-saas.yaml", old, new)
    result = run(project, "fixtures/smb-saas")
    assert result.returncode == 1
    assert "the playbook now decides differently" in result.stdout
    assert "(snapshot)" in result.stdout and "(now)" in result.stdout
    assert any(line.startswith("-    ") for line in result.stdout.splitlines())
    assert any(line.startswith("+    ") for line in result.stdout.splitlines())


def test_missing_snapshot_fails_and_update_writes_it(project: Path) -> None:
    (project / "fixtures" / "smb-saas" / "snapshots" / "surge.txt").unlink()
    assert run(project, "fixtures/smb-saas").returncode == 1
    assert run(project, "fixtures/smb-saas", "--snapshot-update").returncode == 1  # reports it
    assert (project / "fixtures" / "smb-saas" / "snapshots" / "surge.txt").is_file()
    assert run(project, "fixtures/smb-saas").returncode == 0


def test_orphaned_snapshot_is_reported(project: Path) -> None:
    (project / "fixtures" / "smb-saas" / "snapshots" / "gone.txt").write_text("x\n")
    result = run(project, "fixtures/smb-saas")
    assert "orphaned snapshot (no fixture)" in result.stdout and "gone.txt" in result.stdout


def test_threshold_fails_when_rules_are_untested(project: Path) -> None:
    for name in ("lost-deal.yaml", "competitor.yaml"):
        (project / "fixtures" / "smb-saas" / name).unlink()
        (project / "fixtures" / "smb-saas" / "snapshots" / name.replace(".yaml", ".txt")).unlink()
    result = run(project, "fixtures/smb-saas", "--coverage", "--threshold", "99")
    assert result.returncode == 1
    assert "exclusions/competitor never exercised" in result.stdout


def test_bad_fixture_is_a_clear_failure(project: Path) -> None:
    edit(project / "fixtures" / "smb-saas" / "surge.yaml", "type: email_click", "type: email_clik")
    result = run(project, "fixtures/smb-saas/surge.yaml")
    assert result.returncode == 1
    assert "unknown event type `email_clik`" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
