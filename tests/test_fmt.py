"""engine fmt: canonical layout, comments kept, idempotent, same model, --check and atomic writes."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli, main
from engine.fmt import format_text
from engine.validate import validate_path
from tests.conftest import PLAYBOOKS

EXAMPLES = ["smb-saas.yaml", "enterprise.yaml"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_are_already_formatted(name: str) -> None:
    text = (PLAYBOOKS / name).read_text(encoding="utf-8")
    assert format_text(text) == text


def _scrambled(text: str) -> str:
    """Sections out of order, values and sequences indented oddly, CRLF line ends."""
    start, end = text.index("\nteams:"), text.index("\nsources:")
    moved = text[:start] + text[end:].rstrip("\n") + "\n" + text[start:end] + "\n"
    moved = moved.replace("  - {id: lead, owner: marketing}", "  -   {id: lead,   owner: marketing}")
    moved = moved.replace("    cap: 60\n", "    cap:     60\n")
    return moved.replace("\n", "\r\n")


@pytest.mark.parametrize("name", EXAMPLES)
def test_format_is_idempotent_keeps_comments_and_the_model(name: str, tmp_path: Path) -> None:
    original = PLAYBOOKS / name
    messy = _scrambled(original.read_text(encoding="utf-8"))
    once = format_text(messy)
    assert format_text(once) == once
    assert once.index("\nteams:") < once.index("\nsources:")
    comments = [line.split("#", 1)[1] for line in messy.splitlines() if "  # " in line]
    assert all(comment in once for comment in comments)
    shutil.copytree(PLAYBOOKS / "lists", tmp_path / "lists")
    formatted = tmp_path / name
    formatted.write_text(once, encoding="utf-8")
    before, after = validate_path(original), validate_path(formatted)
    assert after.ok and after.compiled is not None
    assert after.playbook == before.playbook


def test_aligned_values_and_broken_flow_lists_keep_their_layout() -> None:
    text = ("apiVersion: engine/v1\nkind: Playbook\nrecycle:\n"
            "  a:           {cooldown: 1d}   # kept here\n  long_name:   {cooldown: 2d}\n"
            "  c: {x: 1}\n"
            "lists:\n    x: [a,\n        b]   # why\n")
    assert format_text(text) == (
        "apiVersion: engine/v1\nkind: Playbook\nlists:\n  x: [a,\n      b]   # why\nrecycle:\n"
        "  a: {cooldown: 1d}             # kept here\n  long_name: {cooldown: 2d}\n  c: {x: 1}\n")
    aligned = text.replace("  c: {x: 1}", "  c:           {x: 1}")
    assert "  a:           {cooldown: 1d}   # kept here\n  long_name:   {cooldown: 2d}\n" \
        "  c:           {x: 1}\n" in format_text(aligned)


def test_cli_check_prints_a_diff_and_fmt_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("kind: Playbook\napiVersion: engine/v1   # api\n", encoding="utf-8")
    runner = CliRunner()
    check = runner.invoke(cli, ["fmt", "--check", str(path)], catch_exceptions=False)
    assert check.exit_code == 1
    assert "+apiVersion: engine/v1   # api" in check.output and "would reformat" in check.output
    assert runner.invoke(cli, ["fmt", str(path)], catch_exceptions=False).exit_code == 0
    assert path.read_text(encoding="utf-8") == "apiVersion: engine/v1   # api\nkind: Playbook\n"
    assert runner.invoke(cli, ["fmt", "--check", str(path)]).exit_code == 0
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_unreadable_yaml_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: Playbook\nkind: Again\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["fmt", "--check", str(path)])
    assert result.exit_code == 1 and "cannot format" in str(result.exception)


def test_fmt_has_the_loaders_guards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 40 MB playbook once took 134 s and 1 GB in fmt; now it is refused as validate does."""
    big = tmp_path / "big.yaml"
    with big.open("w", encoding="utf-8") as handle:
        handle.write("apiVersion: engine/v1\nkind: Playbook\nlists:\n  x:\n")
        handle.writelines(f"    - item{i}\n" for i in range(300_000))
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for path, code in ((big, "E-LOAD-SIZE"), (fifo, "E-LOAD-IO")):
        started = time.monotonic()
        assert main(["fmt", "--check", str(path)]) == 1
        assert time.monotonic() - started < 10
        assert f"error[{code}]" in capsys.readouterr().err
    assert big.stat().st_size > 4_000_000  # never rewritten
