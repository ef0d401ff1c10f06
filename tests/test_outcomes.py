"""Outcomes: the mapping section, the reader, and the checks that keep them out of rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.cli import main
from engine.io import InputError, load_mapping, parse_mapping
from engine.measure.outcomes import Outcome, read_outcomes

from .conftest import PLAYBOOKS

LEADS_MAPPING = """
leads:
  id: id
  fields: {title: title}
outcomes:
  converted: Won
  won_at: Won At
  amount: Amount
"""

FILE_MAPPING = """
leads: {id: id}
outcomes:
  source: file
  lead_id: lead
  converted: {column: Stage, values: [closedwon]}
  won_at: Closed
  amount: Amount
  lost_reason: Reason
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_outcomes_from_the_leads_file(tmp_path: Path) -> None:
    leads = write(tmp_path / "leads.csv", "id,title,Won,Won At,Amount\n"
                  "a,CEO,yes,2024-02-01,100\nb,CTO,no,,\nc,VP,maybe,,\nd,VP,1,2024-03-01T10:00,x\n")
    found = read_outcomes(parse_mapping(LEADS_MAPPING), leads)
    assert found.get("a") == Outcome("a", True, won_at=datetime(2024, 2, 1, tzinfo=UTC), amount=100.0)
    assert found.get("b") == Outcome("b", False)
    assert found.get("zz") is None  # a lead with no outcome row is unknown, not lost
    assert (found.rows_read, found.rejected, found.dated) == (4, 2, True)
    assert [(r.row, r.column) for r in found.rejects] == [(4, "Won"), (5, "Amount")]
    assert "maybe" in found.rejects[0].reason


def test_outcomes_from_a_separate_file_merge_rows_per_lead(tmp_path: Path) -> None:
    deals = write(tmp_path / "deals.csv", "lead,Stage,Closed,Amount,Reason\n"
                  "a,closedlost,2024-01-05,50,price\n"
                  "a,closedwon,2024-03-01,200,\n"
                  "a,ClosedWon,2024-02-01,300,\n"
                  "b,closedlost,2024-01-01,10,timing\n")
    found = read_outcomes(parse_mapping(FILE_MAPPING), tmp_path / "unused.csv", deals)
    a = found.get("a")
    assert a is not None and a.converted and a.won_at == datetime(2024, 1, 5, tzinfo=UTC)
    assert a.amount == 500.0  # the converted rows' amounts; the lost deal's 50 is not revenue
    assert found.get("b") == Outcome("b", False, won_at=datetime(2024, 1, 1, tzinfo=UTC), amount=10.0,
                                     lost_reason="timing")
    assert found.get("never-dealt") == Outcome("never-dealt", False)  # no row: did not convert


def test_converted_within_a_window() -> None:
    won = Outcome("a", True, won_at=datetime(2024, 3, 1, tzinfo=UTC))
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    assert won.converted_within(start, end) is True
    assert won.converted_within(start, datetime(2024, 2, 1, tzinfo=UTC)) is False  # after the horizon
    assert won.converted_within(datetime(2024, 3, 1, tzinfo=UTC), None) is None  # known at decision time
    assert Outcome("b", True).converted_within(start, end) is True  # undated: only the flag is known
    assert Outcome("c", False).converted_within(start, end) is False


def test_reader_errors_name_the_problem(tmp_path: Path) -> None:
    leads = write(tmp_path / "leads.csv", "id,title\na,CEO\n")
    with pytest.raises(InputError, match=r"outcome column\(s\) not in the file: 'Won' \(converted\)"):
        read_outcomes(parse_mapping(LEADS_MAPPING), leads)
    with pytest.raises(InputError, match="give it with --outcomes"):
        read_outcomes(parse_mapping(FILE_MAPPING), leads)
    with pytest.raises(InputError, match="no outcomes section"):
        read_outcomes(load_mapping("marketo"), leads)
    with pytest.raises(InputError, match="--outcomes is not used"):
        read_outcomes(parse_mapping(LEADS_MAPPING), leads, leads)


def test_mapping_refuses_an_outcome_column_as_a_lead_field() -> None:
    text = LEADS_MAPPING.replace("fields: {title: title}", "fields: {title: title, won: Won}")
    with pytest.raises(InputError, match="column 'Won' is an outcome"):
        parse_mapping(text)
    with pytest.raises(InputError, match="need a 'converted' column"):
        parse_mapping("leads: {id: id}\noutcomes: {won_at: W}\n")
    with pytest.raises(InputError, match="need its 'lead_id' column"):
        parse_mapping("leads: {id: id}\noutcomes: {source: file}\n")


@pytest.mark.parametrize("preset", ["leads-x-education", "salesforce", "hubspot"])
def test_presets_map_outcomes_never_as_lead_fields(preset: str) -> None:
    mapping = load_mapping(preset)
    assert mapping.outcomes is not None
    outcome_columns = set(mapping.outcomes.columns().values())
    fields = {name: (s if isinstance(s, str) else s.column) for name, s in mapping.leads.fields.items()}
    assert not outcome_columns & set(fields.values())
    assert "converted" not in fields and "lifecycle_stage" not in fields


def _playbook_with_field(tmp_path: Path, name: str, rule: str) -> Path:
    text = (PLAYBOOKS / "x-education.yaml").read_text(encoding="utf-8")
    text = text.replace("    lead_number: string\n", f"    lead_number: string\n    {name}\n", 1)
    text = text.replace("  - {id: do-not-contact,", f"  - {rule}\n  - {{id: do-not-contact,", 1)
    path = tmp_path / "x.yaml"
    path.write_text(text.replace("../schemas/", "schemas/"), encoding="utf-8")
    return path


def test_validate_with_mapping_refuses_a_readable_outcome(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _playbook_with_field(tmp_path, "converted: bool", "{id: won, when: lead.converted == True}")
    assert main(["validate", str(path)]) == 0  # alone, nothing says `converted` is an outcome
    capsys.readouterr()
    assert main(["validate", "--mapping", "leads-x-education", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error[E-OUTCOME-READABLE] lead field `converted` is an outcome" in out
    line = path.read_text(encoding="utf-8").splitlines().index("    converted: bool") + 1
    assert f"x.yaml:{line}:5:" in out  # at the field's declaration


def test_validate_with_mapping_warns_on_after_contact_columns(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rule = "{id: student, when: 'lead.tags == \"Already a student\"'}"
    path = _playbook_with_field(tmp_path, "tags: string", rule)
    assert main(["validate", "--mapping", "leads-x-education", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning[W-AFTER-CONTACT] exclusion student reads `tags` (Tags)" in out
    assert main(["validate", "--strict", "--mapping", "leads-x-education", str(path)]) == 1
    capsys.readouterr()
    shipped = str(PLAYBOOKS / "x-education.yaml")
    assert main(["validate", "--strict", "--mapping", "leads-x-education", shipped]) == 0
