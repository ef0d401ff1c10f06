"""The committed JSON Schema is generated from the model and validates the examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.load import load_file
from engine.schema_file import render_schema

from .conftest import PLAYBOOKS, ROOT

SCHEMA_FILE = ROOT / "schemas" / "playbook.schema.json"
EXAMPLES = sorted(PLAYBOOKS.glob("*.yaml"))


def test_committed_schema_is_not_stale() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "schemas/playbook.schema.json is stale: run `engine schema > schemas/playbook.schema.json`"
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate_with_plain_jsonschema(path: Path) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    doc, problems = load_file(path)
    assert doc is not None, problems
    jsonschema.Draft202012Validator(schema).validate(doc.data)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_carry_the_schema_line(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/playbook.schema.json"


def test_schema_rejects_unknown_keys_like_the_model() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    doc, _ = load_file(EXAMPLES[0])
    assert doc is not None
    data = dict(doc.data)
    data["stagez"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(data)
