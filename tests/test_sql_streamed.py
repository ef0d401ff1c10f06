"""The one-pass path of the DuckDB batch run (engine.sql.streamed, issue #17).

A clean CSV export is folded per lead straight from DuckDB's reader; anything the pass
cannot answer exactly (a rejected row, an orphan event, a cell only Python converts)
sends the run down the general path. Either way the files are the Python path's, byte
for byte (``both``), so these tests also say which path ran.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from engine.batch import BatchRequest
from engine.compile import CompiledPlaybook
from engine.io import load_mapping
from engine.sql import streamed
from engine.sql.batch import compile_for
from engine.sql.records import Stream
from engine.sql.statements import Statements, query_tree
from tests.export_factory import BENCH_PLAYBOOK, EVENT_COLUMNS, LEAD_COLUMNS, make_rows, vary, write_csv
from tests.test_sql_batch import AS_OF, _cp, both, record_tables


@pytest.fixture(scope="module")
def bench() -> CompiledPlaybook:
    return _cp(BENCH_PLAYBOOK)


@pytest.fixture
def folds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each DuckDB run's one pass ended: "clean", "rejects" (its decisions kept, the
    general path's stages 2-3 for the rejects) or "given up" (the general path alone)."""
    seen: list[str] = []
    fold = streamed.fold

    def recorded(con: Any, statement: str, events: str, checked: str | None = None) -> Any:
        result = fold(con, statement, events, checked)
        seen.append("given up" if result is None else "clean" if result.clean else "rejects")
        return result

    monkeypatch.setattr(streamed, "fold", recorded)
    return seen


def _files(tmp_path: Path, leads: list[list[str]], events: list[list[str]]) -> tuple[Path, Path]:
    return (write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads),
            write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events))


def test_a_clean_export_is_folded_in_one_pass(bench: CompiledPlaybook, tmp_path: Path,
                                             folds: list[str]) -> None:
    """The reference playbook over 300 leads: folded, and Python's files and summary."""
    leads, events = make_rows(300)
    files = both(bench, tmp_path, *_files(tmp_path, leads, events))
    assert folds == ["clean"]
    assert files["d.csv"].count(b"\n") == 301
    assert b",field_sales," in files["d.csv"]


@pytest.mark.parametrize("sla", ["", ", sla: 4h"])
def test_due_times_are_read_back_from_per_lead_lists_only_when_an_sla_can_set_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sla: str) -> None:
    """A due time is the handoff's anchor plus an SLA. The reference playbook has no SLA:
    every due is empty, so the pass keeps no per-lead list of due-time events and the query
    computes no anchor (issue #17). Given one (the inquiry handoff's, whose anchor is the
    start of the current run of inquiries), the lists come back, and the due times are
    Python's to the byte."""
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    handoff = "priority: 100 + fit}"
    assert text.count(handoff) == 1
    playbook = tmp_path / "bench.yaml"
    playbook.write_text(text.replace(handoff, f"priority: 100 + fit{sla}}}"), encoding="utf-8")
    trees: list[str] = []
    bind = Statements.bind

    def recorded(self: Statements, as_of: Any) -> Statements:
        bound = bind(self, as_of)
        assert bound.folded is not None
        trees.append(bound.folded.source)
        return bound

    monkeypatch.setattr(Statements, "bind", recorded)
    leads, events = make_rows(300)
    files = both(_cp(playbook), tmp_path, *_files(tmp_path, leads, events))
    [tree] = trees
    dues = [row["due"] for row in csv.DictReader(io.StringIO(files["d.csv"].decode()))]
    assert len(dues) == 300
    if sla:
        assert "unnest(__due)" in tree.lower() and "due_anchor" in tree
        assert sum(1 for d in dues if d) >= 3  # the inquiries handed off, each with its due time
    else:
        assert "__due" not in tree and "due_anchor" not in tree and "last_at" not in tree
        assert not any(dues)


