"""engine.batch: an export → decisions, rejects, queues and a summary that adds up."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import batch
from engine.batch import DECISION_COLUMNS, BatchRequest, TooManyRejects, evaluate_export, parse_as_of
from engine.compile import CompiledPlaybook
from engine.io import load_mapping
from engine.validate import load_playbook
from tests.export_factory import (
    AS_OF,
    BENCH_PLAYBOOK,
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    make_export,
    make_rows,
    playbook_with_capacity,
    write_csv,
)


@pytest.fixture(scope="module")
def cp() -> CompiledPlaybook:
    compiled = load_playbook(BENCH_PLAYBOOK).compiled
    assert compiled is not None
    return compiled


def run(cp: CompiledPlaybook, leads: Path, events: Path | None, out: Path, **options: Any) -> batch.Summary:
    mapping = options.pop("mapping", load_mapping("canonical"))
    request = BatchRequest(leads=leads, events=events, out=out, as_of=AS_OF, mapping=mapping, **options)
    return evaluate_export(cp, request)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_decision_columns_are_to_row_keys(cp: CompiledPlaybook, tmp_path: Path) -> None:
    from engine.evaluate import decide

    assert tuple(decide(cp, {}, [], AS_OF).to_row()) == DECISION_COLUMNS


def test_one_row_per_lead_in_file_order_and_counts(cp: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 60)
    summary = run(cp, leads, events, tmp_path / "out" / "d.csv")
    rows = read_csv(tmp_path / "out" / "d.csv")
    assert [r["lead_id"] for r in rows] == [f"L{i:05d}" for i in range(1, 61)]
    data = summary.to_dict()
    assert data["leads"] == {"read": 60, "decided": 60, "rejected": 0}
    n_events = len(read_csv(events))
    assert data["events"] == {"read": n_events, "matched": n_events, "rejected": 0}
    assert list(data["stages"]) == ["lead", "nurture", "mql", "sql"]
    assert sum(data["stages"].values()) == 60
    assert sum(data["routes"].values()) == 60
    assert data["excluded"]["competitor"] == sum(r["excluded"] == "competitor" for r in rows) > 0
    for stage, count in data["stages"].items():
        assert count == sum(r["stage"] == stage for r in rows)
    # the rejects file is always written, header only when the input is clean
    assert (tmp_path / "out" / "d.rejects.csv").read_text() == "file,row,column,value,reason\n"


def test_bad_rows_are_rejected_and_counted(cp: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = make_rows(20)
    leads[3][4] = "lots"  # employees: not a number
    leads[5][0] = ""  # no lead id
    # events of the two rejected lead rows become orphans, rejected too
    orphaned = sum(e[0] in ("L00004", "L00006") for e in events)
    leads.append(list(leads[8]))  # duplicate id (out of order: the spill path)
    events.append(["L00002", "yesterday", "page_view", ""])  # bad timestamp
    events.append(["L00002", "2026-10-01T00:00:00Z", "tweet", ""])  # type the playbook lacks
    events.append(["L99999", "2026-10-01T00:00:00Z", "page_view", ""])  # orphan
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    summary = run(cp, lp, ep, tmp_path / "d.csv").to_dict()
    assert summary["leads"] == {"read": 21, "decided": 18, "rejected": 3}
    assert summary["events"]["rejected"] == 3 + orphaned
    assert summary["events"]["read"] == len(events)
    rejects = read_csv(tmp_path / "d.rejects.csv")
    assert len(rejects) == 6 + orphaned
    by_row = {(Path(r["file"]).name, int(r["row"])): r["reason"] for r in rejects}
    assert "not a number" in by_row[("leads.csv", 5)]
    assert "missing lead id" in by_row[("leads.csv", 7)]
    assert "appears earlier" in by_row[("leads.csv", 22)]
    assert "unknown event type 'tweet'" in by_row[("events.csv", len(events))]
    assert len(read_csv(tmp_path / "d.csv")) == 18


def test_an_evaluation_error_rejects_only_that_lead(cp: CompiledPlaybook, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    leads, events = make_export(tmp_path, 10)
    real = batch.decide

    def flaky(cp_: CompiledPlaybook, fields: Any, evs: Any, as_of: datetime, *, lead_id: str) -> Any:
        if lead_id == "L00004":
            raise TypeError("'<' not supported between instances of 'str' and 'int'")
        return real(cp_, fields, evs, as_of, lead_id=lead_id)

    monkeypatch.setattr(batch, "decide", flaky)
    summary = run(cp, leads, events, tmp_path / "d.csv")
    assert (summary.leads_read, summary.decided, summary.leads_rejected) == (10, 9, 1)
    [reject] = read_csv(tmp_path / "d.rejects.csv")
    assert reject["row"] == "5" and reject["value"] == "L00004"
    assert reject["reason"].startswith("evaluation failed: TypeError")


def test_max_errors_stops_with_no_output(cp: CompiledPlaybook, tmp_path: Path) -> None:
    leads, _ = make_rows(30)
    for i in (2, 4, 6):
        leads[i][4] = "many"
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = None  # no events file: only the three bad lead rows are rejected
    out = tmp_path / "o" / "d.csv"
    summary = run(cp, lp, ep, out, max_errors=3)  # exactly 3: allowed
    assert summary.leads_rejected == 3
    out.unlink()
    (tmp_path / "o" / "d.rejects.csv").unlink()
    with pytest.raises(TooManyRejects, match=r"more than 2 rejected.*\n.*leads.csv:4: column 'employees'"):
        run(cp, lp, ep, out, max_errors=2, queues=tmp_path / "o" / "q")
    assert sorted(p.name for p in (tmp_path / "o").rglob("*")) == ["q"]


def test_reruns_are_byte_identical(cp: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 40)
    for suffix in ("csv", "jsonl", "parquet"):
        run(cp, leads, events, tmp_path / f"a.{suffix}", queues=tmp_path / "qa")
        run(cp, leads, events, tmp_path / f"b.{suffix}", queues=tmp_path / "qb")
        assert (tmp_path / f"a.{suffix}").read_bytes() == (tmp_path / f"b.{suffix}").read_bytes()
    for queue in (tmp_path / "qa").iterdir():
        assert queue.read_bytes() == (tmp_path / "qb" / queue.name).read_bytes()


def _convert(source: Path, target: Path) -> Path:
    rows = read_csv(source)
    if target.suffix == ".jsonl":
        target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif target.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), target)
    return target


@pytest.mark.parametrize("kind", ["utf-8-sig", "cp932", "jsonl", "parquet"])
def test_every_input_format_gives_the_same_decisions(cp: CompiledPlaybook, tmp_path: Path, kind: str) -> None:
    leads, events = make_rows(40)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    run(cp, lp, ep, tmp_path / "reference.csv")
    if kind in ("utf-8-sig", "cp932"):
        lp2 = write_csv(tmp_path / f"leads-{kind}.csv", LEAD_COLUMNS, leads, encoding=kind)
        ep2 = write_csv(tmp_path / f"events-{kind}.csv", EVENT_COLUMNS, events, encoding=kind)
    else:
        lp2 = _convert(lp, tmp_path / f"leads.{kind}")
        ep2 = _convert(ep, tmp_path / f"events.{kind}")
    summary = run(cp, lp2, ep2, tmp_path / "other.csv")
    assert summary.leads_rejected == summary.events_rejected == 0
    assert (tmp_path / "other.csv").read_bytes() == (tmp_path / "reference.csv").read_bytes()


def test_parquet_output_types_do_not_depend_on_the_first_rows(cp: CompiledPlaybook, tmp_path: Path) -> None:
    leads, _ = make_rows(30)
    no_events = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, [])
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    run(cp, lp, no_events, tmp_path / "d.parquet")
    table = pq.read_table(tmp_path / "d.parquet")
    assert table.schema.field("priority").type == pa.float64()
    assert table.schema.field("surge").type == pa.bool_()
    assert table.num_rows == 30


def test_queues_cut_at_capacity_sorted_with_overflow(cp: CompiledPlaybook, tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 120)
    small = load_playbook(playbook_with_capacity(tmp_path, inside_sales=None, field_sales=3)).compiled
    assert small is not None
    summary = run(small, leads, events, tmp_path / "d.csv", queues=tmp_path / "q", overflow=True)
    decisions = read_csv(tmp_path / "d.csv")
    handed = [r for r in decisions if r["route"] == "field_sales"]
    queue = read_csv(tmp_path / "q" / "field_sales.csv")
    assert len(handed) > 3 and len(queue) == 3
    expected = sorted(handed, key=lambda r: (-float(r["priority"]), r["due"], r["lead_id"]))
    assert [r["lead_id"] for r in queue] == [r["lead_id"] for r in expected[:3]]
    assert [r["rank"] for r in queue] == ["1", "2", "3"]
    overflow = read_csv(tmp_path / "q" / "field_sales.overflow.csv")  # the rest, in the same order
    assert [r["lead_id"] for r in overflow] == [r["lead_id"] for r in expected[3:]]
    assert [int(r["rank"]) for r in overflow] == list(range(4, len(handed) + 1))
    assert not (tmp_path / "q" / "inside_sales.overflow.csv").exists()  # unlimited: never overflows
    teams = summary.to_dict()["handoffs"]
    assert teams["field_sales"] == {"handoffs": len(handed), "capacity": 3, "queued": 3,
                                    "overflow": len(handed) - 3, "carried_over": len(handed) - 3,
                                    "overflow_out": 0, "overflow_in": 0,
                                    "overdue": sum(r["overdue"] == "true" for r in handed), "accepted": 0}
    # each decision says where it stands: the queue's three queued, the rest carried over
    queued = {r["lead_id"] for r in queue}
    assert {(r["queue"], r["queue_team"]) for r in handed if r["lead_id"] in queued} == \
        {("queued", "field_sales")}
    assert {(r["queue"], r["queue_team"]) for r in handed if r["lead_id"] not in queued} == \
        {("carried_over", "field_sales")}
    assert {(r["queue"], r["queue_team"]) for r in decisions if r["route"] == "none"} == {("", "")}
    inside = [r for r in decisions if r["route"] == "inside_sales"]
    assert teams["inside_sales"]["capacity"] is None and teams["inside_sales"]["overflow"] == 0
    # unlimited: kept on disk, read back in the same order the heap would give
    in_order = sorted(inside, key=lambda r: (-float(r["priority"]), r["due"], r["lead_id"]))
    assert [r["lead_id"] for r in read_csv(tmp_path / "q" / "inside_sales.csv")] == \
        [r["lead_id"] for r in in_order]
    assert len(in_order) > 1
    # without --queues nothing is kept, and the summary counts the same
    counted = run(small, leads, events, tmp_path / "e.csv").to_dict()["handoffs"]
    assert counted == teams
    marketing = read_csv(tmp_path / "q" / "marketing.csv")  # no priority: by lead id
    assert [r["lead_id"] for r in marketing] == sorted(r["lead_id"] for r in marketing)


def test_naive_as_of_is_in_the_playbook_zone(cp: CompiledPlaybook) -> None:
    assert parse_as_of("2026-11-01", cp) == AS_OF
    assert parse_as_of("2026-11-01T09:00+09:00", cp) == AS_OF
    with pytest.raises(Exception, match="--as-of"):
        parse_as_of("first of november", cp)


XE_HEADER = ["Prospect ID", "Lead Number", "Lead Origin", "Lead Source", "Do Not Email", "Do Not Call",
             "Converted", "TotalVisits", "Total Time Spent on Website", "Page Views Per Visit",
             "Last Activity", "Country", "City", "Specialization", "What is your current occupation",
             "Tags", "Lead Quality", "Lead Profile", "Last Notable Activity", ""]


def _xe_row(pid: str, origin: str, dne: str, visits: str, seconds: str, activity: str, job: str,
            tags: str) -> list[str]:
    return [pid, "1", origin, "Google", dne, "No", "0", visits, seconds, "2", activity, "India",
            "Select", "Select", job, tags, "", "Select", activity, ""]


#: X Education rows: a form lead, an empty count, do-not-email, a tagged student, a bad count.
XE_ROWS = [
    _xe_row("a-1", "Lead Add Form", "No", "5", "1200", "Email Opened", "Working Professional", ""),
    _xe_row("a-2", "API", "No", "", "0", "Select", "Unemployed", ""),
    _xe_row("a-3", "API", "Yes", "3", "100", "Email Opened", "Unemployed", ""),
    _xe_row("a-4", "API", "No", "2", "50", "Email Opened", "Student", "Already a student"),
    _xe_row("a-5", "API", "No", "lots", "50", "Email Opened", "Student", ""),
]


def test_single_leads_file_with_aggregated_activity(tmp_path: Path) -> None:
    """X Education's layout: no event log; the preset makes events from aggregate columns."""
    lp = write_csv(tmp_path / "Leads.csv", XE_HEADER, XE_ROWS)
    cp = load_playbook(Path(BENCH_PLAYBOOK).parent / "x-education.yaml").compiled
    assert cp is not None
    summary = run(cp, lp, None, tmp_path / "d.csv", mapping=load_mapping("leads-x-education"))
    out = {r["lead_id"]: r for r in read_csv(tmp_path / "d.csv")}
    assert (summary.leads_read, summary.decided, summary.leads_rejected) == (5, 4, 1)
    # 5 page views; the email open (from Last Activity, written after contact) scores 0
    assert out["a-1"]["engagement"] == "5.0"
    assert (out["a-1"]["fit"], out["a-1"]["route"]) == ("55.0", "inside_sales")
    assert (out["a-2"]["stage"], out["a-2"]["route"]) == ("lead", "marketing")
    assert out["a-3"]["excluded"] == "do-not-contact"  # Do Not Email → unsubscribe event
    assert out["a-4"]["excluded"] == ""  # Tags "Already a student" is a note written after contact: not read
    [reject] = read_csv(tmp_path / "d.rejects.csv")
    assert reject["column"] == "TotalVisits" and reject["row"] == "6"


