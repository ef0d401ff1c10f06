"""List files (``lists: {competitors: lists/competitors.txt}``), read only from the repository.

A playbook is untrusted input, and ``engine diff`` posts list items in a pull-request
comment, so a list path must never reach a file outside the repository: not by
``../``, not by an absolute path, not by a committed symbolic link, and never
into ``.git`` (whose ``config`` can hold a CI token). *The repository*
is the git work tree containing the playbook (the nearest folder above it holding
``.git``, a folder or a worktree's file), else the playbook's own folder.

A path is resolved to its real path (symbolic links followed) and must lie inside
the repository; the file is then opened one component at a time from the
repository's root without following links, so a link swapped in after the check
cannot redirect the read; only a regular file of at most :data:`MAX_LIST_BYTES` is
read (a FIFO or a device never blocks the read, see :func:`engine.load.open_regular`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from engine.load import FileRefused, open_regular, read_fd

#: Far beyond any real list (half a million domains); reading stops one byte past it.
MAX_LIST_BYTES = 10 * 1024 * 1024

_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))


class ListFileError(Exception):
    """Why a list file was not read: a diagnostic code, a message and a hint."""

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def repository_root(folder: Path) -> Path:
    """The git work tree containing ``folder`` (real path), else ``folder`` itself."""
    start = Path(os.path.realpath(folder))
    for candidate in (start, *start.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return start


def _open_inside(root: Path, parts: tuple[str, ...]) -> int:
    """Open ``root/parts`` walking down from ``root`` without following any link."""
    if os.open not in os.supports_dir_fd:  # no openat: the real-path check stands alone
        return open_regular(root.joinpath(*parts), follow=False)
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return open_regular(parts[-1], dir_fd=fd, follow=False)
    finally:
        os.close(fd)


def read_list_file(base_dir: Path, written: str, root: Path | None = None) -> frozenset[str]:
    """The items of the list file ``written`` (relative to ``base_dir``), or a ListFileError.

    One item per line; blank lines and ``#`` comments are ignored.
    """
    root = Path(os.path.realpath(root)) if root is not None else repository_root(base_dir)
    where = (f"the repository is {root} (the git work tree containing the playbook, or "
             "the playbook's folder outside git)")
    if PurePath(written).is_absolute():
        raise ListFileError("E-LIST-OUTSIDE", f"list file `{written}` is an absolute path",
                            "write it relative to the playbook's folder, inside the repository; "
                            + where)
    real = Path(os.path.realpath(Path(base_dir) / written))
    if not real.is_relative_to(root):
        via = " through a symbolic link" if ".." not in PurePath(written).parts else ""
        raise ListFileError("E-LIST-OUTSIDE",
                            f"list file `{written}` is outside the repository{via}",
                            "list files must be inside the repository; " + where)
    parts = real.relative_to(root).parts
    if ".git" in parts:  # git's own files: .git/config can hold a CI token
        raise ListFileError("E-LIST-OUTSIDE", f"list file `{written}` is inside `.git`",
                            "list files must be tracked files of the repository, not git's own")
    try:
        if not parts:
            raise FileRefused("is a directory")
        raw = read_fd(_open_inside(root, parts), MAX_LIST_BYTES)
    except FileRefused as exc:
        reason = (f"is {exc.size:,} bytes; list files are limited to {MAX_LIST_BYTES:,}"
                  if exc.size is not None else exc.strerror)
        raise ListFileError("E-LIST-FILE", f"list file `{written}` {reason}",
                            "name a text file with one item per line") from None
    except OSError as exc:
        raise ListFileError("E-LIST-FILE", f"list file `{written}` cannot be read: {exc.strerror}",
                            f"paths are relative to the playbook's folder ({base_dir})") from None
    if b"\x00" in raw:
        raise ListFileError("E-LIST-FILE", f"list file `{written}` contains NUL bytes: it is not "
                            "text", "name a text file with one item per line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ListFileError("E-LIST-FILE", f"list file `{written}` is not UTF-8 (line {line})",
                            "save the list as UTF-8") from None
    return frozenset(item for line in text.splitlines()
                     if (item := line.strip()) and not item.startswith("#"))
