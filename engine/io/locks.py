"""Output locks, and whether the process owning a run's files is still alive.

Two runs writing the same ``--out`` both used to print success, the second silently
replacing the first. A run now holds ``.NAME.engine-lock`` beside each output (an
advisory ``flock``, which the kernel releases when the process dies, even by SIGKILL),
so a second run stops with a message naming the first one's pid. A lock file left by a
killed run is free: the next run takes it over and removes it, and any run writing
into that folder sweeps it (:func:`sweep_stale_locks`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.diagnostics import EngineError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: locks fall back to the pid written inside
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".engine-lock"


def lock_path(target: Path) -> Path:
    """The lock beside ``target`` (a file, or the queue folder), hidden."""
    real = Path(os.path.realpath(target))
    return real.with_name(f".{real.name}{LOCK_SUFFIX}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may be another program after pid reuse)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    if fcntl is None:  # pragma: no cover - no flock: the pid written inside says who holds it
        pid = _read_pid(fd)
        return pid == os.getpid() or not pid_alive(pid)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def remove_if_stale(path: Path, *, grace_pid: int = 0) -> bool:
    """Remove the lock file ``path`` if no live process holds it; whether it is gone.

    Removed while we hold its lock, so a run that opened it meanwhile sees, once it gets
    the lock, that the file it locked is no longer there (:meth:`OutputLock.acquire`).
    ``grace_pid``: a live process of that id may be about to lock it (just created).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # not ours to judge (another user's)
    try:
        stale = try_lock(fd) and not pid_alive(grace_pid)
        if stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return stale
    finally:
        os.close(fd)  # releases the lock if we took it


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii", "replace").strip() or 0)
    except (OSError, ValueError):
        return 0


class OutputLock:
    """Held while a run writes ``target``; see the module docstring."""

    def __init__(self, label: str, target: Path, path: Path | None = None) -> None:
        """``path``: where the lock file goes when not beside ``target`` (:func:`lock_path`)."""
        self.label, self.target, self.path = label, target, path or lock_path(target)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`EngineError` naming the run that holds it."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise EngineError(f"{self.label} {self.target}: cannot write beside it ({self.path}: "
                                  f"{error.strerror or error}); nothing was written") from None
            if not try_lock(fd):
                pid = _read_pid(fd)
                os.close(fd)
                raise EngineError(
                    f"{self.label} {self.target} is being written by another engine run "
                    f"(pid {pid or 'unknown'}); nothing was written (hint: wait for it to finish, "
                    "or write elsewhere)"
                )
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, so try again.
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file, then let go (the order keeps a waiting run from a stale inode)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def output_locks(locks: Iterable[OutputLock]) -> Iterator[None]:
    """Hold every lock for the ``with`` block; all or none."""
    held: list[OutputLock] = []
    seen: set[Path] = set()
    try:
        for lock in locks:
            if lock.path in seen:
                continue
            seen.add(lock.path)
            lock.acquire()
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()


def sweep_stale_locks(folder: Path) -> None:
    """Remove lock files in ``folder`` whose run is gone (a killed run's leftovers)."""
    with contextlib.suppress(OSError):
        for path in folder.glob(f".*{LOCK_SUFFIX}"):
            if path.is_file() and not path.is_symlink():
                remove_if_stale(path)
