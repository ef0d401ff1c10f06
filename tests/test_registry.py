"""Every function is declared once, in engine.functions, with all its forms.

A backend reads the registry entry; it never spells a function's name. The name check
reads every string constant under engine/ with ``ast``; the few files where the same
word means something else are listed below, each with what it means there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.expr import compile_expression
from engine.functions import AGGREGATES, CONTEXTS, FUNCTIONS, Vocabulary, contexts_of

ENGINE = Path(__file__).resolve().parents[1] / "engine"

#: (file, word) pairs where the word is not the function: a context or grouping called
#: "persona", a JSON key or SQL column "count", the history CTE's "content_stage"
#: column, Arrow's "min"/"max" statistics, the builtin ``min`` handed to generated code.
OTHER_MEANINGS = {
    ("expr/check.py", "persona"), ("measure/funnel.py", "persona"),
    ("diff_impact.py", "count"), ("sql/records.py", "count"), ("sql/query.py", "content_stage"),
    ("io/arrow_instants.py", "min"), ("io/arrow_instants.py", "max"), ("kernel/__init__.py", "min"),
}


def _files_naming() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {name: set() for name in FUNCTIONS}
    for path in ENGINE.rglob("*.py"):
        relative = path.relative_to(ENGINE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            other = isinstance(node, ast.Constant) and (relative, node.value) in OTHER_MEANINGS
            if isinstance(node, ast.Constant) and node.value in found and not other:
                found[node.value].add(relative)
    return found


def test_each_function_name_is_a_string_in_at_most_two_files() -> None:
    files = _files_naming()
    assert all("functions.py" in f for f in files.values())  # the walker finds the registry
    assert {name: sorted(f) for name, f in files.items() if len(f) > 2} == {}


def test_the_other_meanings_are_still_there() -> None:
    """An entry of OTHER_MEANINGS that no longer applies is removed, not kept as a loophole."""
    for relative, word in OTHER_MEANINGS:
        tree = ast.parse((ENGINE / relative).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Constant) and n.value == word for n in ast.walk(tree)), relative


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_entry_has_every_form(name: str) -> None:
    fn = FUNCTIONS[name]
    assert fn.doc and fn.reference is not None and fn.kernel is not None and fn.sql_gaps is not None
    assert (fn.sql is None) != (fn.sql_aggregate is None)  # a scalar or a per-lead aggregate form
    assert fn.aggregate == (fn.sql_aggregate is not None) == (name in AGGREGATES)
    assert contexts_of(fn) and set(contexts_of(fn)) <= set(CONTEXTS)


_VOCABULARY = Vocabulary(
    event_fields={"web_visit": ["page"], "demo_request": [], "email_open": [], "deal": ["amount"]},
    stages=("lead", "promising"), personas=("buyer",), lists=("competitors",),
    lead_fields={"title": "string", "country": "string", "employees": "number"},
    content_stages=("promising",),
)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_example_is_a_valid_expression(name: str) -> None:
    fn = FUNCTIONS[name]
    for example in fn.examples:
        context = contexts_of(fn)[-1]
        compiled, issues = compile_expression(example, _VOCABULARY, context=context)
        assert compiled is not None and name in compiled.functions, (example, issues)
