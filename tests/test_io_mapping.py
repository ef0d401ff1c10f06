"""Mappings: presets load, the format refuses mistakes with messages a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.io import InputError, load_mapping, parse_mapping, preset_names
from engine.io.mapping import FieldSpec


def test_presets_load_by_name_and_by_path() -> None:
    names = preset_names()
    assert {"salesforce", "hubspot", "marketo"} <= set(names)
    for name in names:
        assert load_mapping(name).leads.id
    path = Path(__file__).parents[1] / "engine" / "presets" / "marketo.yaml"
    marketo = load_mapping(path)
    assert marketo.events is not None
    assert marketo.events.types["Visit Web Page"] == "page_view"
    salesforce = load_mapping("salesforce").leads.fields["employees"]
    assert salesforce == FieldSpec(column="NumberOfEmployees", type="number")
    assert load_mapping("hubspot").leads.id == "Record ID"


def test_unknown_preset_suggests_a_name() -> None:
    with pytest.raises(InputError, match="salesforce"):
        load_mapping("salesforc")


def test_unknown_key_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        parse_mapping("leads:\n  id: Id\n  feilds: {a: b}\n", "m.yaml")
    assert "leads.feilds" in str(caught.value)
    assert caught.value.file == "m.yaml"


def test_bad_type_and_missing_id() -> None:
    with pytest.raises(InputError, match=r"leads\.fields\.employees"):
        parse_mapping("leads:\n  id: Id\n  fields:\n    employees: {column: N, type: int}\n")
    with pytest.raises(InputError, match=r"leads\.id"):
        parse_mapping("leads:\n  fields: {}\n")


def test_events_need_exactly_one_type_source() -> None:
    text = "leads: {id: Id}\nevents: {lead_id: L, at: T}\n"
    with pytest.raises(InputError, match="exactly one"):
        parse_mapping(text)


def test_yaml_errors_have_a_line() -> None:
    with pytest.raises(InputError) as caught:
        parse_mapping("leads:\n  id: Id\n  id: Other\n", "dup.yaml")
    assert caught.value.line == 3


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_mapping(tmp_path / "none.yaml")
