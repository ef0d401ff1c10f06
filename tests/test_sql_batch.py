"""``--backend duckdb`` writes exactly what ``--backend python`` writes: decisions, rejects, queues.

Each case runs both backends on the same export and compares the files byte for byte
(decisions as CSV, JSONL or Parquet; the rejects file, reasons and order included; every
queue and overflow file) and the summaries. The exports cover the bundled Olist sample,
generated exports with bad rows (sorted, so engine.io merges, and shuffled, so it
spills), CP932 and BOM CSVs, JSONL, Parquet, the aggregated-activity preset, and files
DuckDB cannot number the same way (blank lines, quoted newlines, ragged rows).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.batch import BatchRequest, TooManyRejects, evaluate_export, render_summary
from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.io import InputError, load_mapping, parse_mapping
from engine.sql.batch import evaluate_export_sql
from engine.validate import load_playbook
from tests.export_factory import (
    AS_OF,
    BENCH_PLAYBOOK,
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    REPO,
    make_rows,
    playbook_with_capacity,
    vary,
    write_csv,
)

from .test_batch import XE_HEADER, XE_ROWS, _xe_row


def _cp(path: Path) -> CompiledPlaybook:
    compiled = load_playbook(path).compiled
    assert compiled is not None
    return compiled


@pytest.fixture(scope="module")
def bench() -> CompiledPlaybook:
    return _cp(BENCH_PLAYBOOK)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def both(cp: CompiledPlaybook, tmp: Path, leads: Path, events: Path | None, *, out: str = "d.csv",
         **options: Any) -> dict[str, bytes]:
    """Run both backends; assert identical files and summaries; return the files."""
    mapping = options.pop("mapping", load_mapping("canonical"))
    as_of = options.pop("as_of", AS_OF)
    results = {}
    for backend in ("python", "duckdb"):
        folder = tmp / backend
        queues = folder / "q" if options.get("queues", True) else None
        request = BatchRequest(leads=leads, events=events, out=folder / out, as_of=as_of, mapping=mapping,
                               queues=queues, **{k: v for k, v in options.items() if k != "queues"})
        if backend == "python":
            summary = evaluate_export(cp, request, playbook_name="pb")
        else:
            summary = evaluate_export_sql(cp, request, playbook_name="pb")
        text = render_summary(summary).replace(str(folder), "OUT")
        data = json.dumps(summary.to_dict()).replace(str(folder), "OUT")
        results[backend] = (_files(folder), text, data)
    (py_files, py_text, py_json), (db_files, db_text, db_json) = results["python"], results["duckdb"]
    assert list(db_files) == list(py_files)
    for name in py_files:
        assert db_files[name] == py_files[name], (name, db_files[name][:3000], py_files[name][:3000])
    assert db_text == py_text
    assert db_json == py_json
    return py_files


def record_tables(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Each ``decisions.make_table`` call of the runs to come: its query and keywords."""
    from engine.sql import decisions

    calls: list[tuple[str, dict[str, Any]]] = []
    make_table = decisions.make_table

    def recorded(con: Any, source: str, *a: Any, **k: Any) -> None:
        calls.append((source, k))
        make_table(con, source, *a, **k)

    monkeypatch.setattr(decisions, "make_table", recorded)
    return calls


def _rejects(files: dict[str, bytes]) -> list[str]:
    return [line for line in files["d.rejects.csv"].decode().splitlines()[1:]]


def test_olist_sample_with_its_mapping(tmp_path: Path) -> None:
    data = REPO / "examples" / "data"
    files = both(_cp(REPO / "playbooks" / "olist.yaml"), tmp_path, data / "olist-mql-sample.csv",
                 data / "olist-deals-sample.csv", mapping=load_mapping("olist"),
                 as_of=AS_OF.replace(year=2018, month=6, day=1), overflow=True)
    assert files["d.csv"].count(b"\n") == 401
    assert set(files) >= {"q/inside_sales.csv", "q/marketing.csv", "q/customer_success.csv"}


def _bad_rows(n: int = 80) -> tuple[list[list[str]], list[list[str]]]:
    leads, events = make_rows(n)
    leads[3][4] = "lots"  # not a number
    leads[5][0] = ""  # no lead id: its events become orphans
    leads[6][0] = "  "  # blank id
    leads[7][4] = "１，２００"  # full-width digits with a separator: Python's NFKC reads 1200
    leads[8][4] = " 1,200 "  # padded, thousands separator
    leads[9][4] = "inf"  # not finite
    leads[10][8] = "yesterday"  # created_at: not a timestamp
    leads[11][8] = "2026/01/02 09:30"  # the spreadsheet form
    leads[12][8] = "2026-01-02T09:30:00+09:00"
    leads[13][5] = "\u3000部長\u3000"  # full-width blanks stripped
    leads[14][5] = " Director "
    leads[15][4] = "1e3"
    leads[16][4] = "12.50"
    events[0][1] = "not a time"
    events[2][2] = "podcast"  # not a declared event type
    events[4][2] = ""  # missing type
    events[6][0] = ""  # missing lead id
    events[8][1] = ""  # missing timestamp
    events[10][1] = "2026-10-20 10:00:00"  # naive: the mapping's zone (UTC)
    events[12][1] = "2026-10-20T10:00:00.123+09:00"
    events.append(["L99999", "2026-10-01T00:00:00Z", "page_view", "pricing"])  # no such lead
    events.insert(20, ["L00000", "2026-10-01T00:00:00Z", "page_view", "pricing"])  # before every lead
    return leads, events


