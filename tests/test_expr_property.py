"""Property: the compiled closures and the simpleeval reference agree on every
well-typed expression, over generated leads, scopes and histories; and no input
text makes the front end raise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import Event
from engine.expr import Scope, Vocabulary, compile_expression
from engine.expr.compile import same_value
from engine.functions import CONTEXTS
from engine.history import History

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
STAGES = ["lead", "nurturing", "promising", "won"]
EVENT_FIELDS = {"call": ["outcome"], "inquiry": [], "page_view": ["content"]}
VOCAB = Vocabulary(
    event_fields=EVENT_FIELDS,
    stages=STAGES,
    personas=["cto", "eng"],
    lists=["competitors"],
    lead_fields={"title": "string", "employees": "number", "industry": "string", "vip": "bool"},
)
CONTENT = {"howto": "nurturing", "case": "promising"}
NUM_NAMES = ["fit", "engagement", "recent", "prior", "engagement_since_recycle", "lead.employees"]
BOOL_NAMES = ["surge", "target_account", "target_lead", "lead.vip"]
STR_NAMES = ["lead.title", "lead.industry"]
STRINGS = ["'VP'", "'vp sales'", "'software'", "''", "'部長'"]
PATTERNS = ["'VP|Head'", "'(?i)vp'", "'^部'", "'a+b*'", "'[0-9]{2}'"]
WINDOWS = ["'1d'", "'7d'", "'30d'", "'2h'"]
OUTCOMES = ["'appointment'", "'no_answer'"]

numbers = st.one_of(
    st.integers(-5, 120).map(str),
    st.sampled_from(["0.5", "2.25", "1e3", "0", "0", "0.0", "None"]),
)


def _event_type(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(sorted(EVENT_FIELDS)))


@st.composite
def num_expr(draw: st.DrawFn, depth: int = 3) -> str:
    leaf = draw(st.booleans()) or depth <= 0
    if leaf:
        kind = draw(st.sampled_from(["literal", "name", "count", "days_since"]))
        if kind == "literal":
            return draw(numbers)
        if kind == "name":
            return draw(st.sampled_from(NUM_NAMES))
        if kind == "days_since":
            return f"days_since('{_event_type(draw)}')"
        args = [f"'{_event_type(draw)}'"]
        if draw(st.booleans()):
            args.append(f"within={draw(st.sampled_from(WINDOWS))}")
        if args[0] == "'call'" and draw(st.booleans()):
            args.append(f"outcome={draw(st.sampled_from(OUTCOMES))}")
        return f"count({', '.join(args)})"
    kind = draw(st.sampled_from(["binop", "neg", "pow", "minmax", "if"]))
    sub = num_expr(depth - 1)
    if kind == "binop":
        op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%"]))
        return f"({draw(sub)} {op} {draw(sub)})"
    if kind == "neg":
        return f"-{draw(sub)}"
    if kind == "pow":
        return f"({draw(sub)} ** {draw(st.sampled_from(['0', '1', '2', '3', '-1', '0.5']))})"
    if kind == "minmax":
        fn = draw(st.sampled_from(["min", "max"]))
        return f"{fn}({', '.join(draw(st.lists(sub, min_size=2, max_size=3)))})"
    return f"({draw(sub)} if {draw(bool_expr(depth - 1))} else {draw(sub)})"


@st.composite
def str_expr(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["literal", "name", "lower", "none"]))
    if kind == "literal":
        return draw(st.sampled_from(STRINGS))
    if kind == "name":
        return draw(st.sampled_from(STR_NAMES))
    if kind == "lower":
        return f"lower({draw(st.sampled_from(STR_NAMES))})"
    return "None"


@st.composite
def bool_expr(draw: st.DrawFn, depth: int = 3) -> str:
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        kind = draw(
            st.sampled_from(["literal", "name", "persona", "content", "matches", "stage", "strcmp", "last"])
        )
        if kind == "literal":
            return draw(st.sampled_from(["True", "False", "None"]))
        if kind == "name":
            return draw(st.sampled_from(BOOL_NAMES))
        if kind == "persona":
            return f"persona({draw(st.sampled_from(['cto', 'eng']))!r})"
        if kind == "content":
            window = draw(st.sampled_from(["", ", within='7d'"]))
            return f"content_stage({draw(st.sampled_from(STAGES))!r}{window})"
        if kind == "matches":
            return f"matches({draw(str_expr())}, {draw(st.sampled_from(PATTERNS))})"
        if kind == "stage":
            op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
            if draw(st.integers(0, 3)) == 0:
                items = draw(st.lists(st.sampled_from(STAGES), min_size=1, max_size=3))
                return f"stage {draw(st.sampled_from(['in', 'not in']))} {items!r}"
            return f"stage {op} {draw(st.sampled_from(STAGES))!r}"
        if kind == "last":
            op = draw(st.sampled_from(["<", ">=", "==", "!="]))
            return f"last('{_event_type(draw)}') {op} last('{_event_type(draw)}')"
        left = draw(str_expr())
        op = draw(st.sampled_from(["==", "!=", "in", "not in"]))
        if op.endswith("in") and draw(st.booleans()):
            right = f"[{', '.join(draw(st.lists(st.sampled_from(STRINGS), max_size=3)))}]"
        elif op.endswith("in") and left != "None" and draw(st.booleans()):
            right = "lists.competitors"
        else:
            right = draw(str_expr())
        return f"{left} {op} {right}"
    kind = draw(st.sampled_from(["cmp", "chain", "not", "and", "or", "if", "isnone"]))
    sub = bool_expr(depth - 1)
    if kind == "cmp":
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"{draw(num_expr(depth - 1))} {op} {draw(num_expr(depth - 1))}"
    if kind == "chain":
        ops = draw(st.lists(st.sampled_from(["<", "<=", "=="]), min_size=2, max_size=3))
        parts = [draw(num_expr(1)) for _ in range(len(ops) + 1)]
        return " ".join(p for pair in zip(parts, [*ops, ""], strict=True) for p in pair).strip()
    if kind == "not":
        return f"not {draw(sub)}"
    if kind in ("and", "or"):
        return f"({f' {kind} '.join(draw(st.lists(sub, min_size=2, max_size=3)))})"
    if kind == "isnone":
        return f"{draw(num_expr(1))} {draw(st.sampled_from(['==', '!=', 'is', 'is not']))} None"
    return f"({draw(sub)} if {draw(sub)} else {draw(sub)})"


maybe_num = st.one_of(st.none(), st.just(0), st.integers(-3, 100), st.floats(-10, 100, allow_nan=False))
#: Event ages in hours, biased to the edges of the windows (1d, 7d, 30d, 2h).
hours_ago = st.one_of(
    st.sampled_from([0, 1, 2, 3, 23, 24, 25, 167, 168, 169, 719, 720, 721]),
    st.integers(0, 24 * 40),
)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    lead: dict[str, Any] = {}
    for name, values in (
        ("title", st.sampled_from(["VP Sales", "部長", "engineer", "", "Head of IT", None])),
        ("industry", st.sampled_from(["software", "retail", None])),
        ("employees", maybe_num),
        ("vip", st.sampled_from([True, False, None])),
    ):
        if draw(st.booleans()):
            lead[name] = draw(values)
    values: dict[str, Any] = {"lead": lead, "lists": {"competitors": frozenset({"software"})}}
    for name in ["fit", "engagement", "recent", "prior", "engagement_since_recycle"]:
        values[name] = draw(maybe_num)
    for name in ["surge", "target_account", "target_lead"]:
        values[name] = draw(st.sampled_from([True, False, None]))
    values["stage"] = draw(st.one_of(st.none(), st.integers(0, len(STAGES) - 1)))
    events = []
    for i, (etype, hours) in enumerate(
        draw(st.lists(st.tuples(st.sampled_from(sorted(EVENT_FIELDS)), hours_ago)))
    ):
        fields: dict[str, Any] = {}
        if etype == "call":
            fields["outcome"] = draw(st.sampled_from(["appointment", "no_answer"]))
        if etype == "page_view":
            fields["content"] = draw(st.sampled_from(["howto", "case", "other"]))
        ident = draw(st.sampled_from([None, "a", "b"]))
        events.append(Event(etype, AS_OF - timedelta(hours=hours), fields, ident, i))
    personas = frozenset(draw(st.lists(st.sampled_from(["cto", "eng"]))))
    return Scope(values, History(events, AS_OF), personas.__contains__, CONTENT.get)


@SETTINGS
@given(source=bool_expr(), scope=scopes())
def test_compiled_equals_reference_for_conditions(source: str, scope: Scope) -> None:
    compiled, issues = compile_expression(source, VOCAB, "recycle", "bool")
    assert compiled is not None, (source, [str(i) for i in issues])
    value = compiled(scope)
    assert same_value(value, compiled.reference(scope)), source
    assert value is None or isinstance(value, bool)


@SETTINGS
@given(source=num_expr(), scope=scopes())
def test_compiled_equals_reference_for_numbers(source: str, scope: Scope) -> None:
    compiled, issues = compile_expression(source, VOCAB, "recycle", "number")
    assert compiled is not None, (source, [str(i) for i in issues])
    value = compiled(scope)
    assert same_value(value, compiled.reference(scope)), source
    assert value is None or type(value) in (int, float)


TOKENS = [
    "fit", "lead", ".", "title", "__class__", "(", ")", "[", "]", "'x'", "1", "**", "*",
    " and ", " or ", "not ", "<", "==", " in ", ",", "count", "'call'", "within=", "'1d'",
    "stage", "'won'", "lambda", ":", " if ", " else ", "None", "-", "\n", "部", "#", "{", "}",
]  # fmt: skip


@SETTINGS
@given(
    parts=st.lists(st.sampled_from(TOKENS), max_size=25),
    context=st.sampled_from(CONTEXTS),
    type_=st.sampled_from(["bool", "number"]),
    scope=scopes(),
)
def test_front_end_never_raises(parts: list[str], context: str, type_: str, scope: Scope) -> None:
    source = "".join(parts)
    compiled, issues = compile_expression(source, VOCAB, context, type_)
    for issue in issues:
        assert 0 <= issue.offset <= len(source) and issue.line >= 1 and issue.col >= 1
    if compiled is not None:
        assert same_value(compiled(scope), compiled.reference(scope)), source
    else:
        assert any(i.severity == "error" for i in issues)
