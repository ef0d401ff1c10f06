"""engine.sql.opening: the run's DuckDB connection, opened on a thread during the imports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.cli import main
from engine.sql import opening
from tests.export_factory import BENCH_PLAYBOOK, REPO, make_export

AS_OF = "2026-11-01T00:00:00Z"


class _Counted:
    """opening._new, recording the connections it opens and the thread that opened each."""

    def __init__(self, fail_first: bool = False) -> None:
        self.opened: list[Any] = []
        self.threads: list[str] = []
        self.fail_first = fail_first

    def __call__(self) -> Any:
        self.threads.append(threading.current_thread().name)
        if self.fail_first and not self.opened:
            self.opened.append(None)
            raise duckdb.IOException("no room")
        con = duckdb.connect(config={"memory_limit": opening.MEMORY_LIMIT, "temp_directory": ""})
        self.opened.append(con)
        return con


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _Counted:
    new = _Counted()
    monkeypatch.setattr(opening, "_new", new)
    return new


def _closed(con: Any) -> bool:
    try:
        con.execute("SELECT 1")
    except duckdb.ConnectionException:
        return True
    return False


def test_the_run_takes_the_connection_opened_on_the_thread(counted: _Counted, tmp_path: Path) -> None:
    with opening.head_start():
        con = opening.connect(str(tmp_path))
        assert counted.opened == [con.native] and counted.threads == ["engine-duckdb-open"]  # no second one
        again = opening.connect(str(tmp_path / "other"))  # a second run of the block opens its own
        assert len(counted.opened) == 2 and again.native is not con.native
    assert not _closed(con)  # taken: the run closes it, not the block
    setting = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    assert setting == str(tmp_path)
    con.close()
    again.close()


def test_tables_past_the_memory_limit_spill_to_the_runs_folder(tmp_path: Path) -> None:
    with opening.head_start():
        con = opening.connect(str(tmp_path))
    con.execute("SET memory_limit = '32MB'")
    con.execute("CREATE TEMP TABLE big AS SELECT range AS n, md5(range::VARCHAR) AS h FROM range(2000000)")
    assert con.execute("SELECT count(DISTINCT h) FROM big").fetchall()[0][0] == 2_000_000
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))
    con.close()


def test_a_connection_no_run_took_is_closed_at_the_blocks_end(counted: _Counted) -> None:
    with pytest.raises(RuntimeError), opening.head_start():
        raise RuntimeError("the playbook did not load")
    assert len(counted.opened) == 1 and _closed(counted.opened[0])
    with opening.head_start(wanted=False):
        pass
    assert len(counted.opened) == 1  # nothing wanted, nothing opened


def test_a_failed_open_on_the_thread_only_loses_the_head_start(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    new = _Counted(fail_first=True)
    monkeypatch.setattr(opening, "_new", new)
    with opening.head_start():
        con = opening.connect(str(tmp_path))
    assert len(new.opened) == 2 and con.native is new.opened[1]
    assert new.threads == ["engine-duckdb-open", threading.current_thread().name]
    assert con.execute("SELECT 41 + 1").fetchall() == [(42,)]


@pytest.mark.parametrize(("backend", "connections"), [("duckdb", 1), ("python", 0)])
def test_engine_evaluate_opens_one_connection_on_its_default_backend(
        counted: _Counted, tmp_path: Path, backend: str, connections: int) -> None:
    leads, events = make_export(tmp_path, 20)
    code = main(["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
                 "--as-of", AS_OF, "--out", str(tmp_path / "d.csv"), "--backend", backend, "--no-progress"])
    assert code == 0
    assert counted.threads == ["engine-duckdb-open"] * connections  # opened during the imports
    assert all(_closed(con) for con in counted.opened)
    assert len((tmp_path / "d.csv").read_text().splitlines()) == 21


@pytest.mark.parametrize("extension", [True, False])
def test_the_driver_is_the_extension_the_package_re_exports(monkeypatch: pytest.MonkeyPatch,
                                                           extension: bool) -> None:
    """The run catches the driver's exception classes: they must be the ``duckdb`` package's
    own, whether the C extension is a module of its own (duckdb >= 1.4) or not."""
    import importlib

    if not extension:
        real = importlib.import_module

        def without(name: str, *args: Any) -> Any:
            if name == "_duckdb":
                raise ImportError(name)
            return real(name, *args)

        monkeypatch.setattr(importlib, "import_module", without)
    driver = opening.driver()
    assert (driver is duckdb) is (not extension or importlib.util.find_spec("_duckdb") is None)
    assert (driver.Error, driver.CatalogException, driver.connect) == (
        duckdb.Error, duckdb.CatalogException, duckdb.connect)
    con = driver.connect()
    with pytest.raises(duckdb.CatalogException):
        con.execute("DROP VIEW nowhere")


def test_arrow_tables_are_scanned_though_the_run_never_imported_the_duckdb_package(
        tmp_path: Path) -> None:
    """In a fresh process: SQL alone leaves the ``duckdb`` package unloaded; registering an
    Arrow table (engine.io's reader for an irregular file, Python-converted cells) loads it
    first, without which the extension refused the scan (hostile case 17-5)."""
    script = textwrap.dedent("""
        import sys
        import pyarrow as pa
        from engine.sql import opening
        con = opening.connect(sys.argv[1])
        print(con.execute("SELECT 41 + 1").fetchall(), "duckdb" in sys.modules)
        con.register("t", pa.table({"a": [1, 2]}))
        print(con.execute("SELECT sum(a) FROM t").fetchall(), "duckdb" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    package_at_once = importlib.util.find_spec("_duckdb") is None
    assert done.stdout.splitlines() == [f"[(42,)] {package_at_once}", "[(3,)] True"]