def test_sorted_export_with_bad_rows_merges_like_python(bench: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = _bad_rows()
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(bench, tmp_path, lp, ep)
    reasons = "\n".join(_rejects(files))
    for expected in ("'lots' is not a number", "missing lead id", "'yesterday' is not a timestamp",
                     "unknown event type 'podcast'", "missing event type", "missing timestamp",
                     "not in the leads file", "'inf' is not a finite number"):
        assert expected in reasons
    assert "L00008" in files["d.csv"].decode()  # the full-width number was accepted


def test_shuffled_export_with_repeated_ids_spills_like_python(bench: CompiledPlaybook,
                                                             tmp_path: Path) -> None:
    leads, events = _bad_rows()
    leads.append(list(leads[20]))  # a repeated lead id (rejected; its events go to the first)
    random.Random(3).shuffle(leads)
    random.Random(4).shuffle(events)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(bench, tmp_path / "csv", lp, ep, out="d.csv")
    assert "lead id appears earlier in the leads file" in "\n".join(_rejects(files))
    both(bench, tmp_path / "jsonl", lp, ep, out="d.jsonl")
    both(bench, tmp_path / "parquet", lp, ep, out="d.parquet")


@pytest.mark.parametrize("queues", [True, False])
def test_capacities_queues_and_overflow(tmp_path: Path, queues: bool) -> None:
    """Capped teams rank their handoffs; without queue files an unlimited team (marketing,
    which also takes the overflow) ranks nothing, and the decisions' queue columns and the
    summary's counts are still Python's."""
    cp = _cp(playbook_with_capacity(tmp_path, None, 3))
    leads, events = make_rows(120, seed=11)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(cp, tmp_path, lp, ep, overflow=True, queues=queues)
    decided = files["d.csv"]
    assert (b",overflow," in decided or b",carried_over," in decided) and b",queued," in decided
    if queues:
        assert files["q/field_sales.overflow.csv"].count(b"\n") > 1
        assert "q/inside_sales.overflow.csv" not in files
    else:
        assert not any(name.startswith("q/") for name in files)


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig"])
def test_encodings_duckdb_cannot_read_are_transcoded(bench: CompiledPlaybook, tmp_path: Path,
                                                     encoding: str, private_temp_dir: Path) -> None:
    leads, events = _bad_rows(40)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads, encoding=encoding)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events, encoding=encoding)
    both(bench, tmp_path, lp, ep)
    assert list(private_temp_dir.iterdir()) == []  # the UTF-8 copies (and all scratch) are removed