X_EDUCATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "leads-x-education" / "Leads.csv"


def test_score_ranks_every_decided_lead(tmp_path: Path) -> None:
    """score: the handoff priority, else fit + engagement; excluded leads far below both."""
    lp = write_csv(tmp_path / "Leads.csv", XE_HEADER, XE_ROWS)
    cp = load_playbook(Path(BENCH_PLAYBOOK).parent / "x-education.yaml").compiled
    assert cp is not None
    run(cp, lp, None, tmp_path / "d.csv", mapping=load_mapping("leads-x-education"))
    out = {r["lead_id"]: r for r in read_csv(tmp_path / "d.csv")}
    assert (out["a-1"]["priority"], out["a-1"]["score"]) == ("95.0", "95.0")  # 55 fit + 40 (capped) time
    assert (out["a-2"]["priority"], out["a-2"]["score"]) == ("", "5.0")  # nurtured: fit 5 + engagement 0
    assert out["a-3"]["excluded"] and out["a-3"]["score"] == "-999992.0"  # fit 5 + 3 page views − 10⁶
    assert float(out["a-3"]["score"]) < min(float(r["score"]) for r in out.values() if not r["excluded"])


@pytest.mark.skipif(not X_EDUCATION.exists(), reason="X Education's Leads.csv (not shipped: no licence) "
                    "is read from ../shared/data/leads-x-education/, absent here")
