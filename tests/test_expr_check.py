"""Checker details the case files cannot express: positions, hints, facts, warnings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.expr import Comparison, Scope, Vocabulary, compile_expression
from engine.expr.issues import CODES
from engine.functions import CONTEXTS, FUNCTIONS, NAMES, catalogue_rows, contexts_of
from engine.history import History

VOCAB = Vocabulary(
    event_fields={"call": ["outcome"], "inquiry": [], "email_open": []},
    stages=["lead", "nurturing", "promising", "won"],
    personas=["cto"],
    lists=["competitors"],
    lead_fields={"title": "string", "employees": "number"},
    content_stages=["promising"],
)
EMPTY = History([], datetime(2026, 1, 1, tzinfo=UTC))


def issues_of(source: str, context: str = "recycle", type_: str = "bool") -> list[str]:
    _, issues = compile_expression(source, VOCAB, context, type_)
    return [f"{i.code}@{i.line}:{i.col}+{i.length}" for i in issues]


def test_positions_point_at_the_offending_part() -> None:
    assert issues_of("fit >= 30 and lead.titel == 'x'") == ["E-EXPR-NAME@1:15+10"]


def test_positions_count_characters_not_utf8_bytes() -> None:
    # 部長 is 6 bytes in UTF-8; the AST reports bytes, the issue must say characters.
    assert issues_of("matches(lead.title, '部長') and enagement > 1") == ["E-EXPR-NAME@1:31+9"]


def test_multi_line_expressions_report_line_and_column() -> None:
    source = "fit >= 30\nand count('cal') > 0"
    assert issues_of(source) == ["E-EXPR-REF@2:11+5"]


def test_leading_spaces_keep_positions() -> None:
    assert issues_of("   enagement > 1") == ["E-EXPR-NAME@1:4+9"]


def test_all_errors_are_reported_not_only_the_first() -> None:
    found = issues_of("enagement > 1 and count('cal') > 0 and lead.title > 3")
    assert [f.split("@")[0] for f in found] == ["E-EXPR-NAME", "E-EXPR-REF", "E-EXPR-TYPE"]


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        ("enagement > 1", "did you mean `engagement`?"),
        ("lead.titel == 'x'", "did you mean `title`?"),
        ("count('cal') > 0", "did you mean `call`?"),
        ("count('call', outcom='x') > 0", "did you mean `outcome`?"),
        ("count('call', withn='1d') > 0", "did you mean `within`?"),
        ("stage >= 'promisng'", "did you mean `promising`?"),
        ("persona('ct')", "did you mean `cto`?"),
        ("cuont('call') > 1", "did you mean `count`?"),
        ("lead.company in lists.competitor", "did you mean `competitors`?"),
    ],
)
def test_did_you_mean(source: str, hint: str) -> None:
    _, issues = compile_expression(source, VOCAB, "recycle", "bool")
    assert hint in [i.hint for i in issues]


def test_context_error_names_where_it_is_available() -> None:
    _, issues = compile_expression("stage >= 'won'", VOCAB, "stage", "bool")
    assert [(i.code, i.message, i.hint) for i in issues] == [
        (
            "E-EXPR-CONTEXT",
            "`stage` is not known while stages are being decided",
            "it is available in: handoff, recycle",
        )
    ]


def test_unknown_names_suggest_only_what_the_context_knows() -> None:
    _, issues = compile_expression("engagment > 1", VOCAB, "fit", "bool")
    assert issues[0].hint is None  # engagement is not known yet while fit is scored


def test_ordering_with_none_is_a_warning_and_still_compiles() -> None:
    compiled, issues = compile_expression("fit > None", VOCAB, "handoff", "bool")
    assert compiled is not None
    assert [(i.code, i.severity) for i in issues] == [("W-EXPR-NULL", "warning")]
    assert compiled.warnings == tuple(issues)
    assert compiled(Scope({"fit": 3}, EMPTY)) is False


def test_content_stage_of_an_unmapped_stage_warns() -> None:
    _, issues = compile_expression("content_stage('nurturing')", VOCAB, "stage", "bool")
    assert [i.code for i in issues] == ["W-EXPR-CONTENT"]


def test_undeclared_lead_fields_are_open_and_untyped() -> None:
    open_vocab = Vocabulary(event_fields={}, lead_fields=None)
    compiled, issues = compile_expression("lead.anything >= 3", open_vocab, "fit", "bool")
    assert compiled is not None and issues == []
    # A value of the wrong run-time type behaves like None instead of raising.
    assert compiled(Scope({"lead": {"anything": "lots"}}, EMPTY)) is False
    assert compiled.reference(Scope({"lead": {"anything": "lots"}}, EMPTY)) is False
    assert compiled(Scope({"lead": {"anything": 3}}, EMPTY)) is True


def test_facts_names_fields_functions() -> None:
    compiled, _ = compile_expression(
        "stage >= 'promising' or (surge and fit >= 30) or count('inquiry') > 0 or matches(lead.title, 'VP')",
        VOCAB,
        "handoff",
        "bool",
    )
    assert compiled is not None
    assert compiled.names == {"stage", "surge", "fit", "lead"}
    assert compiled.fields == {"lead.title"}
    assert compiled.functions == {"count", "matches"}


def test_numeric_comparisons_normalise_the_name_to_the_left() -> None:
    compiled, _ = compile_expression(
        "engagement >= 40 and 30 <= fit and lead.employees > -1 and 0 < recent < 5 and count('call') > 1",
        VOCAB,
        "handoff",
        "bool",
    )
    assert compiled is not None
    assert compiled.comparisons() == (
        Comparison("engagement", ">=", 40),
        Comparison("fit", ">=", 30),
        Comparison("lead.employees", ">", -1),
        Comparison("recent", ">", 0),
        Comparison("recent", "<", 5),
    )


def test_literals_are_resolved_once_at_compile_time() -> None:
    compiled, _ = compile_expression("count('call', within='2d') > 0", VOCAB, "fit", "bool")
    assert compiled is not None
    cells = [c.cell_contents for c in (compiled._fn.__closure__ or ())]
    inner = next(c for c in cells if callable(c))
    resolved = [c.cell_contents for c in (inner.__closure__ or ())]
    assert ("call", 172800) in resolved  # the type name and the window in seconds


def test_every_catalogue_entry_is_documented_and_available_somewhere() -> None:
    for entry in [*NAMES.values(), *FUNCTIONS.values()]:
        assert entry.doc.endswith(".") and contexts_of(entry), entry.name
    rows = {name for name, *_ in catalogue_rows("persona")}
    assert "lead" in rows and "fit" not in rows and "persona" not in rows
    assert {name for name, *_ in catalogue_rows()} == set(NAMES) | set(FUNCTIONS)


@pytest.mark.parametrize("context", CONTEXTS)
def test_lead_fields_and_history_functions_work_everywhere(context: str) -> None:
    compiled, issues = compile_expression("lead.employees > 10 and count('call') > 0", VOCAB, context, "bool")
    assert compiled is not None, issues


def test_every_code_emitted_is_documented() -> None:
    assert all(code.startswith(("E-EXPR-", "W-EXPR-")) for code in CODES)


def test_unknown_context_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        compile_expression("True", VOCAB, "nowhere", "bool")


@pytest.mark.parametrize("op", ["/", "//", "%", "*", "+", "-"])
def test_arithmetic_overflow_is_none_not_an_exception(op: str) -> None:
    huge = "1" + "0" * 400
    compiled, _ = compile_expression(f"{huge} {op} fit", VOCAB, "handoff", "number")
    assert compiled is not None
    scope = Scope({"fit": 0.5}, EMPTY)
    assert compiled(scope) is None
    assert compiled.reference(scope) is None
