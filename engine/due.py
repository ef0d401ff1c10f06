"""When a handoff's due time starts counting: the instant its condition first held.

A handoff's SLA runs from its *anchor*: the earliest instant from which the condition
held at every instant up to the decision's (issue 19: a churn risk on
``days_since("product_login") > 30`` begins 30 days after the last login, not at the
latest e-mail open). Every backend computes the same anchor from the same plan:
``decide`` and the kernel through :func:`anchor_us`, the SQL query through
:mod:`engine.sql.due`.

The anchor is exact for a condition that is an ``and`` of these *timed* terms (each
one's own start, the latest of them wins):

- ``count(T, f=v...) > 0`` (or ``>= 1``): the first matching event;
- ``count(T, f=v..., within=W) > 0``: the first event of the current run (matching
  events less than W apart keep the window from emptying);
- ``days_since(T) > D`` (or ``>= D``): the last T + D days (the crossing instant);
- a stage test on the stages from S up (``stage >= S``, ``stage == <last>``) or below S,
  where S's entry is ``count(T...) > 0`` and every later stage's entry requires it: the
  first T, or (below S) always;
- a stage test as above where S and every later stage are entered on lead fields alone;
- terms that read nothing that changes with time (lead fields, lists, a fit or persona
  built from them).

A condition of only untimed terms has held since the lead's first activity. Any other
condition (an ``or``, a score threshold, a stage range in the middle) has no exact
anchor: its due time counts from the latest activity, and ``engine validate`` warns
(W-DUE-ANCHOR) unless the handoff says so itself with ``due_from: latest_activity``.
Either way a cooldown that ran out later than the anchor moves it to the cooldown's end.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from engine.durations import parse_seconds
from engine.functions import FUNCTIONS

if TYPE_CHECKING:
    from engine.compile import CompiledPlaybook, HandoffRule

US = 1_000_000

#: Names whose value changes with the lead's history or the instant.
_TIMED_NAMES = frozenset({"stage", "engagement", "surge", "recent", "prior", "engagement_since_recycle",
                          "events_since_recycle", "recycled_at"})


@dataclass(frozen=True)
class Term:
    """One timed term: ``first`` matching event, start of the ``run`` of a window, or the
    last event + ``seconds`` (``after``)."""

    kind: Literal["first", "run", "after"]
    type: str
    fields: tuple[tuple[str, Any], ...]
    seconds: int  # run: the window; after: the threshold; first: 0
    source: str = field(compare=False)  # as written, for messages



@dataclass(frozen=True)
class DuePlan:
    """How one handoff's anchor is found: its timed terms, or (``exact`` False) the
    latest activity, with the first part that has no exact form."""

    terms: tuple[Term, ...]
    exact: bool
    untimed: str | None = None


LATEST = DuePlan((), False)


def plans(cp: CompiledPlaybook) -> tuple[DuePlan, ...]:
    """Each handoff's plan, in order (computed once per compiled playbook)."""
    cached = _CACHE.get(id(cp))
    if cached is not None and cached[0] is cp:
        return cached[1]
    found = tuple(plan_of(cp, h) for h in cp.handoffs)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[id(cp)] = (cp, found)
    return found


_CACHE: dict[int, tuple[CompiledPlaybook, tuple[DuePlan, ...]]] = {}


def plan_of(cp: CompiledPlaybook, handoff: HandoffRule) -> DuePlan:
    """The handoff's plan: ``due_from: latest_activity``, or its condition's timed terms."""
    if handoff.due_from == "latest_activity" or handoff.rule.expr is None:
        return LATEST
    return analyse(cp, handoff.rule.expr.tree)


def analyse(cp: CompiledPlaybook, tree: ast.expr) -> DuePlan:
    """The timed terms of a condition, or why it has no exact anchor."""
    terms: list[Term] = []
    for part in _conjuncts(tree):
        if _static(cp, part, set()):
            continue
        term = _term(cp, part)
        if term is False:
            return DuePlan((), False, ast.unparse(part))
        if term is not None:
            terms.append(term)
    return DuePlan(tuple(terms), True)


def _conjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [c for v in node.values for c in _conjuncts(v)]
    return [node]


def _static(cp: CompiledPlaybook, node: ast.expr, seen: set[str]) -> bool:
    """Whether the expression reads nothing that changes with time (lead, lists, literals,
    and fit, targets and personas when they are built from those)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if sub.id in _TIMED_NAMES:
                return False
            fit_trees = [e.tree for r in cp.fit_rules for e, _ in r.branches] if sub.id == "fit" else []
            if not all(_static(cp, tree, seen) for tree in fit_trees):
                return False
            if sub.id in ("target_account", "target_lead"):
                rule = cp.target_accounts if sub.id == "target_account" else cp.target_leads
                if rule is not None and rule.expr is not None and not _static(cp, rule.expr.tree, seen):
                    return False
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            entry = FUNCTIONS.get(sub.func.id)
            if entry is None or entry.aggregate:
                return False
            # persona(ID): as timed as its rule (a literal naming a persona is read as one)
            named = sub.args[0].value if sub.args and isinstance(sub.args[0], ast.Constant) else None
            rule = next((r for r in cp.personas if r.id == named), None)
            if rule is not None and rule.id not in seen:
                seen.add(rule.id)
                if rule.expr is not None and not _static(cp, rule.expr.tree, seen):
                    return False
    return True


_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt,
                                                 ast.GtE: ast.LtE}


def _compare(node: ast.expr) -> tuple[ast.expr, type[ast.cmpop], Any] | None:
    """``X OP number`` (either way round), as (X, OP, number)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return None
    left, op, right = node.left, type(node.ops[0]), node.comparators[0]
    if isinstance(left, ast.Constant) and op in _FLIP:
        left, op, right = right, _FLIP[op], left
    if not isinstance(right, ast.Constant) or isinstance(right.value, bool) \
            or not isinstance(right.value, int | float):
        return None
    return left, op, right.value


