"""Playbooks as they are at a git revision, or in the work tree: the two sides of a diff.

A revision's playbook is copied, with the list files it names, into a temporary
folder laid out as the repository (links kept as links) and validated from there,
so a side is compiled exactly as ``engine validate`` would have compiled it at that
commit, under the same confinement of list files to the repository. git runs as a subprocess without
a shell; a revision is never interpreted as an option.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from engine.compile import CompiledPlaybook
from engine.diagnostics import Diagnostic, EngineError
from engine.load import read_text_file


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

    def head(self, path: str) -> str:
        """The first 64 KiB of a file at this revision: enough to see its ``kind``."""
        from engine.load import KIND_WINDOW

        assert self.rev is not None
        raw = _git_bytes("cat-file", "blob", f"{self.rev}:./{PurePosixPath(Path(path))}",
                         limit=KIND_WINDOW)
        return raw.decode("utf-8", errors="replace")

    def list_playbooks(self, paths: Sequence[str]) -> list[str]:
        """YAML files under ``paths`` on this side that declare ``kind: Playbook`` (or no kind)."""
        if self.rev is None:
            from engine.validate import discover

            return [str(PurePosixPath(p)) for p in discover(Path(p) for p in paths if Path(p).exists())]
        names = git("ls-tree", "-r", "--name-only", "--end-of-options", self.rev, "--", *paths)
        found = []
        for name in names.splitlines():
            if name.endswith((".yaml", ".yml")) and _declares_playbook(self.head(name)):
                found.append(name)
        return sorted(found)


def _declares_playbook(text: str) -> bool:
    from engine.load import kind_of_text
    from engine.validate import looks_like_playbook

    return looks_like_playbook(kind_of_text(text))


def _list_files(text: str) -> list[str]:
    """The list files a playbook names (``lists: {name: path}``), as written.

    Parsed through the loader's guards (size, depth, alias bombs): this text is a
    revision's, as untrusted as any playbook.
    """
    from engine.load import load_text

    doc, _problems = load_text(text)
    lists = doc.data.get("lists") if doc is not None and isinstance(doc.data, dict) else None
    if not isinstance(lists, dict):
        return []
    return [v for v in lists.values() if isinstance(v, str)]


def _git_bytes(*args: str, cwd: Path | None = None, limit: int | None = None) -> bytes:
    """git's raw output (list files need not be UTF-8), at most ``limit`` bytes of it."""
    try:
        with subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            out = proc.stdout.read(limit) if limit is not None else proc.stdout.read()
            if limit is not None and len(out) >= limit:
                proc.kill()  # the head was all that was wanted
                return out
            err = proc.stderr.read()
            proc.wait()
    except FileNotFoundError:
        raise EngineError("git is not installed (needed to read revisions)") from None
    if proc.returncode != 0:
        raise EngineError(f"git {' '.join(args)}: {err.decode(errors='replace').strip() or 'failed'}")
    return out


@dataclass(frozen=True)
class _Entry:
    """One path of a revision's tree, as ``git ls-tree -l`` lists it."""

    mode: str
    kind: str  # blob, tree or commit (a submodule)
    size: int | None


#: Symbolic links followed inside a revision's tree before giving up.
_MAX_LINKS = 8


