"""The static reasoning behind the stage and never-holds lints is sound (engine.expr.reach).

Sound means a lint never accuses a rule wrongly: a stage said impossible really is, a stage
said certain really fires whatever else holds, and "never holds" is never said of a rule
some value satisfies. Checked by brute force over generated expressions.
"""

from __future__ import annotations

import ast
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.expr.reach import never_holds, stages_where_certain, stages_where_possible

ORDER = ["lead", "nurturing", "promising", "won"]
OPS = ["<", "<=", ">", ">=", "==", "!="]

stage_atom = st.one_of(
    st.builds(lambda op, s: f'stage {op} "{s}"', st.sampled_from(OPS), st.sampled_from(ORDER)),
    st.builds(lambda op, s: f'"{s}" {op} stage', st.sampled_from(OPS), st.sampled_from(ORDER)),
    st.builds(lambda neg, ids: f'stage {"not in" if neg else "in"} [{", ".join(map(repr, ids))}]',
              st.booleans(), st.lists(st.sampled_from(ORDER), min_size=1, max_size=3)),
)
opaque = st.sampled_from(["a", "b"])  # anything the reasoning cannot read
expressions = st.recursive(
    st.one_of(stage_atom, opaque),
    lambda inner: st.one_of(
        st.builds(lambda x, y: f"({x} and {y})", inner, inner),
        st.builds(lambda x, y: f"({x} or {y})", inner, inner),
        st.builds(lambda x: f"(not {x})", inner),
    ),
    max_leaves=6,
)


def _truth(source: str, stage: int, a: bool, b: bool) -> bool:
    scope = {"stage": stage, "a": a, "b": b, **{s: i for i, s in enumerate(ORDER)}}
    text = source
    for name in ORDER:
        text = text.replace(f"'{name}'", name).replace(f'"{name}"', name)
    return bool(eval(text, {}, scope))  # test-only: generated from the grammar above


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_stage_sets_are_sound(source: str) -> None:
    tree = ast.parse(source, mode="eval").body
    possible, certain = stages_where_possible(tree, ORDER), stages_where_certain(tree, ORDER)
    for stage in range(len(ORDER)):
        outcomes = {_truth(source, stage, a, b) for a, b in itertools.product([False, True], repeat=2)}
        if True in outcomes:
            assert stage in possible, f"{source}: can hold at {ORDER[stage]}"
        if stage in certain:
            assert outcomes == {True}, f"{source}: said certain at {ORDER[stage]}"


comparison = st.builds(lambda op, v, flip: f"{v} {op} x" if flip else f"x {op} {v}",
                       st.sampled_from(OPS), st.integers(-3, 3), st.booleans())
conjunctions = st.lists(comparison, min_size=1, max_size=4).map(" and ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(conjunctions, min_size=1, max_size=3).map(" or ".join))
def test_never_holds_is_sound(source: str) -> None:
    if never_holds(ast.parse(source, mode="eval").body) is None:
        return
    grid = [v / 2 for v in range(-10, 11)]  # every bound and every point between two bounds
    assert not any(eval(source, {}, {"x": x}) for x in grid), f"{source} holds for some x"


def test_never_holds_finds_the_contradiction() -> None:
    assert never_holds(ast.parse("fit >= 50 and fit < 20", mode="eval").body) == "fit"
    assert never_holds(ast.parse("fit > 20 and fit <= 20", mode="eval").body) == "fit"
    assert never_holds(ast.parse("fit >= 20 and fit <= 20", mode="eval").body) is None
    assert never_holds(ast.parse("fit >= 50 and fit < 20 or engagement > 3", mode="eval").body) is None
