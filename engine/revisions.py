"""Playbooks as they are at a git revision, or in the work tree: the two sides of a diff.

A revision's playbook is copied, with the list files it names, into a temporary
folder and validated from there, so a side is compiled exactly as ``engine
validate`` would have compiled it at that commit. git runs as a subprocess without
a shell; a revision is never interpreted as an option.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git and return its output, or raise an :class:`EngineError` with its message."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              encoding="utf-8", check=False)
    except FileNotFoundError:
        raise EngineError("git is not installed (needed to read revisions)") from None
    if done.returncode != 0:
        raise EngineError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def is_revision(spec: str) -> bool:
    """Whether ``spec`` names a commit in the current repository."""
    if spec.startswith("-"):
        return False
    try:
        git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{spec}^{{commit}}")
    except EngineError:
        return False
    return True


@dataclass(frozen=True)
class Side:
    """One side of a diff: a git revision, or the work tree when ``rev`` is None."""

    rev: str | None

    @property
    def label(self) -> str:
        """How reports name this side."""
        return self.rev if self.rev is not None else "work tree"

    def exists(self, path: str) -> bool:
        """Whether the playbook file exists on this side."""
        if self.rev is None:
            return Path(path).is_file()
        return bool(git("ls-tree", "--name-only", "--end-of-options", self.rev, "--", path).strip())

    def read(self, path: str) -> str:
        """The text of a file (relative to the current directory) on this side."""
        if self.rev is None:
            return Path(path).read_text(encoding="utf-8")
        return git("show", f"{self.rev}:./{PurePosixPath(Path(path))}")

    def list_playbooks(self, paths: Sequence[str]) -> list[str]:
        """YAML files under ``paths`` on this side that declare ``kind: Playbook`` (or no kind)."""
        if self.rev is None:
            from engine.validate import discover

            return [str(PurePosixPath(p)) for p in discover(Path(p) for p in paths if Path(p).exists())]
        names = git("ls-tree", "-r", "--name-only", "--end-of-options", self.rev, "--", *paths)
        found = []
        for name in names.splitlines():
            if name.endswith((".yaml", ".yml")) and _declares_playbook(self.read(name)):
                found.append(name)
        return sorted(found)


def _declares_playbook(text: str) -> bool:
    from engine.load import kind_of_text
    from engine.validate import looks_like_playbook

    return looks_like_playbook(kind_of_text(text))


def _list_files(text: str) -> list[str]:
    """The list files a playbook names (``lists: {name: path}``), as written."""
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError:
        return []
    lists = data.get("lists") if isinstance(data, dict) else None
    if not isinstance(lists, dict):
        return []
    return [v for v in lists.values() if isinstance(v, str)]


@contextmanager
def materialise(side: Side, path: str) -> Iterator[Path]:
    """A path from which the playbook at ``side`` loads as it did there (list files included)."""
    if side.rev is None:
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="engine-diff-") as tmp:
        target = Path(tmp) / "playbook" / Path(path).name
        target.parent.mkdir(parents=True)
        text = side.read(path)
        target.write_text(text, encoding="utf-8")
        for listed in _list_files(text):
            relative = PurePosixPath(listed)
            if relative.is_absolute() or ".." in relative.parts:
                continue  # validation reports it; never read outside the copy
            source = PurePosixPath(Path(path).parent.as_posix()) / relative
            try:
                content = git("show", f"{side.rev}:./{source}")
            except EngineError:
                continue  # missing at that revision: validation says so
            (target.parent / relative).parent.mkdir(parents=True, exist_ok=True)
            (target.parent / relative).write_text(content, encoding="utf-8")
        yield target


def compile_side(side: Side, path: str) -> CompiledPlaybook | None:
    """The validated, compiled playbook at ``side``, or None if the file is absent there."""
    from engine.validate import load_playbook

    if not side.exists(path):
        return None
    with materialise(side, path) as local:
        try:
            result = load_playbook(local)
        except EngineError as exc:
            raise EngineError(f"{path} at {side.label} is invalid; fix it before diffing "
                              f"({exc.message.split(': ', 1)[-1]})", exc.diagnostics) from None
    assert result.compiled is not None
    return result.compiled
