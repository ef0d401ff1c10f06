"""A bug exits 3 and saves its traceback to a file of its own, named on stderr (#13 item 12)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

import engine.commands
from engine.cli import main


def _crashing(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    @click.command()
    def boom() -> None:
        raise RuntimeError(message)

    monkeypatch.setattr(engine.commands, "load_command", lambda name: boom)


def test_each_crash_gets_its_own_log(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                     private_temp_dir: Path) -> None:
    logs = []
    for message in ("first bug", "second bug"):
        _crashing(monkeypatch, message)
        assert main(["schema"]) == 3
        err = capsys.readouterr().err
        assert "Traceback" not in err
        found = re.search(r"details written to (\S+)", err)
        assert found, err
        log = Path(found.group(1))
        assert log.parent == private_temp_dir and log.name.startswith("engine-crash-")
        assert f"RuntimeError: {message}" in log.read_text(encoding="utf-8")
        logs.append(log)
    assert logs[0] != logs[1] and logs[0].exists()  # the second crash did not overwrite the first


def test_no_writable_temp_dir_prints_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    _crashing(monkeypatch, "third bug")
    assert main(["schema"]) == 3
    err = capsys.readouterr().err
    assert "RuntimeError: third bug" in err and "details written to nowhere" in err
