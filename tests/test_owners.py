"""engine owners: CODEOWNERS generated from metadata.owners, and the committed one in sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner

from engine.cli import cli
from engine.owners import file_owners, render_codeowners
from engine.validate import discover
from tests.conftest import PLAYBOOKS, ROOT


def _tracked_playbooks() -> list[Path]:
    """Playbooks git knows (work in progress is not yet CODEOWNERS' business; CI sees all)."""
    listed = subprocess.run(["git", "ls-files", "--", "playbooks"], cwd=ROOT, capture_output=True,
                            text=True, check=False).stdout.split()
    if not listed:  # not a git checkout: every playbook
        return list(discover([PLAYBOOKS]))
    return [p for p in discover([PLAYBOOKS]) if p.relative_to(ROOT).as_posix() in listed]


def test_committed_codeowners_is_in_sync_with_the_playbooks() -> None:
    committed = (ROOT / ".github" / "CODEOWNERS").read_text(encoding="utf-8")
    assert render_codeowners(file_owners(_tracked_playbooks(), ROOT)) == committed, \
        "regenerate: engine owners playbooks/ > .github/CODEOWNERS"


def test_union_of_section_owners_sorted_with_prefix(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("metadata:\n  owners:\n    stages: [zed, '@someone']\n    scoring: [amy, zed]\n",
                    encoding="utf-8")
    (tmp_path / "none.yaml").write_text("metadata: {name: x}\n", encoding="utf-8")
    entries = file_owners([path, tmp_path / "none.yaml"], tmp_path, prefix="@acme/")
    assert render_codeowners(entries).splitlines()[-1] == "/p.yaml @acme/amy @acme/zed @someone"


def test_cli_check_detects_a_stale_file(tmp_path: Path, monkeypatch: object) -> None:
    stale = tmp_path / "CODEOWNERS"
    stale.write_text("/playbooks/smb-saas.yaml @nobody\n", encoding="utf-8")
    runner = CliRunner()
    args = ["owners", "--root", str(ROOT), str(PLAYBOOKS / "smb-saas.yaml")]
    assert runner.invoke(cli, [*args, "--check", str(stale)]).exit_code == 1
    fresh = runner.invoke(cli, args, catch_exceptions=False).output
    stale.write_text(fresh, encoding="utf-8")
    assert runner.invoke(cli, [*args, "--check", str(stale)]).exit_code == 0
    assert "/playbooks/smb-saas.yaml @inside-sales-lead @marketing-ops @sales-ops" in fresh
