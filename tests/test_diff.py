"""engine diff: semantic changes, approvers and impact between two commits of a real repo."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.diff import (
    Approval,
    Case,
    ListItems,
    Moved,
    Removed,
    Transition,
    Updated,
    diff_data,
    diff_playbooks,
    impact,
    snapshot,
)
from engine.diff_render import MARKER, change_lines, render_markdown
from engine.events import Event
from engine.revisions import Side, compile_side
from engine.validate import load_playbook
from tests.conftest import PLAYBOOKS

PB = "playbooks/smb-saas.yaml"
AS_OF = datetime.fromisoformat("2026-11-01T12:00:00+09:00")
#: The two edits of the second commit: a stage's entry threshold and an event weight.
ENTRY_OLD, ENTRY_NEW = "(fit >= 30 and engagement >= 40)", "(fit >= 20 and engagement >= 40)"
WEIGHT_OLD, WEIGHT_NEW = "webinar_attend: 10", "webinar_attend: 20"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                   capture_output=True)


def _lead(employees: int, title: str) -> dict[str, Any]:
    return {"company_domain": "buyer.example", "industry": "retail", "employees": employees,
            "title": title, "country": "US", "lead_source": "web_form"}


#: Hand-built leads: id, attributes, event types (each an hour before AS_OF).
LEADS: list[tuple[str, dict[str, Any], list[str]]] = [
    # fit 25: promising only once the threshold drops to 20; then the mql handoff routes it
    ("L-threshold", _lead(150, "Manager"), ["quote_request"] + ["email_click"] * 4),
    # fit 35: engagement 30 → 60 when a webinar is worth 20; surge routes it either way
    ("L-weight", _lead(1000, "Manager"), ["webinar_attend"] * 3),
    ("L-quiet", _lead(5, "Engineer"), []),
    ("L-hot", _lead(1000, "Director"), ["quote_request"] + ["email_click"] * 4),
]


def _cases() -> list[Case]:
    at = AS_OF - timedelta(hours=1)
    return [Case(lead_id, lead, [Event(t, at, seq=i) for i, t in enumerate(types)], AS_OF)
            for lead_id, lead, types in LEADS]


def _fixture_yaml(lead_id: str, lead: dict[str, Any], types: list[str]) -> str:
    at = (AS_OF - timedelta(hours=1)).isoformat()
    events = "".join(f'  - {{at: "{at}", type: {t}}}\n' for t in types)
    return (f"apiVersion: engine/v1\nkind: Fixture\nplaybook: ../playbooks/smb-saas.yaml\n"
            f"lead:\n  id: {lead_id}\n  fields: {json.dumps(lead)}\n"
            f"events:{'' if types else ' []'}\n{events}as_of: \"{AS_OF.isoformat()}\"\n")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git repo with two commits of smb-saas: the second edits an entry and a weight."""
    shutil.copytree(PLAYBOOKS / "lists", tmp_path / "playbooks" / "lists")
    text = (PLAYBOOKS / "smb-saas.yaml").read_text(encoding="utf-8")
    assert ENTRY_OLD in text and WEIGHT_OLD in text
    (tmp_path / PB).write_text(text, encoding="utf-8")
    (tmp_path / "fixtures").mkdir()
    for lead_id, lead, types in LEADS:
        (tmp_path / "fixtures" / f"{lead_id}.yaml").write_text(_fixture_yaml(lead_id, lead, types))
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "base")
    edited = text.replace(ENTRY_OLD, ENTRY_NEW).replace(WEIGHT_OLD, WEIGHT_NEW)
    (tmp_path / PB).write_text(edited, encoding="utf-8")
    _git(tmp_path, "commit", "-q", "-am", "head")
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_semantic_changes_and_approvers(repo: Path) -> None:
    base, head = compile_side(Side("HEAD~1"), PB), compile_side(Side("HEAD"), PB)
    assert base is not None and head is not None
    result = diff_playbooks(PB, base, head)
    assert result.status == "changed"
    old_entry = base.playbook.stages[2].entry
    assert old_entry is not None
    assert result.changes == (
        Updated("scoring", "scoring.engagement.points.webinar_attend", before=10, after=20),
        Updated("stages", "stages[promising].entry", before=old_entry,
                after=old_entry.replace(ENTRY_OLD, ENTRY_NEW)),
    )
    assert result.approvals == (Approval("scoring", ("marketing-ops",)),
                                Approval("stages", ("sales-ops",)))
    assert result.owned_change


