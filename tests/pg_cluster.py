"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temp folder, started on a socket.

``.ci/run`` starts one before the suite and exports its address as ``ENGINE_TEST_POSTGRES``
(``python -m tests.pg_cluster start`` prints the shell lines; ``stop FOLDER`` ends it).
Locally, ``tests/test_sql_postgres.py`` starts its own the same way when that variable is unset,
or skips, naming why, when the server binaries are missing.

Why not pytest-postgresql: it needs the same binaries and adds a dependency and a plugin for
what is ~80 lines here; and as root (CI runs as root) the server must run as another user, which
``runuser -u postgres`` does and a plugin does not. The cluster listens on a Unix socket in its own
folder only (``listen_addresses=''``), so no port is shared with anything else on the machine, with
fsync off: it lives for one test run. Each
process may map 4 GiB at most and a statement runs 300 s at most, so a runaway query fails.
Start-up takes a few seconds (initdb) on a loaded machine.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The variable holding the conninfo of a running server (set by .ci/run).
ENV = "ENGINE_TEST_POSTGRES"
PORT = 5432  # names the socket file only: nothing listens on TCP
USER = "postgres"
#: Address-space cap of the server and each backend (inherited from pg_ctl).
MEMORY = 4 << 30


class NoServer(RuntimeError):
    """No PostgreSQL server could be started here (the message says why)."""


def bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not versions:
        raise NoServer("no PostgreSQL server binaries (initdb): apt-get install postgresql")
    return Path(versions[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: there, run it as the postgres user the package made."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser") is None:
        raise NoServer("running as root and `runuser` is missing: cannot start PostgreSQL as another user")
    return ["runuser", "-u", USER, "--", *argv]


def _cap_memory() -> None:
    """A runaway query fails with "out of memory" instead of taking a machine shared with others."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def conninfo(folder: Path) -> str:
    return f"host={folder} port={PORT} user={USER} dbname=postgres"


def start(folder: Path | None = None) -> tuple[Path, str]:
    """Create and start a cluster; (its folder, its conninfo). Raises NoServer with the reason."""
    bins = bindir()
    folder = Path(folder or tempfile.mkdtemp(prefix="engine-pg-", dir="/tmp"))  # short: socket paths ≤ 107
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            shutil.chown(folder, USER, USER)
        except (LookupError, OSError) as exc:
            raise NoServer(f"cannot hand {folder} to the {USER} user: {exc}") from exc
    data = folder / "data"
    steps = [
        [str(bins / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8",
         "--locale=C", "--no-sync"],
        [str(bins / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
         "-o", f"-k {folder} -p {PORT} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
         "-c statement_timeout=300s", "start"],
    ]
    for argv in steps:
        done = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False,
                              preexec_fn=_cap_memory)
        if done.returncode != 0:
            log = folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise NoServer(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()} {tail}")
    return folder, conninfo(folder)


def stop(folder: Path) -> None:
    """Stop the cluster (immediately: its data is thrown away) and remove its folder."""
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        argv = [str(bindir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_owner(argv), capture_output=True, check=False)
    shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``start`` prints ``export`` lines for a shell; ``stop FOLDER`` ends the server."""
    if argv[:1] == ["start"]:
        try:
            folder, info = start()
        except NoServer as exc:
            print(f"tests.pg_cluster: {exc}", file=sys.stderr)
            return 1
        print(f"export {ENV}='{info}'\nexport ENGINE_TEST_POSTGRES_DIR='{folder}'")
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        stop(Path(argv[1]))
        return 0
    print("usage: python -m tests.pg_cluster start | stop FOLDER", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
