"""List files are read from inside the repository only, and only when small regular text files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.listfiles import MAX_LIST_BYTES, ListFileError, read_list_file, repository_root


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "playbooks" / "lists").mkdir(parents=True)
    return repo


def _refused(base: Path, written: str) -> ListFileError:
    with pytest.raises(ListFileError) as caught:
        read_list_file(base, written)
    return caught.value


def test_items_are_lines_without_blanks_comments_or_bom(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "playbooks/lists/c.txt").write_bytes("\ufeffa.example\n\n# note\n  b.example  \n".encode())
    assert read_list_file(repo / "playbooks", "lists/c.txt") == {"a.example", "b.example"}


def test_the_repository_is_the_git_work_tree_else_the_playbooks_folder(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert repository_root(repo / "playbooks" / "lists") == repo.resolve()
    worktree = tmp_path / "worktree"
    (worktree / "sub").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: /elsewhere\n")  # a linked worktree's .git is a file
    assert repository_root(worktree / "sub") == worktree.resolve()
    plain = tmp_path / "plain" / "playbooks"
    plain.mkdir(parents=True)
    assert repository_root(plain) == plain.resolve()


def test_paths_inside_the_repository_may_go_up_and_through_links(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "shared").mkdir()
    (repo / "shared/c.txt").write_text("a.example\n")
    assert read_list_file(repo / "playbooks", "../shared/c.txt") == {"a.example"}
    os.symlink("../../shared/c.txt", repo / "playbooks/lists/link.txt")
    assert read_list_file(repo / "playbooks", "lists/link.txt") == {"a.example"}


def test_escapes_are_refused_without_reading(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (tmp_path / "secret.txt").write_text("top-secret\n")
    base = repo / "playbooks"
    assert _refused(base, "../../secret.txt").code == "E-LIST-OUTSIDE"
    assert "absolute" in _refused(base, str(tmp_path / "secret.txt")).message
    os.symlink(tmp_path / "secret.txt", base / "lists/out.txt")
    assert "through a symbolic link" in _refused(base, "lists/out.txt").message
    os.symlink(tmp_path, base / "lists/outdir")  # a linked folder counts the same
    assert _refused(base, "lists/outdir/secret.txt").code == "E-LIST-OUTSIDE"
    (repo / ".git/config").write_text("[http]\n\textraheader = AUTHORIZATION: token\n")
    assert "inside `.git`" in _refused(base, "../.git/config").message
    outside_git = tmp_path / "plain"
    outside_git.mkdir()
    assert _refused(outside_git, "../secret.txt").code == "E-LIST-OUTSIDE"


def test_only_small_regular_text_files_are_read(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    lists = repo / "playbooks" / "lists"
    big = lists / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(MAX_LIST_BYTES + 1)  # sparse: nothing is written to disk
    fifo = lists / "pipe.txt"
    os.mkfifo(fifo)
    (lists / "nul.txt").write_bytes(b"a\x00b\n")
    (lists / "latin1.txt").write_bytes("ok\nMünchen\n".encode("latin-1"))
    started = time.monotonic()
    cases = {
        "lists/big.txt": f"is {MAX_LIST_BYTES + 1:,} bytes; list files are limited to",
        "lists/pipe.txt": "is a FIFO",
        "lists": "is a directory",
        "lists/nul.txt": "NUL bytes",
        "lists/latin1.txt": "is not UTF-8 (line 2)",
        "lists/missing.txt": "cannot be read: No such file or directory",
    }
    for written, says in cases.items():
        refused = _refused(repo / "playbooks", written)
        assert refused.code == "E-LIST-FILE" and says in refused.message, (written, refused.message)
    assert time.monotonic() - started < 5  # the FIFO never blocked
    big.write_bytes(b"x\n" * (MAX_LIST_BYTES // 2))  # exactly the limit: read
    assert read_list_file(repo / "playbooks", "lists/big.txt") == {"x"}


FIXTURE = """apiVersion: engine/v1
kind: Fixture
playbook: playbook.yaml
lead: {id: L1, fields: {company: acme}}
events: []
as_of: "2026-01-01T00:00:00Z"
"""
COMMANDS = {
    "validate": ["validate", "playbook.yaml"],
    "compile": ["compile", "playbook.yaml", "--target", "duckdb"],
    "evaluate": ["evaluate", "playbook.yaml", "--leads", "leads.csv", "--as-of", "2026-01-01",
                 "--out", "out.csv"],
    "replay": ["replay", "playbook.yaml", "fixture.yaml"],
    "explain": ["explain", "playbook.yaml", "fixture.yaml"],
    "test": ["test", "fixture.yaml"],
    "diff": ["diff", "base.yaml", "playbook.yaml", "--no-impact"],
    "fmt": ["fmt", "--check", "playbook.yaml"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("hostile", ["outside-list", "oversized"])
def test_every_command_reads_playbooks_through_the_same_guards(
        command: str, hostile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main
    from tests.conftest import PLAYBOOKS

    text = (PLAYBOOKS / "smb-saas.yaml").read_text(encoding="utf-8")
    (tmp_path / "secret.txt").write_text("root:x:0:0:secret\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").mkdir()
    monkeypatch.chdir(repo)
    (repo / "base.yaml").write_text(text.replace("lists/competitors.txt", "[a.example]")
                                    .replace("lists/partners.txt", "[b.example]"))
    if hostile == "outside-list":
        (repo / "playbook.yaml").write_text(text.replace("lists/competitors.txt", "../secret.txt"))
        expected = ("E-LIST-OUTSIDE", "is outside the repository")
    else:
        (repo / "playbook.yaml").write_text(text + "#" * (2 << 20) + "\n")
        expected = ("E-LOAD-SIZE", "playbooks are limited to")
    (repo / "fixture.yaml").write_text(FIXTURE)
    (repo / "leads.csv").write_text("lead_id,company\nL1,acme\n")
    code = main(COMMANDS[command])
    out, err = capsys.readouterr()
    if command == "fmt" and hostile == "outside-list":
        assert code in (0, 1) and "secret" not in out + err  # fmt reads no list files
        return
    assert code == 1, out + err
    # `engine test` reports through pytest: the message, without the code
    assert expected[0 if command != "test" else 1] in out + err and "root:x:" not in out + err