@pytest.mark.parametrize("column", [0, 1, 2, 3])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_nul_cell_is_read_as_text_by_the_general_path(bench: CompiledPlaybook, tmp_path: Path,
                                                        folds: list[str], column: int, quoted: bool) -> None:
    """The pass reads empty cells as empty text from DuckDB's reader itself (no COALESCE of
    every cell, issue #17), which leaves a cell that is one unquoted NUL character NULL. Such
    a row is bad in the pass, so the general path reads the file and decides: an event of
    content "\x00" counts, as in Python (a NUL lead id, type or time is rejected there). A
    quoted NUL is text to the pass too."""
    leads, events = make_rows(40)
    events[7][column] = "\x00"
    leads_file, events_file = _files(tmp_path, leads, events)
    if quoted:
        text = events_file.read_text(encoding="utf-8")
        text = text.replace(",\x00", ',"\x00"').replace("\n\x00,", '\n"\x00",')
        assert '"\x00"' in text
        events_file.write_text(text, encoding="utf-8")
    files = both(bench, tmp_path, leads_file, events_file)
    assert folds == (["clean"] if quoted and column == 3 else ["rejects"])
    rejects = files.get("d.rejects.csv", b"")
    assert (b"\x00" in rejects) == (column != 3)


@pytest.mark.parametrize("spoil", ["unknown type", "bad time", "orphan", "odd cell", "missing lead id"])
def test_rejected_orphan_and_odd_events_take_the_general_path(
        bench: CompiledPlaybook, tmp_path: Path, folds: list[str], spoil: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The rejects come from the general path's stages 2-3; the decisions from the pass,
    unless a row it left out for an odd cell is usable after all."""
    calls = record_tables(monkeypatch)
    leads, events = make_rows(80)
    if spoil == "unknown type":
        events[10][2] = "no-such-type"
    elif spoil == "bad time":
        events[10][1] = "yesterday"
    elif spoil == "orphan":
        events[10][0] = "L99999"
    elif spoil == "odd cell":  # ISO 8601's basic form: only Python's converter reads it
        events[10][1] = events[10][1].replace("-", "").replace(":", "")
    else:
        events[10][0] = " "
    files = both(bench, tmp_path, *_files(tmp_path, leads, events))
    assert folds == ["rejects"]
    # the pass's decisions stand unless the odd cell made a usable row
    assert ("per_lead_stream" in calls[-1][0]) == (spoil != "odd cell")
    rejects = files["d.rejects.csv"].decode().splitlines()
    assert len(rejects) == (1 if spoil == "odd cell" else 2)  # the header, and the row


def test_rejected_leads_without_events_are_folded_with_their_rejects_in_order(
        bench: CompiledPlaybook, tmp_path: Path, folds: list[str]) -> None:
    """Rejected and repeated leads' rows do not stop the fold when no event is orphaned:
    the rejects file is still Python's (the leads file's rows, in order)."""
    leads, events = make_rows(60)
    without_events = sorted({row[0] for row in leads} - {row[0] for row in events})
    assert len(without_events) >= 2
    index = {row[0]: i for i, row in enumerate(leads)}
    leads[index[without_events[0]]][4] = "lots"
    leads[index[without_events[1]]][8] = "yesterday"
    leads.insert(20, list(leads[3]))  # a repeated id: its events belong to the first row
    files = both(bench, tmp_path, *_files(tmp_path, leads, events))
    assert folds == ["clean"]
    rows = [line.split(",")[1] for line in files["d.rejects.csv"].decode().splitlines()[1:]]
    assert len(rows) == 3 and rows == sorted(rows, key=int)


def _request(tmp_path: Path, **options: Any) -> BatchRequest:
    return BatchRequest(leads=tmp_path / "leads.csv", events=tmp_path / "events.csv", out=tmp_path / "d.csv",
                        as_of=AS_OF, mapping=options.pop("mapping", load_mapping("canonical")), **options)


def test_only_exports_without_ids_order_or_other_formats_are_foldable(
        bench: CompiledPlaybook, tmp_path: Path) -> None:
    request = _request(tmp_path)
    tree = query_tree(compile_for(bench, request, "duckdb"), request)
    assert streamed.foldable(tree, request)
    assert not streamed.foldable(tree, _request(tmp_path, events_sorted=True))
    canonical = load_mapping("canonical")
    assert canonical.events is not None
    with_ids = canonical.model_copy(update={"events": canonical.events.model_copy(update={"id": "event_id"})})
    assert not streamed.foldable(tree, _request(tmp_path, mapping=with_ids))
    jsonl = BatchRequest(**{**request.__dict__, "events": tmp_path / "events.jsonl"})
    assert not streamed.foldable(tree, jsonl)


@pytest.fixture
def plain_rows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(plain rows, all rows) of each folded events file: the rows that took
    ``Cells.stream``'s quick values rather than the careful conversions (each row testing
    its lead id's end itself: ``Stream.checked``)."""
    seen: list[tuple[int, int]] = []
    fold = streamed.fold

    select = streamed.events_select
    streams: dict[bool, str] = {}

    def kept(stream: Stream, fields: dict[str, str], checked: bool = False) -> str:
        streams[checked] = stream.checked if checked else stream.select
        return select(stream, fields, checked)

    def counted(con: Any, statement: str, events: str, checked: str | None = None) -> Any:
        query = f"SELECT count(*) FILTER (WHERE __plain), count(*) FROM ({streams[True]})"
        plain, total = con.execute(query).fetchall()[0]
        seen.append((int(plain), int(total)))
        return fold(con, statement, events, checked)

    monkeypatch.setattr(streamed, "events_select", kept)
    monkeypatch.setattr(streamed, "fold", counted)
    return seen


