"""A revision's playbook is read from git under the same confinement as the work tree's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from engine.cli import main
from engine.listfiles import MAX_LIST_BYTES
from engine.revisions import Side, compile_side

PLAYBOOK = """apiVersion: engine/v1
kind: Playbook
metadata: {{name: rev, version: "1"}}
teams:
  marketing: {{}}
lead:
  fields: {{company: string}}
lists:
  competitors: {list}
exclusions:
  - {{id: competitor, when: lead.company in lists.competitors}}
stages:
  - {{id: lead, owner: marketing}}
"""
SECRET = "s3cr3t-line-that-must-never-be-printed"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose first commit lists competitors from an in-repo file."""
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    repo = tmp_path / "repo"
    (repo / "playbooks" / "lists").mkdir(parents=True)
    (repo / "shared").mkdir()
    (repo / "shared" / "rivals.txt").write_text("rival.example\n")
    (repo / "playbooks" / "p.yaml").write_text(PLAYBOOK.format(list="lists/c.txt"))
    (repo / "playbooks" / "lists" / "c.txt").write_text("rival.example\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "tag", "base")
    monkeypatch.chdir(repo)
    return repo


def _commit_link(repo: Path, link: str, target: str) -> None:
    path = repo / link
    path.unlink(missing_ok=True)
    os.symlink(target, path)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "link")


def test_links_inside_the_revision_are_followed(repo: Path) -> None:
    _commit_link(repo, "playbooks/lists/c.txt", "../../shared/rivals.txt")
    os.symlink("../shared", repo / "playbooks" / "shared")  # a linked folder too
    (repo / "playbooks" / "p.yaml").write_text(PLAYBOOK.format(list="shared/rivals.txt"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "folder link")
    for rev in ("HEAD~1", "HEAD"):
        compiled = compile_side(Side(rev), "playbooks/p.yaml")
        assert compiled is not None and compiled.lists["competitors"] == {"rival.example"}


@pytest.mark.parametrize("target", ["{secret}", "../../../secret.txt"])
def test_a_link_out_of_the_revision_is_refused_and_never_printed(
        repo: Path, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    _commit_link(repo, "playbooks/lists/c.txt", target.format(secret=repo.parent / "secret.txt"))
    assert main(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--no-impact"]) == 1
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "playbooks/p.yaml at HEAD:9:16: error[E-LIST-OUTSIDE]" in err
    assert "engine-diff-" not in err  # named as the user knows it, not by the scratch copy


def test_escapes_big_files_and_folders_at_a_revision(repo: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cases = {"../../secret.txt": "is outside the repository",
             "../.git/config": "is inside `.git`",
             "lists": "is a directory",
             "lists/big.txt": f"is {MAX_LIST_BYTES + 2:,} bytes"}
    (repo / "playbooks" / "lists" / "big.txt").write_bytes(b"x\n" * (MAX_LIST_BYTES // 2 + 1))
    for written, says in cases.items():
        (repo / "playbooks" / "p.yaml").write_text(PLAYBOOK.format(list=written))
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", written)
        assert main(["diff", "base", "HEAD", "--no-impact"]) == 1, written
        out, err = capsys.readouterr()
        assert says in err and SECRET not in out + err, (written, err)
