"""The JSON Schema and the model accept the same playbooks (issue #13, item 13).

An editor checks a playbook with ``schemas/playbook.schema.json``, ``engine validate``
with the pydantic model; they once disagreed (``email_click: true`` was 1 point to the
engine and an error to the schema). For every document of the corpora — the broken
playbooks, the examples, the fixtures' playbooks — and for many documents made by
changing one node of them, schema-valid must equal "the model builds without an
E-SCHEMA diagnostic". E-TIMEZONE and E-DURATION are the two checks the schema cannot
state (see engine.model); they never count as schema errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.build import build
from engine.load import Document, load_file

from .conftest import ROOT

SCHEMA = jsonschema.Draft202012Validator(
    json.loads((ROOT / "schemas" / "playbook.schema.json").read_text(encoding="utf-8")))


def _corpus() -> list[Path]:
    fixtures = {(path.parent / line.split(":", 1)[1].strip()).resolve()
                for path in (ROOT / "fixtures").rglob("*.yaml")
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.startswith("playbook:")}
    found = {*(ROOT / "tests" / "broken").glob("*.yaml"), *(ROOT / "playbooks").glob("*.yaml"),
             *fixtures}
    return sorted(p.resolve() for p in found)


def _documents() -> list[Document]:
    docs = []
    for path in _corpus():
        doc, _problems = load_file(path)
        if doc is not None and isinstance(doc.data, dict):
            docs.append(doc)
    return docs


CORPUS = _corpus()
DOCUMENTS = _documents()


def _verdicts(doc: Document) -> tuple[bool, bool, list[str]]:
    schema_ok = SCHEMA.is_valid(doc.data)
    _playbook, problems = build(doc)
    schema_errors = [f"{d.path}: {d.message}" for d in problems if d.code.startswith("E-SCHEMA")]
    return schema_ok, not schema_errors, schema_errors


def test_the_corpus_is_not_trivial() -> None:
    assert len(CORPUS) >= 35 and (ROOT / "playbooks" / "smb-saas.yaml").resolve() in CORPUS
    verdicts = [_verdicts(doc)[0] for doc in DOCUMENTS]
    assert any(verdicts) and not all(verdicts)  # both valid and invalid documents


@pytest.mark.parametrize("doc", DOCUMENTS, ids=[Path(d.file).name for d in DOCUMENTS])
def test_schema_and_model_agree_on_the_corpus(doc: Document) -> None:
    schema_ok, model_ok, errors = _verdicts(doc)
    assert schema_ok == model_ok, (schema_ok, errors, list(SCHEMA.iter_errors(doc.data))[:3])


# JSON values only: JSON Schema is about JSON (no NaN, no non-string keys). Strings
# ending in a newline are left out on purpose: the `jsonschema` package reads `$` the
# Python way (before a final newline), where JSON Schema's ECMA regexes do not.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 200_000), st.sampled_from([0.5, 2.0, -3.25, 1e9]),
    st.sampled_from(["", "x", "5", "true", "14d", "99999d", "30 days", "UTC", "Mars/Base",
                     "catalogue", "engine/v1", "Playbook", "fit >= 30", "lead", "Bad Id",
                     "marketing", "promising", "email_open"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["id", "when", "points", "first_of", "owner", "x",
                                         "content", "reps", "cap", "entry", "to"]), inner,
                        max_size=3),
    ),
    max_leaves=6,
)


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*path, index))
    return found


def _mutated(data: Any, path: tuple[Any, ...], how: str, value: Any, key: str) -> Any:
    """A copy of ``data`` with the node at ``path`` replaced, dropped, or given a new key."""
    if not path:
        if how == "add" and isinstance(data, dict):
            return {**data, key: value}
        return data if how == "drop" else value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
        if how == "drop" and not rest:
            del copy[head]
        else:
            copy[head] = _mutated(data[head], rest, how, value, key)
        return copy
    copy_list = list(data)
    if how == "drop" and not rest:
        del copy_list[head]
    else:
        copy_list[head] = _mutated(data[head], rest, how, value, key)
    return copy_list


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_schema_and_model_agree_after_any_one_change(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(DOCUMENTS), label="document")
    path = data.draw(st.sampled_from(_paths(doc.data)), label="path")
    how = data.draw(st.sampled_from(["replace", "replace", "drop", "add"]), label="how")
    value = data.draw(VALUES, label="value")
    key = data.draw(st.sampled_from(["x", "points", "first_of", "when", "sticky", "id", "Bad"]),
                    label="key")
    changed = Document(doc.file, doc.text, _mutated(doc.data, path, how, value, key),
                       doc.positions)
    schema_ok, model_ok, errors = _verdicts(changed)
    assert schema_ok == model_ok, (schema_ok, errors, list(SCHEMA.iter_errors(changed.data))[:3])
