"""Writers: atomic replace, no partial output when killed, byte-identical reruns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from engine.io import InputError, Reject, RejectsWriter, read_rows, write_cells, write_rows
from engine.io.writers import csv_line_maker, guard_cell, write_lines

ROOT = Path(__file__).parents[1]
COLUMNS = ["lead_id", "stage", "fit", "score", "excluded", "at", "title"]
ROWS: list[dict[str, Any]] = [
    {
        "lead_id": "L1",
        "stage": "mql",
        "fit": 45,
        "score": 12.5,
        "excluded": False,
        "at": datetime(2026, 11, 1, tzinfo=UTC),
        "title": "情報システム部 部長",
        "extra": "dropped",
    },
    {
        "lead_id": "L2",
        "stage": "lead",
        "fit": 0,
        "score": None,
        "excluded": True,
        "at": None,
        "title": 'say "hi",\nbye',
    },
]


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl", "out.parquet", "out.tsv"])
def test_byte_identical_reruns_and_round_trip(tmp_path: Path, name: str) -> None:
    first, second = tmp_path / "a" / name, tmp_path / "b" / name
    first.parent.mkdir()
    second.parent.mkdir()
    assert write_rows(first, COLUMNS, ROWS) == 2
    write_rows(second, COLUMNS, iter(ROWS))
    assert first.read_bytes() == second.read_bytes()
    rows = [row for _, row in read_rows(first)]
    assert list(rows[0]) == COLUMNS
    assert rows[0]["title"] == "情報システム部 部長" and rows[1]["title"] == 'say "hi",\nbye'
    assert rows[0]["lead_id"] == "L1"
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]


def test_csv_is_lf_and_formats_values(tmp_path: Path) -> None:
    target = tmp_path / "o.csv"
    write_rows(target, COLUMNS, ROWS)
    data = target.read_bytes()
    assert b"\r\n" not in data.replace(b'"say', b"")
    assert (
        data.splitlines()[1] == "L1,mql,45,12.5,false,2026-11-01T00:00:00+00:00,情報システム部 部長".encode()
    )


def test_parquet_keeps_types_and_many_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.io.writers as writers

    monkeypatch.setattr(writers, "PARQUET_BATCH_ROWS", 4)
    rows = [{"id": f"L{i}", "n": i, "note": None if i < 6 else "x"} for i in range(10)]
    target = tmp_path / "o.parquet"
    write_rows(target, ["id", "n", "note"], rows)
    table = pq.read_table(target)
    assert table.column("n").to_pylist() == list(range(10))
    assert str(table.schema.field("note").type) == "string"
    empty = tmp_path / "e.parquet"
    write_rows(empty, ["id"], [])
    assert pq.read_table(empty).num_rows == 0


def test_failure_midway_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "o.csv"
    target.write_text("old\n")

    def rows() -> Any:
        yield ROWS[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_rows(target, COLUMNS, rows())
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


def test_missing_output_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        write_rows(tmp_path / "no" / "o.csv", COLUMNS, ROWS)


def test_rejects_writer(tmp_path: Path) -> None:
    target = tmp_path / "rejects.csv"
    with RejectsWriter(target) as sink:
        sink(Reject("leads.csv", 7, "employees", "many", "'many' is not a number"))
        sink(Reject("events.csv", 3, None, None, "orphan"))
    assert sink.count == 2
    assert target.read_text(encoding="utf-8") == (
        "file,row,column,value,reason\n"
        "leads.csv,7,employees,many,'many' is not a number\n"
        "events.csv,3,,,orphan\n"
    )


@pytest.mark.parametrize(("text", "written"), [
    ("=2+3", "'=2+3"), ("+81-3-1234", "'+81-3-1234"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), ("-", "'-"), ("-inf", "'-inf"),
    ("-3.5", "-3.5"), ("+81", "+81"), ("-1e5", "-1e5"), ("Acme", "Acme"), ("a=b", "a=b"), ("", ""),
])
def test_guard_cell(text: str, written: str) -> None:
    assert guard_cell(text) == written


def test_csv_guards_text_cells_only_and_other_formats_keep_values(tmp_path: Path) -> None:
    columns = ["id", "n", "x", "ok"]
    rows = [{"id": "=cmd|' /C calc'!A0", "n": -3.5, "x": "-3.5", "ok": True},
            {"id": "\tL2", "n": -1, "x": "@x", "ok": False}]
    write_rows(tmp_path / "g.csv", columns, rows)
    assert (tmp_path / "g.csv").read_text(encoding="utf-8") == (
        "id,n,x,ok\n'=cmd|' /C calc'!A0,-3.5,-3.5,true\n'\tL2,-1,'@x,false\n")
    write_rows(tmp_path / "raw.csv", columns, rows, csv_guard=False)
    assert (tmp_path / "raw.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "=cmd|' /C calc'!A0,-3.5,-3.5,true", "\tL2,-1,@x,false"]
    write_rows(tmp_path / "g.jsonl", columns, rows)
    assert "'" not in (tmp_path / "g.jsonl").read_text(encoding="utf-8").replace("' /C calc'", "")
    write_rows(tmp_path / "g.parquet", columns, rows)
    assert pq.read_table(tmp_path / "g.parquet").column("id").to_pylist() == [rows[0]["id"], "\tL2"]
    # rows already text: the columns named raw are numbers spelled as text, never guarded
    write_cells(tmp_path / "c.csv", columns, [["-5", "-3.5", "-3.5x", "true"]], raw_columns={"n"})
    assert (tmp_path / "c.csv").read_text(encoding="utf-8").splitlines()[1] == "-5,-3.5,'-3.5x,true"


def test_rejects_are_guarded_unless_asked_not_to(tmp_path: Path) -> None:
    for guard, expected in ((True, "leads.csv,7,employees,'=1+1,'@bad\n"),
                            (False, "leads.csv,7,employees,=1+1,@bad\n")):
        target = tmp_path / f"r-{guard}.csv"
        with RejectsWriter(target, csv_guard=guard) as sink:
            sink(Reject("leads.csv", 7, "employees", "=1+1", "@bad"))
        assert target.read_text(encoding="utf-8").splitlines(keepends=True)[1] == expected


SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from engine.io import write_rows

    def rows():
        for i in range(10_000_000):
            if i == 1000:
                print("started", flush=True)
                time.sleep(60)
            yield {"id": i, "payload": "x" * 100}

    write_rows(sys.argv[1], ["id", "payload"], rows())
    """
)