#: Cells every one of which SQL converts exactly (no look-up), none of them plain: padded
#: (ASCII and Unicode spaces) and other timestamp shapes. A padded type is odd (Python's).
USABLE_NOT_PLAIN = {
    0: [" {}", "{}\t", "\u3000{}"],
    1: ["2026-10-20T09:00:00+09:00", "2026-10-21T01:02:03.500Z", "2026-10-22 08:00:00"],
    3: [" pricing", "company-profile\u3000", " ", "\tcase-study-7 "],
}
#: Content cells plain unless the mapping lists them as null markers.
MARKER_CELLS = ["NULL", "n/a"]


@pytest.mark.parametrize("markers", [[""], ["", "NULL", "n/a"], ["", "N/A"]])
def test_plain_rows_skip_the_careful_conversions_and_the_rest_take_them(
        bench: CompiledPlaybook, tmp_path: Path, folds: list[str], plain_rows: list[tuple[int, int]],
        markers: list[str]) -> None:
    """A row whose cells need a strip or another timestamp shape, or holds a null marker,
    is converted the careful way, in the same pass as the plain rows: still folded clean,
    and every value Python's (a padded ' pricing' weighs 5 like 'pricing'; a padded id is
    its lead's; 'NULL' is no content only where it is a marker)."""
    import random

    rng = random.Random(len(markers))
    leads, events = make_rows(120)
    careful = 0
    for row in events:
        draw = rng.random()
        if draw < 0.15:
            vary(row, USABLE_NOT_PLAIN, rng)
            careful += 1
        elif draw < 0.2:
            row[3] = rng.choice(MARKER_CELLS)
            careful += row[3].casefold() in {m.casefold() for m in markers}
    canonical = load_mapping("canonical")
    mapping = canonical.model_copy(update={"null_values": markers})
    both(bench, tmp_path, *_files(tmp_path, leads, events), mapping=mapping)
    assert folds == ["clean"]
    plain, total = plain_rows[0]
    assert total == len(events) and careful > 20
    assert plain == total - careful


@pytest.mark.parametrize("constant", ["inquiry", "content_download", "meeting"])
def test_one_constant_event_type_is_folded_by_its_code(bench: CompiledPlaybook, tmp_path: Path,
                                                       folds: list[str], monkeypatch: pytest.MonkeyPatch,
                                                       constant: str) -> None:
    """A mapping that gives every event one type (``type_constant``) has no type column to
    code: the pass codes the constant itself, so the statement's code comparisons still
    hold (issue #17). A constant the playbook does not know rejects every event, as in
    Python."""
    selects: list[str] = []
    select = streamed.events_select

    def kept(stream: Stream, fields: dict[str, str], checked: bool = False) -> str:
        selects.append(select(stream, fields, checked))
        return selects[-1]

    monkeypatch.setattr(streamed, "events_select", kept)
    canonical = load_mapping("canonical")
    assert canonical.events is not None
    one_type = canonical.model_copy(update={"events": canonical.events.model_copy(
        update={"type": None, "type_constant": constant})})
    leads, events = make_rows(200)
    files = both(bench, tmp_path, *_files(tmp_path, leads, events), mapping=one_type)
    assert files["d.csv"].count(b"\n") == 201
    assert folds == (["clean"] if constant != "meeting" else ["rejects"])
    assert len(selects) == 2 and all(" AS __type" in events_sql for events_sql in selects)


