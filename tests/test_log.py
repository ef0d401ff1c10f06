"""engine log: the semantic history of playbooks, on a repository built here and on this one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.history_log import pr_number
from tests.conftest import ROOT

PLAYBOOK = """apiVersion: engine/v1
kind: Playbook
metadata: {name: tiny, version: "VERSION", owners: {default: [revops]}}
teams:
  marketing: {}
  inside_sales: {reps: 2, slots_per_rep_per_week: 80}
events:
  inquiry: {}
scoring:
  fit:
    rules:
      - {id: big, when: lead.employees >= 100, points: FIT}
  engagement:
    half_life: 30d
    points: {inquiry: 40}
stages:
  - {id: lead, owner: marketing}
  - {id: promising, owner: inside_sales, entry: fit >= THRESHOLD}
handoffs:
  - {id: mql, to: inside_sales, when: stage >= "promising", sla: 2d}
lead:
  fields: {employees: number}
"""


def _playbook(version: str, fit: int, threshold: int) -> str:
    return (PLAYBOOK.replace("VERSION", version).replace("FIT", str(fit))
            .replace("THRESHOLD", str(threshold)))


def _commit(repo: Path, message: str, day: int) -> None:
    stamp = f"2026-11-{day:02d}T09:00:00+09:00"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    for args in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", "-c", "user.name=Aiko Tanaka", "-c", "user.email=aiko@example.invalid",
                        "-c", "commit.gpgsign=false", *args], cwd=repo, env=env, check=True,
                       capture_output=True)


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Five commits: added, a rule change (PR), a comment only, a rename + change, broken."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(_playbook("1", 40, 30))
    _commit(tmp_path, "Add the tiny playbook", 1)
    (folder / "tiny.yaml").write_text(_playbook("2", 25, 20))
    _commit(tmp_path, "Lower the promising threshold (#12)", 2)
    (folder / "tiny.yaml").write_text("# why the threshold is 20: see #12\n" + _playbook("2", 25, 20))
    _commit(tmp_path, "Explain the threshold", 3)
    (folder / "tiny.yaml").rename(folder / "small.yaml")
    (folder / "small.yaml").write_text(_playbook("3", 30, 20))
    _commit(tmp_path, "Merge pull request #14 from acme/rename\n\nRename tiny to small", 4)
    (folder / "small.yaml").write_text(_playbook("4", 30, 20).replace("fit >= 20", "fitt >= 20"))
    _commit(tmp_path, "Typo in an entry", 5)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pr_numbers_from_squash_and_merge_messages() -> None:
    assert pr_number("Lower the threshold (#123)") == 123
    assert pr_number("Merge pull request #7 from acme/branch") == 7
    assert pr_number("Refs #9 in the middle") is None


def test_log_follows_renames_and_shows_each_semantic_change(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "playbooks/small.yaml", "--format", "json"]) == 0
    entries: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["playbooks/small.yaml"]
    assert [e["status"] for e in entries] == ["invalid", "changed", "unchanged", "changed", "added"]
    assert [e["pr"] for e in entries] == [None, 14, None, 12, None]
    renamed = entries[1]
    assert renamed["renamed_from"] == "playbooks/tiny.yaml" and renamed["path"] == "playbooks/small.yaml"
    assert {c["path"]: (c["before"], c["after"]) for c in renamed["changes"]} == {
        "metadata.version": ("2", "3"), "scoring.fit.rules[big].points": (25, 30)}
    assert {c["path"] for c in entries[3]["changes"]} == {
        "metadata.version", "scoring.fit.rules[big].points", "stages[promising].entry"}
    assert "fitt" in entries[0]["note"]  # the broken version says why, and is not skipped
    assert entries[3]["author"] == "Aiko Tanaka" and entries[3]["date"].startswith("2026-11-02")


def test_log_markdown_snapshot(history: Path, capsys: pytest.CaptureFixture[str], snapshot: Any) -> None:
    assert main(["log", "--format", "markdown"]) == 0  # default: the playbooks at HEAD
    snapshot.assert_match(capsys.readouterr().out, "log.md")


def test_log_since_and_bad_paths(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "playbooks/small.yaml", "--since", "HEAD~2"]) == 0
    out = capsys.readouterr().out
    assert "Typo in an entry" in out and "Lower the promising threshold" not in out
    assert main(["log", "playbooks/typo.yaml"]) == 1
    assert "no commit touched it" in capsys.readouterr().err
    assert main(["log", "/etc/passwd"]) == 1
    assert "outside the repository" in capsys.readouterr().err
    assert main(["log", "--since", "nope"]) == 2


def test_log_since_skips_playbooks_untouched_in_the_range(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`engine log --since REV` over every playbook failed when one had no commit since REV."""
    (history / "playbooks" / "quiet.yaml").write_text(_playbook("1", 10, 5))
    _commit(history, "Add a quiet playbook", 6)
    (history / "playbooks" / "small.yaml").write_text(_playbook("5", 30, 20))
    _commit(history, "Fix the typo", 7)
    assert main(["log", "--since", "HEAD~1", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert list(shown) == ["playbooks/small.yaml"]
    assert [e["message"].splitlines()[0] for e in shown["playbooks/small.yaml"]] == ["Fix the typo"]
    assert main(["log", "--since", "HEAD"]) == 0
    assert capsys.readouterr().out == "no playbook changed since HEAD\n"


def test_log_on_this_repository(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    monkeypatch.chdir(ROOT)
    assert main(["log", "playbooks/smb-saas.yaml", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)["playbooks/smb-saas.yaml"]
    assert entries[-1]["status"] == "added"
    changed = [c["path"] for e in entries if e["status"] == "changed" for c in e["changes"]]
    assert "stages[appointment].entry" in changed  # e061c96: deal_lost closes the appointment
