"""A run's files: nothing new after SIGKILL at any moment, scratch swept, signals clean up, locks.

Real ``engine evaluate`` subprocesses, stopped at known moments by the ``ENGINE_TEST_STALL``
hook (:func:`engine.io.scratch.stall_point`): ``started`` (scratch made, nothing read),
``deciding`` (outputs being written), ``commit`` (everything written, nothing renamed).
Each test has its own temp directory (``private_temp_dir``), handed to the subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.io import scratch
from engine.io.locks import LOCK_SUFFIX
from tests.export_factory import BENCH_PLAYBOOK, REPO, make_export

AS_OF = "2026-11-01T00:00:00Z"
POINTS = ["started", "deciding", "commit"]


def _args(tmp: Path, backend: str, out: str = "o/d.csv", queues: str = "o/q") -> list[str]:
    return ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(tmp / "leads.csv"), "--events",
            str(tmp / "events.csv"), "--as-of", AS_OF, "--out", str(tmp / out), "--queues",
            str(tmp / queues), "--overflow", "--backend", backend]


def _start(args: list[str], stall: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # TMPDIR: the test's own (private_temp_dir)
    env.pop("ENGINE_TEST_STALL", None)
    if stall is not None:
        env["ENGINE_TEST_STALL"] = stall
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stalled(proc: subprocess.Popen[str], point: str) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.strip() == f"stalled at {point}", line + proc.stderr.read()


def _finish(args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = _start(args, None)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}


@pytest.mark.parametrize("backend", ["duckdb", "python"])
@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_moment_leaves_nothing_new_and_the_next_run_sweeps(
        tmp_path: Path, private_temp_dir: Path, backend: str, point: str) -> None:
    make_export(tmp_path, 200)
    (tmp_path / "o" / "q").mkdir(parents=True)
    (tmp_path / "o" / "d.csv").write_text("the previous run's decisions\n")
    before = _files(tmp_path / "o")
    proc = _start(_args(tmp_path, backend), point)
    _stalled(proc, point)
    assert any(private_temp_dir.glob(f"{scratch.PREFIX}*"))  # its scratch is there, in use
    proc.kill()
    proc.communicate(timeout=30)
    # nothing new in the output folder but free lock files; the old decisions untouched
    new = _files(tmp_path / "o") - before
    assert all(name.endswith(LOCK_SUFFIX) for name in new), new
    assert (tmp_path / "o" / "d.csv").read_text() == "the previous run's decisions\n"
    done = _finish(_args(tmp_path, backend))
    assert done.returncode == 0, done.stderr
    assert list(private_temp_dir.iterdir()) == []  # the dead run's scratch went with the next run
    assert _files(tmp_path / "o") == {"d.csv", "d.rejects.csv", "q/marketing.csv", "q/inside_sales.csv",
                                      "q/field_sales.csv", "q/inside_sales.overflow.csv",
                                      "q/field_sales.overflow.csv"}


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                              (signal.SIGHUP, 129)])
@pytest.mark.parametrize("backend", ["duckdb", "python"])
def test_sigterm_and_ctrl_c_clean_up_at_once(tmp_path: Path, private_temp_dir: Path, backend: str,
                                             signum: int, code: int) -> None:
    make_export(tmp_path, 200)
    proc = _start(_args(tmp_path, backend), "deciding")
    _stalled(proc, "deciding")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert _files(tmp_path / "o") == set()  # not even a lock file
    assert list(private_temp_dir.iterdir()) == []


def test_a_second_run_on_the_same_output_stops_and_a_dead_ones_lock_is_taken_over(
        tmp_path: Path, private_temp_dir: Path) -> None:
    make_export(tmp_path, 50)
    first = _start(_args(tmp_path, "python"), "deciding")
    _stalled(first, "deciding")
    second = _finish(_args(tmp_path, "duckdb"))
    assert second.returncode == 1
    assert f"is being written by another engine run (pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    # a run writing elsewhere is not held up by it
    assert _finish(_args(tmp_path, "python", out="p/d.csv", queues="p/q")).returncode == 0
    first.kill()
    first.communicate(timeout=30)
    third = _finish(_args(tmp_path, "duckdb"))
    assert third.returncode == 0, third.stderr
    assert not [p for p in (tmp_path / "o").rglob(f"*{LOCK_SUFFIX}")]
    assert list(private_temp_dir.iterdir()) == []


def test_outputs_on_another_file_system_are_staged_beside_them(
        tmp_path: Path, private_temp_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Renames cannot cross devices: then one hidden run folder in the output folder, removed."""
    make_export(tmp_path, 30)
    seen: list[Path] = []
    original = scratch.Run._hidden_dir

    def hidden_dir(self: scratch.Run, folder: Path) -> Path:
        seen.append(original(self, folder))
        return seen[-1]

    monkeypatch.setattr(scratch, "_same_device", lambda a, b: False)
    monkeypatch.setattr(scratch.Run, "_hidden_dir", hidden_dir)
    assert main(_args(tmp_path, "python")) == 0
    assert {p.parent.name for p in seen} == {"o", "q"}
    assert all(p.name.startswith(".engine-run-") for p in seen)
    assert _files(tmp_path / "o") >= {"d.csv", "d.rejects.csv", "q/marketing.csv"}
    assert not [p for p in (tmp_path / "o").rglob(".*")]
    assert list(private_temp_dir.iterdir()) == []


def test_sweep_removes_only_folders_of_dead_owners(tmp_path: Path) -> None:
    live = scratch._Owned(tmp_path, hidden=True)  # ours, held
    dead = tmp_path / ".engine-run-999999999-0123abcd"  # no such pid, lock not held
    dead.mkdir()
    (dead / ".owner").write_text("999999999\n")
    (dead / "1.d.csv").write_text("partial")
    unrelated = tmp_path / ".engine-run-notes"
    unrelated.mkdir()
    scratch.sweep(tmp_path)
    assert live.path.exists() and not dead.exists() and unrelated.exists()
    live.remove()
    assert not live.path.exists()


def test_an_unusable_temp_dir_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    make_export(tmp_path, 5)
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "file" / "tmp"))
    assert main(_args(tmp_path, "python")) == 1
    err = capsys.readouterr().err
    assert "cannot make the run's scratch folder" in err and "TMPDIR" in err
    assert _files(tmp_path / "o") == set()  # its locks were released and removed
