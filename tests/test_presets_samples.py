"""The vendor presets over real exports (tests/samples/<vendor>/, see each PROVENANCE.md):
through the readers, and through `engine evaluate` on both backends (identical files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.cli import main
from engine.io.errors import InputError, Reject
from engine.io.mapping import load_mapping
from engine.io.records import LeadRecord, read_events, read_leads
from engine.measure.outcomes import read_outcomes

SAMPLES = Path(__file__).resolve().parent / "samples"


def _leads(vendor: str, name: str) -> tuple[dict[str, LeadRecord], list[Reject]]:
    rejects: list[Reject] = []
    records = read_leads(SAMPLES / vendor / name, load_mapping(vendor), on_reject=rejects.append)
    return {record.lead_id: record for record in records}, rejects


def _evaluate(tmp_path: Path, vendor: str, leads: str, as_of: str,
              capsys: pytest.CaptureFixture[str]) -> dict[str, bytes]:
    """Both backends' files (names → bytes), after checking they are identical."""
    written = {}
    for backend in ("duckdb", "python"):
        out = tmp_path / backend / "decisions.csv"
        code = main(["evaluate", str(SAMPLES / vendor / "playbook.yaml"), "--mapping", vendor,
                     "--leads", str(SAMPLES / vendor / leads), "--as-of", as_of,
                     "--out", str(out), "--backend", backend])
        assert code == 0, capsys.readouterr().err
        written[backend] = {p.name: p.read_bytes() for p in sorted(out.parent.iterdir())}
    assert written["duckdb"] == written["python"]
    return written["python"]


def test_salesforce_data_export_leads() -> None:
    leads, rejects = _leads("salesforce", "Lead.csv")
    assert rejects == []
    assert list(leads) == ["00Q8a00001ufW0AEAU", "00Q8a00001uiEuOEAU", "00Q8a00001v5CInEAM"]
    warm = leads["00Q8a00001uiEuOEAU"].fields
    # The Data Export writes booleans as "0"/"1" and instants as "YYYY-MM-DD HH:MM:SS" in GMT.
    assert warm["do_not_email"] is False and warm["do_not_call"] is False
    # IsConverted is the outcome (issue #15): measured by backtest, never a lead field.
    assert "converted" not in warm
    outcome = read_outcomes(load_mapping("salesforce"), SAMPLES / "salesforce" / "Lead.csv")
    converted = outcome.get("00Q8a00001ufW0AEAU")
    assert converted is not None and converted.converted is True
    assert warm["created_at"] == datetime(2023, 1, 9, 18, 59, 46, tzinfo=UTC)
    assert warm["rating"] == "Warm" and warm["lead_source"] == "Redes"
    # Empty cells are missing values, not empty strings or zeros.
    assert warm["employees"] is None and warm["annual_revenue"] is None and warm["website"] is None


def test_salesforce_data_export_tasks_lack_task_subtype() -> None:
    # The weekly Data Export's Task.csv has no TaskSubtype column (Data Loader and the API
    # have it): a clear error naming the column, never a guess (docs/presets.md).
    with pytest.raises(InputError) as caught:
        list(read_events(SAMPLES / "salesforce" / "Task.csv", load_mapping("salesforce"),
                         on_reject=lambda _: None))
    assert caught.value.column == "TaskSubtype"
    assert "'WhoId'" in str(caught.value)


def test_salesforce_evaluate_both_backends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _evaluate(tmp_path, "salesforce", "Lead.csv", "2023-07-01", capsys)
    rows = files["decisions.csv"].decode().splitlines()
    assert len(rows) == 4
    # fit: "Warm" rating (20) + HasOptedOutOfEmail "0" read as False (10)
    assert rows[2].startswith("00Q8a00001uiEuOEAU,2023-07-01T00:00:00+00:00,,,false,false,30.0,")
    assert rows[1].startswith("00Q8a00001ufW0AEAU,2023-07-01T00:00:00+00:00,,,false,false,10.0,")


def test_hubspot_contacts_export() -> None:
    leads, rejects = _leads("hubspot", "all-contacts.csv")
    assert rejects == []
    first = leads["440555398885"].fields
    # Today's export names the source "Original Traffic Source" ("Original Source" before).
    assert first["lead_source"] == "Organic Social"
    assert "lifecycle_stage" not in first  # the outcome (customer), never a lead field
    # "YYYY-MM-DD HH:MM", no seconds, no zone (the preset's timezone applies).
    assert first["created_at"] == datetime(2026, 2, 25, 22, 36, tzinfo=UTC)
    # Counts are written as floats ("3.0").
    assert leads["440578991830"].fields["page_views"] == 3.0
    assert first["form_submissions"] == 1.0
    assert first["do_not_email"] is None and first["email"] == "test.one@example.com"


def test_hubspot_repeated_column_names(tmp_path: Path) -> None:
    # The export names "Billing Contact" twice: the file is read (test above), but a
    # mapping that reads that column is told why it cannot.
    mapping = tmp_path / "m.yaml"
    mapping.write_text("leads:\n  id: Record ID\n  fields:\n    billing: Billing Contact\n",
                       encoding="utf-8")
    with pytest.raises(InputError, match="more than once") as caught:
        list(read_leads(SAMPLES / "hubspot" / "all-contacts.csv", load_mapping(mapping),
                        on_reject=lambda _: None))
    assert caught.value.column == "Billing Contact"


def test_hubspot_evaluate_both_backends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _evaluate(tmp_path, "hubspot", "all-contacts.csv", "2026-03-01", capsys)
    rows = files["decisions.csv"].decode().splitlines()[1:]
    assert [row.split(",")[9] for row in rows] == ["social", "social"]  # lead source read
    assert [row.split(",")[6] for row in rows] == ["0.0", "20.0"]      # page views read


def test_marketo_bulk_extract_is_not_the_ui_export() -> None:
    # The only real Marketo export found is a Bulk Extract (API names, "null" for empty,
    # numeric activity type ids); the preset reads the UI export: a clear error.
    with pytest.raises(InputError) as caught:
        list(read_events(SAMPLES / "marketo" / "activity_extract.csv", load_mapping("marketo"),
                         on_reject=lambda _: None))
    assert caught.value.column == "Lead ID"
    assert "did you mean 'leadId'" in str(caught.value)
