"""One folder per run for every temporary file: removed at the end, swept once its owner died.

A killed ``engine evaluate`` used to leave hidden partial outputs beside ``--out``,
SQLite queue and spill files and a DuckDB folder of hundreds of MB in the temp dir,
and nothing ever removed them. Now every temporary of a run lives in one folder,
``engine-run-<pid>-<token>/`` in the temp directory, that the run owns through a lock
on its ``.owner`` file (released by the kernel when the process dies, even by
SIGKILL): outputs are written there in full and renamed into place at the very end
(:meth:`Run.commit`), so a run killed at any earlier moment has put nothing new in
the output folder. The next run removes every such folder whose owner is gone.
SIGTERM and SIGHUP raise, like Ctrl-C, so the folder goes at once.

A rename cannot cross file systems: for an output folder on another device than the
temp directory, its files are staged in one hidden ``.engine-run-<pid>-<token>/``
inside that folder instead, swept the same way by later runs writing there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from engine.diagnostics import EngineError
from engine.io.locks import pid_alive, remove_if_stale, sweep_stale_locks, try_lock

PREFIX = "engine-run-"
_NAME = re.compile(r"^\.?engine-run-(\d+)-[0-9a-f]{8}$")
_OWNER = ".owner"
#: A folder younger than this whose pid is alive may still be taking its lock.
_GRACE_SECONDS = 60
#: Signals that end a run the way Ctrl-C does: cleanup first.
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_CURRENT: Run | None = None


def temp_dir() -> str | None:
    """Where a temporary file of the current run goes (its folder); None outside a run."""
    return str(_CURRENT.folder) if _CURRENT is not None else None


def current() -> Run | None:
    """The run in progress in this process, if any."""
    return _CURRENT


class Terminated(BaseException):
    """Raised in place of a terminating signal's default death, so cleanup runs first."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


class _Owned:
    """A folder this process made and holds the ``.owner`` lock of."""

    def __init__(self, parent: Path, hidden: bool) -> None:
        name = f"{'.' if hidden else ''}{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.path = parent / name
        try:
            self.path.mkdir(mode=0o700)
        except OSError as error:
            raise EngineError(f"cannot make the run's scratch folder in {parent}: {error.strerror or error} "
                              "(hint: set TMPDIR to a writable folder)") from None
        self._fd = os.open(self.path / _OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        try_lock(self._fd)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)


def sweep(parent: Path) -> None:
    """Remove the run folders in ``parent`` (hidden or not) whose owner is gone."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            found = _NAME.match(entry.name)
            if found is None or entry.is_symlink() or not entry.is_dir():
                continue
            pid = int(found.group(1))
            owner = entry / _OWNER
            try:
                young = time.time() - entry.stat().st_mtime < _GRACE_SECONDS
            except OSError:
                continue
            if not owner.exists():  # killed before it locked, or locking right now
                if not pid_alive(pid) or not young:
                    shutil.rmtree(entry, ignore_errors=True)
            elif remove_if_stale(owner, grace_pid=pid if young else 0):
                shutil.rmtree(entry, ignore_errors=True)


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


class Run:
    """The scratch of one run (a context manager): its folder, staged outputs, signals.

    ``Run(output_folders)`` sweeps abandoned run folders and stale locks from the temp
    dir and those folders, makes this run's folder and makes it :func:`current`.
    """

    def __init__(self, output_folders: Iterable[Path] = ()) -> None:
        self.output_folders = list(dict.fromkeys(Path(os.path.realpath(f)) for f in output_folders))
        self._owned: _Owned | None = None
        self._hidden: dict[Path, _Owned] = {}
        self._count = 0
        self._previous: dict[int, Any] = {}

    @property
    def folder(self) -> Path:
        assert self._owned is not None, "use Run as a context manager"
        return self._owned.path

    def __enter__(self) -> Run:
        global _CURRENT
        base = Path(tempfile.gettempdir())
        sweep(base)
        for folder in self.output_folders:
            sweep(folder)
            sweep_stale_locks(folder)
        self._owned = _Owned(base, hidden=False)
        self._catch_signals()
        _CURRENT = self
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        global _CURRENT
        _CURRENT = None
        try:
            for owned in (*self._hidden.values(), *([self._owned] if self._owned else [])):
                owned.remove()
        finally:
            self._restore_signals()
        if isinstance(error, Terminated):
            raise SystemExit(128 + error.signum) from None

    def stage(self, target: Path) -> Path:
        """A path to write ``target``'s content to, on its file system, renamed by :meth:`commit`.

        Keeps ``target``'s name (and so its extension, which says its format).
        """
        self._count += 1
        return self._staging_dir(Path(os.path.realpath(target.parent))) / f"{self._count}.{target.name}"

    def _staging_dir(self, folder: Path) -> Path:
        return self.folder if _same_device(self.folder, folder) else self._hidden_dir(folder)

    def _hidden_dir(self, folder: Path) -> Path:
        """This run's hidden folder inside ``folder`` (made once)."""
        owned = self._hidden.get(folder)
        if owned is None:
            owned = self._hidden[folder] = _Owned(folder, hidden=True)
        return owned.path

    def commit(self, staged: Sequence[tuple[Path, Path]]) -> None:
        """Rename each staged file into place, in order (the one that says "done" last)."""
        for temp, _ in staged:
            _fsync(temp)
        for temp, final in staged:
            try:
                os.replace(temp, final)
            except OSError as error:
                if error.errno != errno.EXDEV:
                    raise
                # same device number yet another mount: copy beside the target, then rename
                near = self._hidden_dir(Path(os.path.realpath(final.parent))) / final.name
                shutil.copyfile(temp, near)
                _fsync(near)
                os.replace(near, final)
        for folder in dict.fromkeys(final.parent for _, final in staged):
            fsync_dir(folder)

    def _catch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            raise Terminated(signum)

        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, handler)

    def _restore_signals(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (where the platform lets a folder be synced)."""
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def stall_point(name: str) -> None:
    """A test hook: stop here for a minute when ``ENGINE_TEST_STALL`` names this point.

    Lets tests kill a real run at a known moment (tests/test_run_files.py); it prints
    ``stalled at NAME`` on stderr first. Unset, it costs one dictionary lookup.
    """
    if os.environ.get("ENGINE_TEST_STALL") == name:
        import sys

        print(f"stalled at {name}", file=sys.stderr, flush=True)
        time.sleep(60)


__all__ = ["PREFIX", "Run", "Terminated", "current", "stall_point", "sweep", "temp_dir"]