def test_type_comparisons_with_the_playbooks_names_become_code_comparisons() -> None:
    """``_by_code``: ``=``, ``IN`` and ``CASE type WHEN`` with names that have codes compare
    ``__type``; a name without one, another table's ``type`` and other uses keep the name;
    every SELECT of ``type`` also selects ``__type``."""
    import sqlglot

    query = sqlglot.parse_one(
        "WITH h AS (SELECT lead_id, type, seq FROM events) SELECT lead_id, "
        "COUNT(*) FILTER (WHERE type = 'inquiry') AS a, COUNT(*) FILTER (WHERE 'trial' = type) AS b, "
        "COUNT(*) FILTER (WHERE type IN ('inquiry', 'page_view')) AS c, "
        "COUNT(*) FILTER (WHERE type IN ('inquiry', 'unknown')) AS d, "
        "SUM(CASE type WHEN 'page_view' THEN 1 WHEN 'inquiry' THEN 40 ELSE 0 END) AS e, "
        "SUM(CASE type WHEN 'page_view' THEN 1 WHEN 'other' THEN 2 END) AS f, "
        "COUNT(*) FILTER (WHERE x.type = 'inquiry') AS g, list(type ORDER BY seq) AS h "
        "FROM h, x GROUP BY lead_id",
        dialect="duckdb")
    coded = streamed._by_code(query, {"inquiry": 0, "page_view": 1, "trial": 2}).sql(dialect="duckdb")
    assert "SELECT lead_id, type, __type, seq FROM events" in coded
    assert "WHERE __type = 0) AS a" in coded
    assert "WHERE __type = 2) AS b" in coded
    assert "WHERE __type IN (0, 1)) AS c" in coded
    assert "WHERE type IN ('inquiry', 'unknown')) AS d" in coded
    assert "CASE __type WHEN 1 THEN 1 WHEN 0 THEN 40 ELSE 0 END" in coded
    assert "CASE type WHEN 'page_view' THEN 1 WHEN 'other' THEN 2 END" in coded
    assert "x.type = 'inquiry'" in coded and "ARRAY_AGG(type ORDER BY seq)" in coded


@pytest.fixture
def makes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The counts of each ``per_lead_stream`` the runs to come make (``streamed._make``)."""
    seen: list[Any] = []
    make = streamed._make

    def recorded(con: Any, statement: str, events: str) -> Any:
        seen.append(make(con, statement, events))
        return seen[-1]

    monkeypatch.setattr(streamed, "_make", recorded)
    return seen


@pytest.mark.parametrize("end", [" ", "\t", "\u00a0", "\u3000"])
def test_a_lead_id_with_whitespace_at_its_end_is_found_among_the_grouped_ids(
        bench: CompiledPlaybook, tmp_path: Path, folds: list[str], plain_rows: list[tuple[int, int]],
        makes: list[Any], end: str) -> None:
    """The pass tests a lead id's first character per event, and its last only on the ids
    it grouped by (issue #17): such an id is never a decided lead's, so a group of its own
    that no lead has. When one is padded, the pass is made again from the stream that
    tests each row, and the decisions are Python's (the padded events are their lead's)."""
    leads, events = make_rows(150)
    padded = 0
    for index, row in enumerate(events):
        if index % 17 == 0:
            row[0] += end
            padded += 1
    both(bench, tmp_path, *_files(tmp_path, leads, events))
    assert folds == ["clean"]
    assert [m.padded if m else None for m in makes] == [len({r[0] for r in events if r[0].endswith(end)}), 0]
    plain, total = plain_rows[0]
    assert total == len(events) and plain == total - padded  # per-row test: a padded id is careful


def test_groups_no_lead_has_make_the_pass_once_when_their_ids_are_unpadded(
        bench: CompiledPlaybook, tmp_path: Path, folds: list[str], makes: list[Any]) -> None:
    """Events of leads the leads file lacks are groups no lead has, as a padded id is; the
    pass is made again only for padded ones (here none: one pass, the orphans counted)."""
    leads, events = make_rows(150)
    for index, row in enumerate(events):
        if index % 13 == 0:
            row[0] = f"unknown-{index}"
    both(bench, tmp_path, *_files(tmp_path, leads, events))
    assert len(makes) == 1 and makes[0] is not None and makes[0].orphans > 0 and makes[0].padded == 0
    assert folds == ["rejects"]
