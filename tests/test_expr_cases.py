"""The case files: every rejected expression with its code, every accepted one with
its value under both interpreters. A new case is a new line in a YAML file."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from engine.events import Event
from engine.expr import CompiledExpression, Scope, Vocabulary, compile_expression
from engine.expr.compile import same_value
from engine.expr.limits import MAX_DEPTH, MAX_NODES, MAX_SOURCE_CHARS
from engine.expr.regex import DataPatternError
from engine.history import History

CASES = Path(__file__).parent / "expr_cases"
AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _load(name: str) -> Any:
    return YAML(typ="safe").load((CASES / name).read_text(encoding="utf-8"))


RAW_VOCAB = _load("vocabulary.yaml")
VOCAB = Vocabulary(
    event_fields=RAW_VOCAB["event_fields"],
    stages=RAW_VOCAB["stages"],
    personas=RAW_VOCAB["personas"],
    lists=RAW_VOCAB["lists"],
    lead_fields=RAW_VOCAB["lead_fields"],
    content_stages=RAW_VOCAB["content_stages"],
)
REJECTED = _load("rejected.yaml")
ACCEPTED = _load("accepted.yaml")


def _scope(case: dict[str, Any]) -> Scope:
    values: dict[str, Any] = dict(case.get("values") or {})
    values["lead"] = case.get("lead") or {}
    values["lists"] = {k: frozenset(v) for k, v in (values.get("lists") or {}).items()}
    if isinstance(values.get("stage"), str):
        values["stage"] = list(VOCAB.stages).index(values["stage"])
    if "recycled_at" in values:
        values["recycled_at"] = AS_OF - timedelta(days=values["recycled_at"])
    events = [
        Event(e[0], AS_OF - timedelta(days=e[1]), e[2] if len(e) > 2 else {}, None, i)
        for i, e in enumerate(case.get("events") or [])
    ]
    personas = frozenset(case.get("personas") or ())
    content = RAW_VOCAB["content"]
    return Scope(values, History(events, AS_OF), personas.__contains__, content.get)


@pytest.mark.parametrize("case", REJECTED, ids=[c["source"][:40] for c in REJECTED])
def test_rejected(case: dict[str, Any]) -> None:
    compiled, issues = compile_expression(
        case["source"], VOCAB, case.get("context", "recycle"), case.get("type", "bool")
    )
    assert compiled is None
    first = issues[0]
    assert (first.code, first.severity) == (case["code"], "error"), [str(i) for i in issues]
    assert case.get("message", "") in f"{first.message} {first.hint}"
    if "col" in case:
        assert first.col == case["col"]
    assert 0 <= first.offset <= len(case["source"])


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["source"][:50] for c in ACCEPTED])
def test_accepted(case: dict[str, Any]) -> None:
    compiled, issues = compile_expression(
        case["source"], VOCAB, case.get("context", "recycle"), case.get("type", "bool")
    )
    assert compiled is not None, [str(i) for i in issues]
    scope = _scope(case)
    if "raises" in case:  # the compiled closure and the reference fail alike
        for evaluate in (compiled, compiled.reference):
            with pytest.raises(DataPatternError, match=case["raises"]):
                evaluate(scope)
        return
    value, reference = compiled(scope), compiled.reference(scope)
    assert same_value(value, case["expect"]), value
    assert same_value(reference, value), reference


def _rejected_fast(source: str, code: str) -> None:
    started = time.perf_counter()
    compiled, issues = compile_expression(source, VOCAB, "recycle", "bool")
    assert time.perf_counter() - started < 2  # a guard against hangs, not a benchmark
    assert compiled is None
    assert [i.code for i in issues][:1] == [code]


@pytest.mark.parametrize("n", [MAX_DEPTH + 1, 300, 5000])
def test_nested_parentheses_are_a_limit(n: int) -> None:
    _rejected_fast("(" * n + "fit > 1" + ")" * n, "E-EXPR-LIMIT")


@pytest.mark.parametrize(
    "source",
    [
        "not " * 1000 + "surge",
        "-" * 1999 + "1 > 0",
        " + ".join(["fit"] * (MAX_DEPTH + 1)) + " > 0",
        " or ".join(["surge"] * (MAX_NODES + 1)),
        "fit > " + "1" * (MAX_SOURCE_CHARS + 1),
        "[" * 3000 + "]" * 3000,
    ],
    ids=["not-chain", "minus-chain", "deep-sum", "many-nodes", "too-long", "nested-lists"],
)
def test_pathological_sources_are_limits(source: str) -> None:
    _rejected_fast(source, "E-EXPR-LIMIT")


def test_a_realistic_long_expression_is_within_limits() -> None:
    source = " or ".join(f"count('inquiry', within='{d}d') > {d}" for d in range(1, 30))
    compiled, issues = compile_expression(source, VOCAB, "recycle", "bool")
    assert compiled is not None, issues


def test_compiled_expression_is_typed() -> None:
    compiled, _ = compile_expression("fit + 1", VOCAB, "handoff", "number")
    assert isinstance(compiled, CompiledExpression)
    assert str(compiled.type) == "number"