def _jsonl(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = []
    for row in rows:
        record: dict[str, Any] = dict(zip(header, row, strict=True))
        if record.get("employees", "x").isdigit():
            record["employees"] = int(record["employees"])  # a JSON number, as exports write them
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_and_parquet_inputs(bench: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = _bad_rows(50)
    lj = _jsonl(tmp_path / "l.jsonl", LEAD_COLUMNS, leads)
    ej = _jsonl(tmp_path / "e.jsonl", EVENT_COLUMNS, events)
    both(bench, tmp_path / "jsonl", lj, ej)
    lpq, epq = tmp_path / "l.parquet", tmp_path / "e.parquet"
    table = {c: [r[i] for r in leads] for i, c in enumerate(LEAD_COLUMNS)}
    table["employees"] = [float(v) if v.isdigit() else None for v in table["employees"]]  # typed column
    pq.write_table(pa.table(table), lpq)
    pq.write_table(pa.table({c: [r[i] for r in events] for i, c in enumerate(EVENT_COLUMNS)}), epq)
    both(bench, tmp_path / "parquet", lpq, epq)


def test_irregular_files_are_read_by_engine_io(bench: CompiledPlaybook, tmp_path: Path) -> None:
    """Blank lines, a quoted newline, a ragged row, a bad JSON line: same rows, same numbers."""
    leads, events = _bad_rows(30)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    text = lp.read_text().splitlines(keepends=True)
    text.insert(4, "\n")
    text[6] = text[6].replace(",Director,", ',"Dir\nector",').replace(",部長,", ',"部\n長",')
    text.insert(9, "L77777,a,b,c,1,t,JP,web,2026-01-01,extra\n")
    lp.write_text("".join(text))
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(bench, tmp_path / "csv", lp, ep)
    assert "values but the header has" in "\n".join(_rejects(files))
    ej = _jsonl(tmp_path / "e.jsonl", EVENT_COLUMNS, events)
    ej.write_text(ej.read_text().replace("\n", "\n{not json\n", 1))
    both(bench, tmp_path / "jsonl", lp, ej)


def test_aggregated_activity_preset(tmp_path: Path) -> None:
    rows = [
        *XE_ROWS,
        _xe_row("a-6", "API", "No", "2.5", "50", "Email Opened", "Student", ""),
        _xe_row("a-7", "API", "No", "5000", "50", "Form Submitted on Website", "Student", ""),
        _xe_row("a-8", "API", "Maybe", "1", "50", "Email Link Clicked", "Student", ""),
        _xe_row("a-9", "API", "No", " 3 ", "1,050", "Email Link Clicked", "Student", ""),
    ]
    lp = write_csv(tmp_path / "Leads.csv", XE_HEADER, rows)
    files = both(_cp(REPO / "playbooks" / "x-education.yaml"), tmp_path, lp, None,
                 mapping=load_mapping("leads-x-education"))
    reasons = "\n".join(_rejects(files))
    assert "is not a count" in reasons and "exceeds max_count" in reasons and "yes/no" in reasons


def test_max_errors_stops_both_the_same_way(bench: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = _bad_rows(40)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    messages = []
    for backend, run in (("python", evaluate_export), ("duckdb", evaluate_export_sql)):
        out = tmp_path / backend / "d.csv"
        request = BatchRequest(leads=lp, events=ep, out=out, as_of=AS_OF,
                               mapping=load_mapping("canonical"), max_errors=3,
                               queues=tmp_path / backend / "q")
        with pytest.raises(TooManyRejects) as caught:
            run(bench, request)
        messages.append(str(caught.value))
        assert not out.exists() and not (tmp_path / backend / "d.rejects.csv").exists()
        assert not list((tmp_path / backend).glob(".*"))  # no staging file left behind
    assert messages[0] == messages[1]


def test_missing_column_names_it(bench: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = make_rows(5)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    renamed = [c if c != "occurred_at" else "OccurredAt" for c in EVENT_COLUMNS]
    ep = write_csv(tmp_path / "events.csv", renamed, events)
    errors = []
    for run in (evaluate_export, evaluate_export_sql):
        request = BatchRequest(leads=lp, events=ep, out=tmp_path / "d.csv", as_of=AS_OF,
                               mapping=load_mapping("canonical"))
        with pytest.raises(InputError) as caught:
            run(bench, request)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert "column 'occurred_at'" in errors[1] and "OccurredAt" in errors[1]


def test_custom_mapping_with_formats_renames_and_null_markers(bench: CompiledPlaybook,
                                                              tmp_path: Path) -> None:
    mapping = parse_mapping("""
version: 1
timezone: Asia/Tokyo
null_values: ["", "N/A", "不明"]
leads:
  id: ID
  fields:
    employees: {column: Staff, type: integer}
    title: Title
    industry: Industry
    created_at: {column: Created, type: datetime, formats: ["%d.%m.%Y"]}
events:
  lead_id: ID
  at: When
  type: Kind
  id: EventID
  types: {visit: page_view, mail: email_open}
  fields:
    content: Page
""")
    lp = write_csv(tmp_path / "leads.csv", ["ID", "Staff", "Title", "Industry", "Created"], [
        ["B2", "120", "部長", "software", "01.02.2026"],
        ["B1", "12.0", "不明", "N/A", "2026-02-01"],
        ["B3", "12.5", "n/a", "finance", ""],
        ["B4", "５００", "Director", "retail", "31.12.2025"],
    ])
    ep = write_csv(tmp_path / "events.csv", ["ID", "When", "Kind", "EventID", "Page"], [
        ["B1", "2026-10-30 10:00", "visit", "x1", "pricing"],
        ["B1", "2026-10-30 10:00", "visit", "x1", "pricing"],  # the same id: counts once
        ["B2", "2026/10/29 9:00", "mail", "", "N/A"],
        ["B2", "2026-10-29T09:00", "fax", "", ""],
        ["B3", "2026-03-08 02:30", "visit", " ", "pricing"],
    ])
    both(bench, tmp_path, lp, ep, mapping=mapping)


def test_construct_without_sql_form_names_it_and_suggests_python(tmp_path: Path) -> None:
    playbook = tmp_path / "pb.yaml"
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    playbook.write_text(text.replace("case-study-*", "case-study-[0-9]*"), encoding="utf-8")
    bracket = _cp(playbook)
    leads, _ = make_rows(5)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    request = BatchRequest(leads=lp, out=tmp_path / "d.csv", as_of=AS_OF, mapping=load_mapping("canonical"))
    with pytest.raises(EngineError) as caught:
        evaluate_export_sql(bracket, request)
    message = str(caught.value)
    assert "case-study-[0-9]*" in message and "--backend python" in message
    assert not (tmp_path / "d.csv").exists() and not (tmp_path / "d.rejects.csv").exists()


@pytest.mark.parametrize("broken", ["leads", "events"])
def test_events_sorted_promise_broken_is_the_same_error(bench: CompiledPlaybook, tmp_path: Path,
                                                        broken: str) -> None:
    leads, events = make_rows(30)
    if broken == "leads":
        leads[5], leads[6] = leads[6], leads[5]
    else:
        events[5], events[-1] = events[-1], events[5]
    lp = write_csv(tmp_path / "l.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "e.csv", EVENT_COLUMNS, events)
    errors = []
    for run in (evaluate_export, evaluate_export_sql):
        request = BatchRequest(leads=lp, events=ep, out=tmp_path / "d.csv", as_of=AS_OF,
                               mapping=load_mapping("canonical"), events_sorted=True)
        with pytest.raises(InputError) as caught:
            run(bench, request)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "sorted" in errors[0]


SHARED = REPO.parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "leads-x-education" / "Leads.csv").exists(),
                    reason="the real exports are read from ../shared/data/, absent here")
def test_real_exports_full_size(tmp_path: Path) -> None:
    """X Education (9,240 leads, activity columns) and the full Olist funnel, both backends."""
    both(_cp(REPO / "playbooks" / "x-education.yaml"), tmp_path / "xe",
         SHARED / "leads-x-education" / "Leads.csv", None, mapping=load_mapping("leads-x-education"),
         out="d.parquet", overflow=True)
    olist = SHARED / "olist-marketing-funnel"
    both(_cp(REPO / "playbooks" / "olist.yaml"), tmp_path / "olist",
         olist / "olist_marketing_qualified_leads_dataset.csv", olist / "olist_closed_deals_dataset.csv",
         mapping=load_mapping("olist"), as_of=AS_OF.replace(year=2018, month=6, day=1), overflow=True)


#: Lead ids a spreadsheet would run as formulas, and one that is only a (negative) number
#: (a leading tab or CR is trimmed by the readers: tests/test_io_writers.py covers those).
_FORMULA_IDS = ["=2+3", "+81-3-1234", "@SUM(A1)", "-42"]


def _formula_export(tmp: Path) -> tuple[CompiledPlaybook, Path, Path]:
    """The bench playbook with a negative fit rule, and an export whose ids and values are formulas."""
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    japan = '{id: japan, when: lead.country == "JP", points: 5}'
    assert japan in text
    playbook = tmp / "pb.yaml"
    playbook.write_text(text.replace(japan, japan.replace("points: 5", "points: -7.5")), encoding="utf-8")
    leads, events = make_rows(40)
    renamed = {leads[i][0]: new for i, new in enumerate(_FORMULA_IDS)}
    for row in leads:
        row[0] = renamed.get(row[0], row[0])
    for row in events:
        row[0] = renamed.get(row[0], row[0])
    leads[len(_FORMULA_IDS)][4] = "=1+1"  # not a number: a reject whose value is a formula
    return (_cp(playbook), write_csv(tmp / "leads.csv", LEAD_COLUMNS, leads),
            write_csv(tmp / "events.csv", EVENT_COLUMNS, events))


def test_formula_cells_are_guarded_in_csv_outputs_only(tmp_path: Path) -> None:
    cp, lp, ep = _formula_export(tmp_path)
    files = both(cp, tmp_path / "csv", lp, ep)
    decisions = files["d.csv"].decode()
    for guarded in ("'=2+3,", "'+81-3-1234,", "'@SUM(A1),"):
        assert f"\n{guarded}" in decisions, guarded
    assert "\n-42," in decisions  # a number is data, not a formula
    # the engine's numeric columns are never guarded: negative fit and priority stay numbers
    assert ",-7.5," in decisions and "'-7.5" not in decisions
    queues = b"".join(v for k, v in files.items() if k.startswith("q/")).decode()
    assert "'=2+3," in queues and ",-7.5," in queues and "'-" not in queues
    assert ",employees,'=1+1," in files["d.rejects.csv"].decode()

    raw = both(cp, tmp_path / "raw", lp, ep, csv_guard=False)
    assert "\n=2+3," in raw["d.csv"].decode() and ",employees,=1+1," in raw["d.rejects.csv"].decode()
    assert "'" not in raw["d.csv"].decode()
    assert raw["d.csv"] != files["d.csv"]

    jsonl = both(cp, tmp_path / "jsonl", lp, ep, out="d.jsonl")
    ids = [json.loads(line)["lead_id"] for line in jsonl["d.jsonl"].decode().splitlines()]
    assert ids[:len(_FORMULA_IDS)] == _FORMULA_IDS  # JSONL keeps the values as they are


def test_a_handoffs_life_writes_the_same_files(tmp_path: Path) -> None:
    """Accepted, rejected, overdue and nurtured leads (docs/handoffs.md): the same decisions,
    queues (overdue, accepted), nurture list and summary on both backends."""
    mapping = parse_mapping("""
version: 1
name: life
null_values: [""]
leads:
  id: lead_id
  fields: {employees: {column: employees, type: number}, lead_source: lead_source}
events:
  lead_id: lead_id
  at: occurred_at
  type: type
  fields: {content: content, outcome: outcome, team: team, reason: reason}
""", "life.yaml")
    cp = _cp(REPO / "tests" / "sql_cases" / "life.yaml")
    leads = [[f"L{i:02d}", str(50 + 100 * (i % 3)), "web" if i % 4 == 0 else "ad"] for i in range(24)]
    kinds = [("inquiry", "", "", "", ""), ("handoff_accepted", "", "", "field_sales", ""),
             ("handoff_rejected", "", "", "field_sales", "no_budget"), ("meeting", "", "", "", ""),
             ("download", "guide-b", "", "", ""), ("disposition", "", "", "", "timing"),
             ("call", "", "connected", "", ""), ("page_view", "price1", "", "", ""),
             ("handoff_accepted", "", "", "inside_sales", ""), ("churn", "", "", "", "")]
    events = []
    for i in range(24):
        for j in range(1 + i % 4):
            kind, content, outcome, team, reason = kinds[(i * 3 + j * 7) % len(kinds)]
            at = AS_OF - timedelta(days=(i + 2 * j) % 9, hours=i)
            events.append([f"L{i:02d}", at.isoformat(), kind, content, outcome, team, reason])
    events.append(["L03", AS_OF.isoformat(), "handoff_rejected", "", "", "field_sales", "nope"])  # unknown
    events.append(["L05", AS_OF.isoformat(), "handoff_rejected", "", "", "field_sales", ""])  # no reason
    events.sort(key=lambda row: row[0])
    lp = write_csv(tmp_path / "leads.csv", ["lead_id", "employees", "lead_source"], leads)
    ep = write_csv(tmp_path / "events.csv",
                   ["lead_id", "occurred_at", "type", "content", "outcome", "team", "reason"], events)
    files = both(cp, tmp_path, lp, ep, mapping=mapping)
    decided = files["d.csv"].decode()
    for column in ("handoff_accepted", "overdue", "overdue_since", "nurture_track", "next_content"):
        assert column in decided.splitlines()[0]
    assert ",true," in decided and "budget" in decided  # some accepted or overdue; some nurtured
    assert files["q/marketing.nurture.csv"].count(b"\n") > 1
    rejects = _rejects(files)  # a rejection must give a recycle reason: a bad row, never ignored
    assert len(rejects) == 2 and all("the reason of a handoff_rejected event must be one of: "
                                     "churned, no_budget, no_need, timing" in r for r in rejects)
    assert ",reason,nope," in rejects[0] or ",reason,nope," in rejects[1]


def test_blank_lines_count_only_when_a_row_is_rejected(bench: CompiledPlaybook, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's rows stand (no line count) until a reject needs a number; then engine.io's lines."""
    import engine.sql.inputs as inputs

    leads, events = make_rows(30)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    lines = lp.read_text().splitlines(keepends=True)
    lines.insert(4, "\n")
    cells = lines[8].split(",")
    cells[5] = '"Dir\nector"'  # a quoted line break: the rows below are one line further down
    lines[8] = ",".join(cells)
    lp.write_text("".join(lines))
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    counted: list[Path] = []
    count_lines = inputs._count_lines
    monkeypatch.setattr(inputs, "_count_lines", lambda path: counted.append(path) or count_lines(path))
    clean = both(bench, tmp_path / "clean", lp, ep)
    assert not _rejects(clean) and counted == []  # nothing rejected: no pass over either file
    # now a bad cell after the blank line and the quoted line break: its number is its line
    cells = lines[12].split(",")
    cells[4] = "lots"
    lines[12] = ",".join(cells)
    lp.write_text("".join(lines))
    files = both(bench, tmp_path / "bad", lp, ep)
    assert counted == [lp, ep]  # each counted once: the leads file is then read by engine.io
    assert _rejects(files)[0].split(",")[1:4] == ["14", "employees", "lots"]  # line 13 + the break


@pytest.mark.parametrize("title", ['"Dir\rector"', "Dir\rector", '"Dir\r\nector"'])
def test_carriage_returns_in_cells_read_alike(bench: CompiledPlaybook, tmp_path: Path, title: str) -> None:
    """A bare CR ends a line for engine.io; quoted, it is text. No line count decides it now."""
    leads, events = make_rows(20)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    lines = lp.read_text().splitlines(keepends=True)
    cells = lines[5].split(",")
    cells[5] = title
    lines[5] = ",".join(cells)
    lp.write_bytes("".join(lines).encode())
    both(bench, tmp_path / "out", lp, write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events))


def test_rows_keep_their_numbers_when_duckdb_reads_a_file_in_parallel_pieces(
        bench: CompiledPlaybook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regular CSV is converted straight from DuckDB's parallel reader and its rows numbered
    by the converted table's order (issue #17): with the file read in many pieces, rejects
    late in the file — and a column with more distinct odd cells than are written into the
    query, which takes the joined lookup and its ordered copy — keep engine.io's numbers."""
    from engine.sql import cells, inputs

    monkeypatch.setattr(inputs, "CSV_BUFFER_SIZE", 1 << 15)
    monkeypatch.setattr(cells, "INLINE_LIMIT", 4)
    leads, events = make_rows(1500)
    for k, i in enumerate(range(len(events) - 1, 0, -len(events) // 9)):
        events[i][1] = f"2026-10-{k + 1:02d} 10:00"  # the spreadsheet form: odd, each one distinct
    events[-5][2] = "podcast"
    events[-3][1] = "not a time"
    leads[-2][4] = "lots"
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    assert ep.stat().st_size > 8 * (1 << 15)
    files = both(bench, tmp_path, lp, ep)
    rows = {line.split(",")[1] for line in _rejects(files)}
    assert {str(len(events) - 3), str(len(events) - 1), str(len(leads))} <= rows


def test_rows_converted_straight_from_the_reader_keep_their_numbers(
        bench: CompiledPlaybook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file with no odd cell is converted straight from DuckDB's reader, never copied
    (issue #17), and its rejects — a missing lead id, a missing timestamp, orphans — late in
    a file read in many parallel pieces keep engine.io's numbers: the conversion's plan has
    no join (the event types are a CASE, not an IN list DuckDB would make a join of)."""
    from engine.sql import inputs

    copies: list[Path] = []
    copy_scan = inputs.Inputs.copy_scan
    monkeypatch.setattr(inputs, "CSV_BUFFER_SIZE", 1 << 15)
    monkeypatch.setattr(inputs.Inputs, "copy_scan",
                        lambda self, scanned: (copies.append(scanned.path), copy_scan(self, scanned))[1])
    leads, events = make_rows(1500)
    events[-7][0] = ""  # no lead id
    events[-4][1] = ""  # no timestamp
    events.append(["L99999", "2026-10-01T00:00:00Z", "page_view", "pricing"])  # no such lead
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(bench, tmp_path, lp, ep)
    assert copies == []
    rows = {line.split(",")[1] for line in _rejects(files)}
    assert {str(len(events) - 6), str(len(events) - 3), str(len(events) + 1)} <= rows


def test_event_ctes_are_read_twice_only_when_no_event_has_an_id(
        bench: CompiledPlaybook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without event ids the decisions query reads the events twice rather than letting
    DuckDB buffer them (issue #17); with ids (repeated here, so deduplication matters) it
    keeps the buffer, so the deduplicating window runs once. Both give Python's files.
    (An export without ids is folded in one pass instead, engine.sql.streamed, unless
    its order was promised: then the general path runs, which this test is about.)"""
    calls = record_tables(monkeypatch)
    leads, events = make_rows(60)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    both(bench, tmp_path / "folded", lp, ep)
    assert "per_lead_stream" in calls[-1][0] and "all_events" not in calls[-1][0]
    both(bench, tmp_path / "plain", lp, ep, events_sorted=True)
    assert "history AS NOT MATERIALIZED" in calls[-1][0] and "all_events AS NOT MATERIALIZED" in calls[-1][0]

    with_ids = [[*row, f"e{i // 2}"] for i, row in enumerate(events)]  # each id twice
    ip = write_csv(tmp_path / "ids.csv", [*EVENT_COLUMNS, "event_id"], with_ids)
    canonical = load_mapping("canonical")
    assert canonical.events is not None
    mapping = canonical.model_copy(update={"events": canonical.events.model_copy(update={"id": "event_id"})})
    files = both(bench, tmp_path / "ids", lp, ip, mapping=mapping)
    assert "NOT MATERIALIZED" not in calls[-1][0]
    assert files["d.csv"] != _files(tmp_path / "plain" / "python")["d.csv"]  # the copies were dropped


def test_rejected_cells_with_quotes_escapes_and_controls_are_reported_as_read(
        bench: CompiledPlaybook, tmp_path: Path) -> None:
    """A row's problem is kept as one JSON array per row (issue #17): the rejected cells —
    quotes, backslashes, JSON-looking text, control characters, astral and full-width
    characters — come back out exactly, in rejects identical to Python's."""
    leads, events = make_rows(40)
    odd = ['say "hi"', "back\\slash", '["a", null]', "tab\there", "bell\x07", "😀 emoji", "null", "１２"]
    for i, cell in enumerate(odd):
        events[2 * i][1] = cell  # not timestamps
        leads[i + 1][4] = cell  # not numbers
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(bench, tmp_path, lp, ep)
    rejects = files["d.rejects.csv"].decode()
    assert 'back\\slash' in rejects and "😀 emoji" in rejects and '""hi""' in rejects


def test_event_types_are_stored_as_a_one_byte_code_and_read_back_as_text() -> None:
    """The events table keeps a type as a code of the playbook's types (issue #17: text
    took ~13 bytes an event of memory); the view names it back, and a cell that is none of
    them stays NULL (its row is rejected). Past 255 types the text is stored as it is."""
    import duckdb

    from engine.sql.records import _type_code

    con = duckdb.connect()
    con.execute("CREATE TABLE raw AS SELECT * FROM "
                "(VALUES ('page_view'), ('inquiry'), ('bogus'), (NULL)) t(v)")
    stored, decoded = _type_code("v", ["page_view", "inquiry", "email_open"])
    con.execute(f"CREATE TABLE rows AS SELECT v, {stored} FROM raw")
    assert dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'rows'").fetchall())["__type"] == "UTINYINT"
    back = con.execute(f"SELECT v, type FROM (SELECT *{decoded} FROM rows) ORDER BY v NULLS LAST").fetchall()
    assert back == [("bogus", None), ("inquiry", "inquiry"), ("page_view", "page_view"), (None, None)]

    many = [f"t{i:03}" for i in range(256)]
    assert _type_code("v", many) == ("v AS type", "")


def test_a_clean_export_is_evaluated_without_importing_pyarrow(tmp_path: Path) -> None:
    """The default backend reads, converts and writes a CSV export inside DuckDB; pyarrow
    (with numpy, 0.15 s of every run's start-up) is imported only for what needs it — a
    file engine.io must read, a cell Python must convert, a non-CSV output. Nor is the
    ``duckdb`` package around DuckDB's C extension, where that is a module of its own
    (engine.sql.opening.driver)."""
    import importlib.util
    import subprocess
    import sys

    leads, events = make_rows(30)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    script = ("import sys\nfrom engine.cli import main\n"
              f"code = main(['evaluate', {str(BENCH_PLAYBOOK)!r}, '--mapping', 'canonical', '--leads', "
              f"{str(lp)!r}, '--events', {str(ep)!r}, '--as-of', {AS_OF.isoformat()!r}, '--out', "
              f"{str(tmp_path / 'd.csv')!r}])\n"
              "print(code, sorted(m for m in ('duckdb', 'numpy', 'pyarrow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          check=True)
    package = [] if importlib.util.find_spec("_duckdb") is not None else ["duckdb"]
    assert done.stdout.strip().splitlines()[-1] == f"0 {package}", done.stdout + done.stderr


@pytest.mark.parametrize("playbook", ["bench", "enterprise", "row_field"])
def test_the_query_carries_each_leads_row_unless_a_lead_field_is_so_named(
        bench: CompiledPlaybook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, playbook: str) -> None:
    """The decisions query reads each lead's ``__row`` from ``leads`` and carries it through
    its layers, so the decisions table needs no join back to the decided leads (issue #17);
    the account layers of enterprise.yaml carry it too. A playbook with a lead field named
    ``__row`` keeps the join. Python's files either way, in the file's order."""
    cp = bench
    if playbook == "enterprise":
        cp = _cp(Path(__file__).resolve().parents[1] / "playbooks" / "enterprise.yaml")
    elif playbook == "row_field":
        text = BENCH_PLAYBOOK.read_text(encoding="utf-8").replace("    email: string\n",
                                                                  "    email: string\n    __row: string\n", 1)
        (tmp_path / "pb.yaml").write_text(text, encoding="utf-8")
        cp = _cp(tmp_path / "pb.yaml")
        assert "__row" in cp.playbook.lead.fields
    calls = record_tables(monkeypatch)
    leads, events = make_rows(120)
    leads = leads[60:] + leads[:60]  # not in id order: the file's order is the rows'
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    files = both(cp, tmp_path / "folded", lp, ep)
    from engine.sql import streamed

    monkeypatch.setattr(streamed, "foldable", lambda *a: False)  # the general path's query,
    monkeypatch.setenv("ENGINE_CACHE", "off")  # printed anew: the kept statements would fold
    assert both(cp, tmp_path / "general", lp, ep) == files
    assert [k["has_row"] for _, k in calls] == [playbook != "row_field"] * 2
    assert ("per_lead_stream" in calls[0][0]) == (playbook != "enterprise")  # its accounts do not fold
    assert "per_lead_stream" not in calls[1][0]
    ids = [line.split(",")[0] for line in files["d.csv"].decode().splitlines()[1:]]
    assert ids == [row[0] for row in leads]


#: Lead cells SQL converts exactly but not the plain way (padded, thousands, another time
#: shape), by column of LEAD_COLUMNS. (A cell only Python converts, a padded number, sends
#: the file through the copied scan, which has no plain rows.)
LEADS_NOT_PLAIN = {
    0: [" {}", "{}\u3000"],
    3: [" software", "finance\t"],
    4: ["1,000", "12,345.5"],
    8: ["2026-01-01T09:00:00+09:00", "2026-01-02 08:00:00", "2026-01-03T10:20:30-05:00"],
}
#: Cells of the plain form (unless a null marker): the careful path is not needed for them.
LEADS_PLAIN = {4: ["", "5e2", "0.5", "-3", "0500"], 8: [""], 5: ["", "Head of IT"]}


@pytest.mark.parametrize("markers", [[""], ["", "N/A", "-3"]])
def test_plain_lead_rows_skip_the_careful_conversions_and_the_rest_take_them(
        bench: CompiledPlaybook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, markers: list[str]) -> None:
    """Most leads' cells need no strip, no look-up and no other time shape: such rows take
    their values straight from their cells (issue #17); a padded id or field, a grouped or
    padded number, an offset or naive time, a null marker (``N/A``, or ``-3`` where it is
    one) takes the careful conversion, in the same statement. Every value is Python's."""
    from engine.sql import batch

    counts: list[tuple[int, int]] = []
    lead_rows = batch.lead_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = lead_rows(*args, **kwargs)
        con = args[0].con
        counts.append(con.execute("SELECT count(*) FILTER (WHERE __plain), count(*) "
                                  "FROM lead_rows__rows").fetchall()[0])
        return result

    monkeypatch.setattr(batch, "lead_rows", counted)
    rng = random.Random(len(markers))
    leads, events = make_rows(200)
    if markers != [""]:  # short text past ASCII might be a marker's other case: Python's look-up
        for row in leads:
            row[5] = rng.choice(["Director", "Manager", "Engineer", ""])
    careful = 0
    for row in leads[1:]:  # the first keeps its id: padded ids must not all be repeats
        draw = rng.random()
        if draw < 0.2:
            vary(row, LEADS_NOT_PLAIN, rng)
            careful += 1
        elif draw < 0.4:
            cell = vary(row, LEADS_PLAIN, rng)
            careful += cell in markers and cell != ""
        elif draw < 0.45:
            row[2] = "N/A"
            careful += "N/A" in markers
    canonical = load_mapping("canonical")
    mapping = canonical.model_copy(update={"null_values": markers})
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    both(bench, tmp_path, lp, ep, mapping=mapping)
    [(plain, total)] = counts
    assert total == len(leads) and careful > 30
    assert plain == total - careful


def test_a_clean_leads_file_takes_the_plain_values_alone(bench: CompiledPlaybook, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row of a clean export is plain: its table comes from the plain values alone,
    without the careful conversions' SQL (issue #17), and is the table the careful
    statement makes, column for column, type for type, row for row. One row that is not
    plain sends the file through the careful statement."""
    from engine.sql import batch
    from engine.sql.cells import Cells

    tables: list[tuple[list[Any], list[Any]]] = []
    statements: list[bool] = []
    lead_rows = batch.lead_rows

    def kept(*args: Any, **kwargs: Any) -> Any:
        result = lead_rows(*args, **kwargs)
        con = args[0].con
        tables.append((con.execute("DESCRIBE lead_rows__rows").fetchall(),
                       con.execute("SELECT * FROM lead_rows__rows ORDER BY rowid").fetchall()))
        return result

    def logged(self: Cells, *args: Any, **kwargs: Any) -> Any:
        statements.append(plain_only(self, *args, **kwargs))
        return statements[-1]

    plain_only = Cells._plain_only
    monkeypatch.setattr(batch, "lead_rows", kept)
    monkeypatch.setattr(Cells, "_plain_only", logged)
    rng = random.Random(5)
    leads, events = make_rows(150)
    for row in leads:
        if rng.random() < 0.4:
            vary(row, LEADS_PLAIN, rng)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    clean = both(bench, tmp_path / "clean", lp, ep)
    monkeypatch.setattr(Cells, "_plain_only", lambda *args: False)  # the careful statement, always
    assert both(bench, tmp_path / "careful", lp, ep) == clean
    (plain_schema, plain_rows), (careful_schema, careful_rows) = tables
    assert plain_schema == careful_schema
    assert plain_rows == careful_rows and all(row[-1] is True for row in plain_rows)
    tables.clear()
    vary(leads[7], LEADS_NOT_PLAIN, rng)
    monkeypatch.setattr(Cells, "_plain_only", logged)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    both(bench, tmp_path / "dirty", lp, ep)
    [(_, dirty_rows)] = tables
    assert [row[-1] for row in dirty_rows].count(False) == 1
    assert statements == [True, False]