def _start_writer(target: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    return process


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sigkill_midway_leaves_no_target(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"decisions{suffix}"
    process = _start_writer(target)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()
    assert not target.exists()
    # At most the clearly named temp file remains after SIGKILL (Parquet may not have begun).
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers <= {f".decisions{suffix}.tmp-{process.pid}"}


def test_sigterm_midway_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "decisions.jsonl"
    process = _start_writer(target)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert process.stdout is not None
    process.stdout.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@pytest.mark.parametrize("guard", [True, False])
def test_finished_lines_with_appended_cells_are_write_cells_bytes(tmp_path: Path, suffix: str,
                                                                   guard: bool) -> None:
    """engine evaluate holds each decision row as its line and appends the queue cells later."""
    columns = ["id", "n", "text", "queue", "team"]
    rows = [["=HYPERLINK(1)", "-3.5", "a,b", "queued", "inside_sales"],
            ["cr\rcell", "1.0", 'say "hi"', "carried_over", "marketing"],
            ["tab\there", "true", "line\nbreak", "", ""],
            ["@x", "-1", "\t-lead", "overflow", "field_sales"], ["", "", "", "", ""]]
    write_cells(tmp_path / f"cells{suffix}", columns, rows, raw_columns={"n"}, csv_guard=guard)
    line = csv_line_maker(columns[:3], raw_columns={"n"}, csv_guard=guard, tsv=suffix == ".tsv")
    d = "\t" if suffix == ".tsv" else ","
    lines = []
    for row in rows:
        text, quoted = line(row[:3])
        lines.append(d.join([text, *(f'"{c}"' if quoted else c for c in row[3:])]))
    write_lines(tmp_path / f"lines{suffix}", columns, lines, tsv=suffix == ".tsv")
    assert (tmp_path / f"lines{suffix}").read_bytes() == (tmp_path / f"cells{suffix}").read_bytes()