def test_impact_matrix_over_hand_built_leads(repo: Path) -> None:
    base, head = compile_side(Side("HEAD~1"), PB), compile_side(Side("HEAD"), PB)
    assert base is not None and head is not None
    report = impact(base, head, _cases())
    assert (report.total, report.changed) == (4, 2)
    assert report.changed_examples == ("L-threshold", "L-weight")
    assert report.stages == (
        Transition("lead", "lead", 1, ("L-quiet",)),
        Transition("nurturing", "promising", 2, ("L-threshold", "L-weight")),
        Transition("promising", "promising", 1, ("L-hot",)),
    )
    assert report.routes == (
        Transition("none", "none", 1, ("L-quiet",)),
        Transition("none", "inside_sales", 1, ("L-threshold",)),
        Transition("inside_sales", "inside_sales", 2, ("L-weight", "L-hot")),
    )


def test_cli_markdown_plan_replays_fixtures(repo: Path, snapshot: Any) -> None:
    result = CliRunner().invoke(cli, ["diff", "HEAD~1", "HEAD", "--format", "markdown", "--", PB],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(MARKER)
    assert "2 of 4 fixture(s) change" in result.output
    snapshot.assert_match(result.output, "plan.md")


def test_base_option_diffs_the_work_tree_and_fails_on_owned_change(repo: Path) -> None:
    text = (repo / PB).read_text(encoding="utf-8")
    (repo / PB).write_text(text.replace("  name: smb-saas", "  # a comment only\n  name: smb-saas"))
    runner = CliRunner()
    args = ["diff", "--base", "HEAD", "--format", "json"]
    unchanged = runner.invoke(cli, [*args, "--fail-on-owner-change"], catch_exceptions=False)
    assert unchanged.exit_code == 0
    assert json.loads(unchanged.output)["playbooks"][0]["status"] == "unchanged"
    changed = runner.invoke(cli, ["diff", "--base", "HEAD~1", "--fail-on-owner-change"],
                            catch_exceptions=False)
    assert changed.exit_code == 1
    assert "stages: sales-ops" in changed.output


def test_two_files_added_removed_and_no_changes(repo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    same = runner.invoke(cli, ["diff", PB, PB], catch_exceptions=False)
    assert same.exit_code == 0 and "No semantic changes" in same.output
    (repo / "playbooks" / "copy.yaml").write_text((repo / PB).read_text(encoding="utf-8"))
    added = runner.invoke(cli, ["diff", "--base", "HEAD", "--format", "json"], catch_exceptions=False)
    statuses = {p["path"]: p["status"] for p in json.loads(added.output)["playbooks"]}
    assert statuses == {"playbooks/copy.yaml": "added", PB: "unchanged"}
    (repo / PB).unlink()
    removed = runner.invoke(cli, ["diff", "--base", "HEAD", "--", PB], catch_exceptions=False)
    assert f"- {PB} (removed)" in removed.output


def _data(**edits: Any) -> dict[str, Any]:
    cp = load_playbook(PLAYBOOKS / "smb-saas.yaml").compiled
    assert cp is not None
    data = snapshot(cp)
    data.update(edits)
    return data


def test_reordering_a_first_match_section_is_a_move_not_delete_and_add() -> None:
    base = _data()
    stages = list(base["exclusions"])
    head = _data(exclusions=[stages[1], stages[0], *stages[2:]])
    assert diff_data(base, head) == [Moved("exclusions", "exclusions[competitor]", before=1, after=2)]


def test_fit_rules_are_keyed_and_list_items_diffed_as_counts() -> None:
    base = _data()
    rules = base["scoring"]["fit"]["rules"]
    scoring = {**base["scoring"], "fit": {**base["scoring"]["fit"], "rules": rules[::-1]}}
    assert diff_data(base, _data(scoring=scoring)) == []  # fit rules add up: order is no change
    before = base["lists"]["partners"]["items"]
    lists = {**base["lists"], "partners": {"file": None, "items": ["new.example"]}}
    changes = diff_data(base, _data(lists=lists))
    assert changes == [ListItems("lists", "lists.partners.items", added=1, removed=len(before),
                                 added_sample=("new.example",), removed_sample=tuple(before))]


def test_a_long_list_change_shows_counts_and_a_capped_sample() -> None:
    old = [f"old{i:05}.example" for i in range(5_000)]
    new = [f"new{i:05}.example" for i in range(20_000)] + ["x" * 500]
    changes = diff_data(_data(lists={"big": {"file": "lists/big.txt", "items": old}}),
                        _data(lists={"big": {"file": "lists/big.txt", "items": sorted(new)}}))
    assert [c.to_dict()["kind"] for c in changes] == ["items"]
    lines = change_lines(changes[0])
    assert lines[0] == "~ lists.big.items: +20001 -5000 item(s)"
    assert lines[1] == ('    + "new00000.example", "new00001.example", "new00002.example", '
                        '"new00003.example", "new00004.example" … and 19996 more')
    assert len("\n".join(lines)) < 400
    dropped = diff_data(_data(lists={"big": {"file": "lists/big.txt", "items": old}}),
                        _data(lists={}))
    assert dropped == [Removed("lists", "lists.big", value={"file": "lists/big.txt"}),
                       ListItems("lists", "lists.big.items", removed=5_000,
                                 removed_sample=tuple(old[:5]))]


def test_markdown_is_capped_with_a_note(repo: Path) -> None:
    base, head = compile_side(Side("HEAD~1"), PB), compile_side(Side("HEAD"), PB)
    diffs = [diff_playbooks(f"p{i:03}.yaml", base, head) for i in range(120)]
    text = render_markdown(diffs, "a", "b")
    assert len(text) <= 60_000 and text.rstrip().endswith("for the full plan._")
    assert text.count("- `p") == 120  # every playbook is summarised even when details are cut
    assert text.count("<details>") < 120
    short = render_markdown(diffs, "a", "b", limit=3000)
    assert len(short) <= 3000 and "and 1" in short and "Output truncated" in short


def test_paths_matching_nothing_are_an_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    assert main(["diff", "HEAD~1", "HEAD", "--", "playbook/"]) == 1  # a typo: no such folder
    assert "no playbook matches playbook/ at HEAD~1 or HEAD" in capsys.readouterr().err
    assert main(["diff", "HEAD~1", "HEAD", "--", "playbooks/"]) == 0
    assert "webinar_attend: 10 → 20" in capsys.readouterr().out


def test_every_change_names_its_approvers_and_unowned_changes_fail(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A content stage change once slipped past --fail-on-owner-change ("(no owners)")."""
    from engine.cli import main

    text = (repo / PB).read_text(encoding="utf-8")
    edited = text.replace("pricing:         {kind: page, stage: promising}",
                          "pricing:         {kind: page, stage: nurturing}")
    assert edited != text
    (repo / PB).write_text(edited, encoding="utf-8")
    assert main(["diff", "--base", "HEAD", "--format", "json", "--no-impact",
                 "--fail-on-owner-change"]) == 1
    plan = json.loads(capsys.readouterr().out)["playbooks"][0]
    assert plan["changes"][0]["path"] == 'content.pricing.stage'
    assert plan["changes"][0]["approvers"] == ["sales-ops"]  # metadata.owners.default
    assert plan["required_approvers"] == ["sales-ops"]

    unowned = edited.replace("    default: [sales-ops]        # every section not named below\n", "")
    (repo / PB).write_text(unowned, encoding="utf-8")
    _git(repo, "commit", "-q", "-am", "no default owner")
    (repo / PB).write_text(unowned.replace("stage: nurturing}", "stage: promising}"), encoding="utf-8")
    assert main(["diff", "--base", "HEAD", "--no-impact", "--fail-on-owner-change"]) == 1
    captured = capsys.readouterr()
    assert "content: (no owners)" in captured.out
    assert "nobody owns content" in captured.err


def test_check_version_wants_a_newer_version_for_rule_changes(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    args = ["diff", "HEAD~1", "HEAD", "--no-impact", "--check-version"]
    assert main(args) == 1
    text = (repo / PB).read_text(encoding="utf-8")
    current = re.search(r"version: (\d+)\.(\d+)\.(\d+)", text)
    assert current is not None
    year, month, patch = current.groups()
    assert (f"metadata.version is still '{year}.{month}.{patch}'; raise it (e.g. "
            f"'{year}.{month}.{int(patch) + 1}')") in capsys.readouterr().err
    newer, older = f"{year}.{month}.{int(patch) + 1}", f"{int(year) - 1}.{month}.{patch}"
    for version, code in ((newer, 0), (older, 1), ("autumn", 0)):
        (repo / PB).write_text(text.replace(f"version: {current.group(0)[9:]}", f"version: {version}"))
        assert main(["diff", "--base", "HEAD~1", "--no-impact", "--check-version"]) == code, version
    assert "cannot be ordered; accepted because it changed" in capsys.readouterr().err
    # owners or description alone change no decision: no new version needed
    (repo / PB).write_text(text.replace("[marketing-ops]", "[marketing-ops, growth]", 1))
    assert main(["diff", "--base", "HEAD", "--no-impact", "--check-version"]) == 0
