"""Runs every hostile case under tests/hostile/ (see its README): input that once broke the engine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from engine.cli import main

HOSTILE = Path(__file__).resolve().parent / "hostile"
ROOT = HOSTILE.parents[1]
KEYS = {"issue", "description", "argv", "exit", "stdout_contains", "stderr_contains",
        "stdout_not_contains", "stderr_not_contains", "files_exist", "files_absent", "git_init", "test"}


def _cases() -> list[Path]:
    return sorted(p.parent for p in HOSTILE.glob("*/case.yaml"))


def _load(case: Path) -> dict[str, Any]:
    spec = YAML(typ="safe").load((case / "case.yaml").read_text(encoding="utf-8"))
    assert isinstance(spec, dict), f"{case}/case.yaml is not a mapping"
    unknown = set(spec) - KEYS
    assert not unknown, f"{case}/case.yaml: unknown keys {sorted(unknown)}"
    assert spec.get("description"), f"{case}/case.yaml needs a description"
    assert ("argv" in spec) != ("test" in spec), f"{case}/case.yaml needs argv or test, not both"
    return spec


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_hostile_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = _load(case)
    if "test" in spec:
        module, _, name = str(spec["test"]).partition("::")
        source = (ROOT / module).read_text(encoding="utf-8")
        assert f"def {name}(" in source, f"{case.name}: {spec['test']} does not exist"
        return
    work = tmp_path / case.name
    shutil.copytree(case, work, symlinks=True)
    if spec.get("git_init"):
        subprocess.run(["git", "init", "-q", str(work)], check=True)
    monkeypatch.chdir(work)
    argv = [str(a).replace("{repo}", str(ROOT)) for a in spec["argv"]]
    code = main(argv)
    out, err = capsys.readouterr()
    context = f"\n--- stdout\n{out}\n--- stderr\n{err}"
    assert code == spec["exit"], f"exit {code}, expected {spec['exit']}{context}"
    for text in spec.get("stdout_contains", []):
        assert text in out, f"stdout lacks {text!r}{context}"
    for text in spec.get("stderr_contains", []):
        assert text in err, f"stderr lacks {text!r}{context}"
    for text in spec.get("stdout_not_contains", []):
        assert text not in out, f"stdout has {text!r}{context}"
    for text in [*spec.get("stderr_not_contains", []), "Traceback"]:
        assert text not in err, f"stderr has {text!r}{context}"
    for rel in spec.get("files_exist", []):
        assert (work / rel).exists(), f"{rel} missing{context}"
    for rel in spec.get("files_absent", []):
        assert not (work / rel).exists(), f"{rel} exists{context}"