def _call(node: ast.expr, anchor: str) -> ast.Call | None:
    """A call of a function timed as ``anchor`` (its registry entry's ``due_anchor``) on
    one literal event type."""
    entry = FUNCTIONS.get(node.func.id) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        else None
    if entry is not None and entry.due_anchor == anchor and isinstance(node, ast.Call) \
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        return node
    return None


def _count_term(node: ast.expr) -> Term | None:
    """``count(T, ...) > 0`` / ``>= 1`` as a ``first`` or ``run`` term."""
    found = _compare(node)
    if found is None:
        return None
    left, op, value = found
    call = _call(left, "events")
    if call is None or not ((op is ast.Gt and value == 0) or (op is ast.GtE and value == 1)):
        return None
    within: int | None = None
    fields: list[tuple[str, Any]] = []
    for kw in call.keywords:
        if not isinstance(kw.value, ast.Constant) or kw.arg is None:
            return None
        if kw.arg == "within":
            if not isinstance(kw.value.value, str):
                return None
            within = parse_seconds(kw.value.value)
        elif kw.value.value is None or isinstance(kw.value.value, str):
            fields.append((kw.arg, kw.value.value))
        else:
            return None
    type_ = str(call.args[0].value)  # type: ignore[attr-defined]
    source = ast.unparse(node)
    if within is None:
        return Term("first", type_, tuple(sorted(fields)), 0, source)
    return Term("run", type_, tuple(sorted(fields)), within, source)


def _term(cp: CompiledPlaybook, node: ast.expr) -> Term | Literal[False] | None:
    """A conjunct's timed term; None when it holds since always (while it holds); False
    when it has no exact form."""
    counted = _count_term(node)
    if counted is not None:
        return counted
    found = _compare(node)
    if found is not None:
        left, op, value = found
        call = _call(left, "crossing")
        seconds = value * 86400
        if call is not None and op in (ast.Gt, ast.GtE) and value >= 0 and seconds == int(seconds):
            return Term("after", str(call.args[0].value), (), int(seconds),  # type: ignore[attr-defined]
                        ast.unparse(node))
        return False
    return _stage_term(cp, node)


def _stage_term(cp: CompiledPlaybook, node: ast.expr) -> Term | Literal[False] | None:
    from engine.expr.reach import _stage_atom  # a stage test's stages, as the lints read them

    if not isinstance(node, ast.Compare):
        return False
    order = [s.rule.id for s in cp.stages]
    inside = _stage_atom(node, order)
    if inside is None:
        return False
    last = len(order)
    if not inside or len(inside) == last:
        return None  # never or always
    low, high = min(inside), max(inside)
    if inside == frozenset(range(low, last)):
        s, upward = low, True
    elif low == 0 and inside == frozenset(range(0, high + 1)):
        s, upward = high + 1, False
    else:
        return False
    if all(st.rule.expr is None or _static(cp, st.rule.expr.tree, set()) for st in cp.stages[s:]):
        return None  # whether the lead is at S or above never changes
    entry = cp.stages[s].rule.expr
    term = _count_term(entry.tree) if entry is not None else None
    if term is None or term.kind != "first":
        return False
    wanted = ast.dump(entry.tree)  # type: ignore[union-attr]
    for later in cp.stages[s + 1:]:
        tree = later.rule.expr.tree if later.rule.expr is not None else None
        if tree is None or not any(ast.dump(c) == wanted for c in _conjuncts(tree)):
            return False
    if not upward:
        return None  # below S while S's first event has not happened: since always
    return Term("first", term.type, term.fields, 0, ast.unparse(node))


def anchor_us(plan: DuePlan, at_us: Sequence[int], types: Sequence[str],
              field: Callable[[int, str], Any], as_of_us: int) -> int:
    """The anchor in epoch microseconds, from the lead's events (any order; those after
    ``as_of_us`` are skipped). ``field(i, name)`` reads event ``i``'s field."""
    live = [i for i, at in enumerate(at_us) if at <= as_of_us]
    if not plan.exact:
        return max((at_us[i] for i in live), default=as_of_us)
    if not plan.terms:
        return min((at_us[i] for i in live), default=as_of_us)
    anchor: int | None = None
    for term in plan.terms:
        times = sorted(at_us[i] for i in live if _matches(term, i, types, field))
        if not times:  # the term does not hold: the handoff did not fire on it
            continue
        if term.kind == "first":
            start = times[0]
        elif term.kind == "after":
            start = times[-1] + term.seconds * US
        else:
            start = times[0]
            window = term.seconds * US
            for before, at in pairwise(times):
                if at - before > window:
                    start = at
        anchor = start if anchor is None else max(anchor, start)
    return as_of_us if anchor is None else anchor


def _matches(term: Term, i: int, types: Sequence[str], field: Callable[[int, str], Any]) -> bool:
    """Whether event ``i`` counts for the term (the count's type and field filters)."""
    return types[i] == term.type and all(field(i, k) == v for k, v in term.fields)