class _Tree:
    """A revision's files copied on demand under a scratch root, links kept as links.

    The copy has a ``.git`` of its own, so its root is the repository for the list
    confinement of :mod:`engine.listfiles`: what a revision's playbook names is
    checked exactly as in the work tree (a link out of the repository, a folder, a
    file over the limit), and nothing outside the revision's tree is ever read.
    Oversized files are copied as sparse files of their size, never read.
    """

    def __init__(self, rev: str, root: Path) -> None:
        self.rev, self.root = rev, root
        self.top = Path(git("rev-parse", "--show-toplevel").strip())
        (root / ".git").mkdir()

    def entry(self, path: str) -> _Entry | None:
        """The tree entry of ``path`` (repository-relative) at the revision, if it exists.

        One path per call: with several, ``git ls-tree`` lists a folder's contents
        instead of the folder.
        """
        out = git("ls-tree", "-l", "--full-tree", "--end-of-options", self.rev, "--", path,
                  cwd=self.top)
        for line in out.splitlines():
            meta, _, name = line.partition("\t")
            mode, kind, _sha, size = meta.split()
            if name == path:
                return _Entry(mode, kind, int(size) if size.isdigit() else None)
        return None

    def copy(self, path: str, limit: int, links: int = 0) -> None:
        """Copy ``path`` and whatever its links lead to inside the tree; missing is left missing."""
        parts = PurePosixPath(path).parts
        for prefix in ("/".join(parts[: i + 1]) for i in range(len(parts))):
            entry = self.entry(prefix)
            if entry is None:
                return  # validation reports the missing file
            local = self.root / prefix
            if entry.mode == "120000":  # a symbolic link: kept, and its target copied
                target = _git_bytes("cat-file", "blob", f"{self.rev}:{prefix}", cwd=self.top,
                                    limit=4096).decode("utf-8", errors="replace")
                local.parent.mkdir(parents=True, exist_ok=True)
                if not os.path.lexists(local):
                    os.symlink(target, local)
                rest = path[len(prefix):].lstrip("/")
                inside = posixpath.normpath(posixpath.join(posixpath.dirname(prefix), target, rest))
                if links < _MAX_LINKS and not posixpath.isabs(target) and not inside.startswith(".."):
                    self.copy(inside, limit, links + 1)
                return
            if entry.kind != "blob" or prefix != path:
                local.mkdir(parents=True, exist_ok=True)  # a folder (or a submodule)
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            if entry.size is not None and entry.size > limit:
                with local.open("wb") as handle:
                    handle.truncate(entry.size)  # sparse: the size check refuses it unread
            else:
                local.write_bytes(_git_bytes("cat-file", "blob", f"{self.rev}:{path}",
                                             cwd=self.top, limit=limit + 1))


def _repo_path(path: str) -> str:
    """``path`` (relative to the current directory) relative to the repository's top."""
    prefix = git("rev-parse", "--show-prefix").strip()
    joined = posixpath.normpath(posixpath.join(prefix, PurePosixPath(Path(path)).as_posix()))
    if joined.startswith("..") or posixpath.isabs(joined):
        raise EngineError(f"{path} is outside the git repository")
    return joined


@contextmanager
def materialise(side: Side, path: str) -> Iterator[Path]:
    """A path from which the playbook at ``side`` loads as it did there (list files included)."""
    if side.rev is None:
        yield Path(path)
        return
    from engine.listfiles import MAX_LIST_BYTES
    from engine.load import MAX_BYTES

    with tempfile.TemporaryDirectory(prefix="engine-diff-") as tmp:
        tree = _Tree(side.rev, Path(tmp))
        name = _repo_path(path)
        tree.copy(name, MAX_BYTES)
        target = tree.root / name
        text, _problems = read_text_file(target) if target.is_file() else (None, [])
        for listed in _list_files(text) if text is not None else []:
            if posixpath.isabs(listed):
                continue  # validation refuses it; never read
            inside = posixpath.normpath(posixpath.join(posixpath.dirname(name), listed))
            if not inside.startswith(".."):  # else validation refuses it: outside the copy
                tree.copy(inside, MAX_LIST_BYTES)
        yield target


def _as_written(problems: Sequence[Diagnostic], local: Path, path: str, label: str) -> list[Diagnostic]:
    """Diagnostics of a revision's scratch copy, naming the file and repository as the user does."""
    if local == Path(path):
        return list(problems)
    scratch = str(local)[: -len(_repo_path(path))].rstrip("/")
    top = f"{git('rev-parse', '--show-toplevel').strip()} at {label}"
    return [replace(d, file=f"{path} at {label}", message=d.message.replace(scratch, top),
                    hint=d.hint.replace(scratch, top) if d.hint else d.hint) for d in problems]


def compile_side(side: Side, path: str) -> CompiledPlaybook | None:
    """The validated, compiled playbook at ``side``, or None if the file is absent there."""
    from engine.validate import load_playbook

    if not side.exists(path):
        return None
    with materialise(side, path) as local:
        try:
            result = load_playbook(local)
        except EngineError as exc:
            raise EngineError(f"{path} at {side.label} is invalid ({len(exc.diagnostics)} "
                              "error(s)); fix it before diffing",
                              _as_written(exc.diagnostics, local, path, side.label)) from None
    assert result.compiled is not None
    return result.compiled