def test_x_education_export_routes_converters_to_sales(tmp_path: Path) -> None:
    cp = load_playbook(Path(BENCH_PLAYBOOK).parent / "x-education.yaml").compiled
    assert cp is not None
    summary = run(cp, X_EDUCATION, None, tmp_path / "d.csv", mapping=load_mapping("leads-x-education"),
                  queues=tmp_path / "q")
    assert (summary.leads_read, summary.decided, summary.leads_rejected) == (9240, 9240, 0)
    with open(X_EDUCATION, encoding="utf-8", newline="") as handle:
        converted = {r["Prospect ID"]: r["Converted"] == "1" for r in csv.DictReader(handle)}
    routed = [r["lead_id"] for r in read_csv(tmp_path / "d.csv") if r["route"] == "inside_sales"]
    lift = (sum(converted[i] for i in routed) / len(routed)) / (sum(converted.values()) / len(converted))
    assert lift > 1.5  # 1.86 when written; a change that loses the signal fails here
    assert len(read_csv(tmp_path / "q" / "inside_sales.csv")) == 800


@pytest.mark.parametrize("late", ["event", "lead"])
def test_a_merge_that_meets_unsorted_ids_starts_again_with_the_index(
        cp: CompiledPlaybook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: str) -> None:
    """No pre-scan: the merge join is assumed; ids found out of order far into the files
    (after decisions and rejects were made) restart the run on the on-disk index, and
    every file and count is then the index's, byte for byte."""
    leads, events = make_rows(300)
    leads[4][4] = "lots"  # a reject before the disorder
    events.insert(3, ["L00001", "yesterday", "page_view", ""])
    if late == "event":
        events.append(list(events[0]))  # lead 1's event again, at the very end
    else:
        leads.append(list(leads[2]))  # a repeated lead id, at the very end
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    strategies: list[bool | None] = []
    real = batch.iter_leads_with_events

    def spy(*args: Any, **kwargs: Any) -> Any:
        strategies.append(kwargs.get("events_sorted"))
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "iter_leads_with_events", spy)
    assumed = run(cp, lp, ep, tmp_path / "a" / "d.csv").to_dict()
    assert strategies == [True, False]  # merged, met the disorder, indexed
    told = run(cp, lp, ep, tmp_path / "b" / "d.csv", events_sorted=False).to_dict()
    for name in ("d.csv", "d.rejects.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for summary in (assumed, told):
        for key in ("output", "rejects"):
            summary.pop(key)
    assert assumed == told
    assert assumed["leads"]["read"] == len(leads) and assumed["events"]["read"] == len(events)
    strategies.clear()
    sorted_leads, sorted_events = make_export(tmp_path, 50)
    run(cp, sorted_leads, sorted_events, tmp_path / "c" / "d.csv")
    assert strategies == [True]  # sorted files: one pass, no restart
