"""`engine evaluate` end to end: CliRunner, exit codes, a killed run, the README command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli, main
from tests.export_factory import BENCH_PLAYBOOK, LEAD_COLUMNS, REPO, make_export, make_rows, write_csv

AS_OF = "2026-11-01T00:00:00Z"


def test_summary_json_has_stable_keys(tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 30)
    out = tmp_path / "o" / "d.csv"
    result = CliRunner().invoke(
        cli, ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
              "--as-of", AS_OF, "--out", str(out), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["playbook", "as_of", "output", "rejects", "queues", "leads", "events",
                          "inputs", "stages", "routes", "excluded", "recycled", "handoffs", "nurture"]
    assert data["leads"] == {"read": 30, "decided": 30, "rejected": 0}
    assert data["inputs"] == {"encodings": {"leads": "utf-8 (detected)", "events": "utf-8 (detected)"},
                              "timezone": {"zone": "UTC", "from": "the playbook"}, "absent_fields": []}
    assert list(data["routes"]) == ["marketing", "inside_sales", "field_sales", "none"]
    assert list(data["handoffs"]["inside_sales"]) == ["handoffs", "capacity", "queued", "overflow",
                                                      "carried_over", "overflow_out", "overflow_in",
                                                      "overdue", "accepted"]
    assert data["handoffs"]["inside_sales"]["capacity"] == 800
    assert data["rejects"] == str(tmp_path / "o" / "d.rejects.csv")


def test_text_summary_adds_up(tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 30)
    result = CliRunner().invoke(
        cli, ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
              "--as-of", AS_OF, "--out", str(tmp_path / "d.jsonl"), "--queues", str(tmp_path / "q")],
        catch_exceptions=False)
    assert result.exit_code == 0
    assert "leads 30 read = 30 decided + 0 rejected" in " ".join(result.output.split())
    assert "stage:" in result.output and "handoffs:" in result.output
    assert len((tmp_path / "d.jsonl").read_text().splitlines()) == 30


def test_missing_column_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leads, _ = make_rows(5)
    columns = [c if c != "lead_id" else "LeadID" for c in LEAD_COLUMNS]
    lp = write_csv(tmp_path / "leads.csv", columns, leads)
    code = main(["evaluate", str(BENCH_PLAYBOOK), "--leads", str(lp), "--as-of", AS_OF,
                 "--out", str(tmp_path / "d.csv")])
    err = capsys.readouterr().err
    assert code == 1
    assert "column 'lead_id'" in err and "LeadID" in err
    assert not (tmp_path / "d.csv").exists()


def test_max_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leads, _ = make_rows(10)
    leads[1][4] = leads[2][4] = "n/a?"
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    code = main(["evaluate", str(BENCH_PLAYBOOK), "--leads", str(lp), "--as-of", AS_OF,
                 "--out", str(tmp_path / "d.csv"), "--max-errors", "1"])
    assert code == 1
    assert "more than 1 rejected row(s)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leads.csv"]


def test_bad_as_of_and_unknown_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leads, _ = make_export(tmp_path, 3)
    base = ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--out", str(tmp_path / "d.csv")]
    assert main([*base, "--as-of", "soon"]) == 1
    assert "--as-of" in capsys.readouterr().err
    assert main([*base, "--as-of", AS_OF, "--mapping", "salesforse"]) == 1
    assert "did you mean 'salesforce'" in capsys.readouterr().err


@pytest.mark.parametrize("as_of", [AS_OF, "soon"])
def test_the_console_script_exits_with_the_commands_code_and_all_it_wrote(tmp_path: Path, as_of: str) -> None:
    """``entry`` moves the run's objects out of the collector's reach before the
    interpreter exits (issue #17): the summary printed, the files written and the exit
    code are the command's all the same."""
    leads, events = make_export(tmp_path, 30)
    out = tmp_path / "o" / "d.csv"
    engine = Path(sys.executable).with_name("engine")
    done = subprocess.run([str(engine), "evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events",
                           str(events), "--as-of", as_of, "--out", str(out), "--format", "json"],
                          capture_output=True, text=True, timeout=120, check=False)
    if as_of == "soon":
        assert done.returncode == 1 and "--as-of" in done.stderr and not out.exists()
        return
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["leads"] == {"read": 30, "decided": 30, "rejected": 0}
    assert len(out.read_text(encoding="utf-8").splitlines()) == 31


def test_the_console_script_runs_exit_handlers_and_survives_a_reader_that_left() -> None:
    """``entry`` leaves without the interpreter's teardown (issue #17), but exit handlers
    still run, and what they print still arrives after the command's output; a reader
    that went away (``engine --help | head -0``) is exit code 1 (``main``'s), no traceback."""
    script = ("import atexit, sys; atexit.register(lambda: print('handler ran')); "
              "sys.argv = ['engine', '--version']; from engine.cli import entry; entry()")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as most shells run it
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          check=False, env=buffered)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "handler ran" and "engine" in done.stdout.splitlines()[0]
    engine = Path(sys.executable).with_name("engine")
    reader = subprocess.Popen([str(engine), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # before the command writes a byte
    assert reader.wait(timeout=60) == 1
    with reader.stderr:
        assert reader.stderr.read() == b""


def _engine(*args: str, cwd: Path = REPO) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


README_COMMAND = (
    "engine evaluate playbooks/olist.yaml --mapping olist --as-of 2018-06-01"
    " --leads examples/data/olist-mql-sample.csv --events examples/data/olist-deals-sample.csv"
    " --out out/olist-decisions.csv --queues out/queues"
)


def test_readme_first_command_on_a_fresh_checkout(tmp_path: Path) -> None:
    """The README's first command (after its install step), as typed, in a copy of the repo's files."""
    import shutil

    shutil.copytree(REPO / "examples" / "data", tmp_path / "examples" / "data")
    (tmp_path / "playbooks").mkdir()
    shutil.copy(REPO / "playbooks" / "olist.yaml", tmp_path / "playbooks")
    assert ".venv/bin/" + README_COMMAND in (REPO / "README.md").read_text(encoding="utf-8")
    engine = Path(sys.executable).with_name("engine")
    args = [str(engine), *README_COMMAND.split()[1:]]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "leads 400 read = 400 decided + 0 rejected" in said
    assert "events 36 read = 36 matched + 0 rejected" in said
    decisions = (tmp_path / "out" / "olist-decisions.csv").read_text(encoding="utf-8").splitlines()
    assert len(decisions) == 401
    queue = (tmp_path / "out" / "queues" / "inside_sales.csv").read_text(encoding="utf-8").splitlines()
    assert queue[0].startswith("rank,lead_id,priority,due") and len(queue) > 10
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


def test_progress_path_runs_and_only_writes_to_stderr(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The bar is drawn only on a terminal; its code path must still evaluate the same."""
    from engine.batch import BatchRequest, count_rows, parse_as_of
    from engine.commands.evaluate import _with_progress
    from engine.io import load_mapping
    from engine.validate import load_playbook

    leads, events = make_export(tmp_path, 1200)
    assert count_rows(leads) == 1201  # lines, header included: rows are numbered the same way
    cp = load_playbook(BENCH_PLAYBOOK).compiled
    assert cp is not None
    request = BatchRequest(leads=leads, events=events, out=tmp_path / "d.csv", as_of=parse_as_of(AS_OF, cp),
                           mapping=load_mapping("canonical"))
    summary = _with_progress(cp, request, "bench")
    captured = capsys.readouterr()
    assert summary.decided == 1200 and captured.out == ""
    assert "evaluating" in captured.err


def test_encoding_option_reads_cp932(tmp_path: Path) -> None:
    leads, _ = make_rows(20)
    assert any("部長" in row[5] or "学生" in row[5] for row in leads)
    cp932 = write_csv(tmp_path / "sjis.csv", LEAD_COLUMNS, leads, encoding="cp932")
    utf8 = write_csv(tmp_path / "utf8.csv", LEAD_COLUMNS, leads)
    args = ["evaluate", str(BENCH_PLAYBOOK), "--as-of", AS_OF, "--format", "json"]
    for name, path in (("a", cp932), ("b", utf8)):
        extra = ["--encoding", "cp932"] if name == "a" else []
        result = CliRunner().invoke(cli, [*args, "--leads", str(path), "--out", str(tmp_path / f"{name}.csv"),
                                          *extra], catch_exceptions=False)
        assert json.loads(result.output)["leads"]["decided"] == 20
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_backends_write_the_same_files_and_summary(tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 40)
    outputs = {}
    for backend in ("python", "duckdb"):
        folder = tmp_path / backend
        result = CliRunner().invoke(
            cli, ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
                  "--as-of", AS_OF, "--out", str(folder / "d.csv"), "--queues", str(folder / "q"),
                  "--backend", backend], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        outputs[backend] = (files, result.output.replace(str(folder), "OUT"))
    assert outputs["duckdb"] == outputs["python"]


def test_construct_without_sql_form_is_a_clear_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    playbook = tmp_path / "pb.yaml"
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    playbook.write_text(text.replace('"case-study-*"', '"case-study-[0-9]*"'), encoding="utf-8")
    leads, _ = make_export(tmp_path, 5)
    args = ["evaluate", str(playbook), "--leads", str(leads), "--as-of", AS_OF,
            "--out", str(tmp_path / "d.csv")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "case-study-[0-9]*" in err and "--backend python" in err and "Traceback" not in err
    assert not (tmp_path / "d.csv").exists()
    assert main([*args, "--backend", "python"]) == 0  # never a silent fallback, but python runs it
    assert main([*args, "--master", "local[1]"]) == 2  # --master is for --backend spark


def _overlap_cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(name, extra args, what stderr names) for outputs that would destroy an input or each other."""
    (tmp / "link.csv").symlink_to(tmp / "leads.csv")
    os.link(tmp / "events.csv", tmp / "hard.csv")
    mapping = tmp / "mapping.yaml"
    mapping.write_text((REPO / "engine" / "presets" / "canonical.yaml").read_text(encoding="utf-8"))
    return [
        ("out-is-leads", ["--out", str(tmp / "leads.csv")], "is the input --leads"),
        ("out-is-leads-by-another-spelling", ["--out", str(tmp / "x" / ".." / "leads.csv")],
         "is the input --leads"),
        ("out-symlinks-to-leads", ["--out", str(tmp / "link.csv")], "is the input --leads"),
        ("out-hard-links-events", ["--out", str(tmp / "hard.csv")], "is the input --events"),
        ("out-is-the-playbook", ["--out", str(tmp / "pb.yaml.csv"), "--rejects", str(tmp / "pb.yaml")],
         "is the input the playbook"),
        ("rejects-is-out", ["--out", str(tmp / "o" / "d.csv"), "--rejects", str(tmp / "o" / "d.csv")],
         "is the output --out"),
        ("rejects-is-the-mapping", ["--out", str(tmp / "o" / "d.csv"), "--rejects", str(mapping),
                                    "--mapping", str(mapping)], "is the input --mapping"),
        ("queues-hold-an-input", ["--out", str(tmp / "o" / "d.csv"), "--queues", str(tmp)],
         "holds the input --leads"),
        ("queue-file-is-out", ["--out", str(tmp / "q" / "inside_sales.csv"), "--queues", str(tmp / "q")],
         "the queue file"),
    ]


@pytest.mark.parametrize("backend", ["duckdb", "python"])
def test_an_output_that_is_an_input_or_another_output_is_refused(
        tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    leads, events = make_export(tmp_path, 5)
    playbook = tmp_path / "pb.yaml"
    playbook.write_text(BENCH_PLAYBOOK.read_text(encoding="utf-8"), encoding="utf-8")
    before = {p: p.read_bytes() for p in (leads, events, playbook)}
    for name, extra, named in _overlap_cases(tmp_path):
        listing = sorted(tmp_path.rglob("*"))
        code = main(["evaluate", str(playbook), "--leads", str(leads), "--events", str(events),
                     "--as-of", AS_OF, "--backend", backend, *extra])
        err = capsys.readouterr().err
        assert code == 1, (name, err)
        assert named in err and "nothing was written" in err and "Traceback" not in err, (name, err)
        assert sorted(tmp_path.rglob("*")) == listing, name  # not even a folder was made
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("backend", ["duckdb", "python"])
def test_default_rejects_name_keeps_the_whole_stem(tmp_path: Path, backend: str) -> None:
    leads, events = make_export(tmp_path, 5)
    base = ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events), "--as-of", AS_OF,
            "--backend", backend]
    for version in ("v1", "v2"):
        assert main([*base, "--out", str(tmp_path / "o" / f"decisions.{version}.csv")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "decisions.v1.csv", "decisions.v1.rejects.csv", "decisions.v2.csv", "decisions.v2.rejects.csv"]
