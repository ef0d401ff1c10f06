"""A compiled playbook → the source of one Python function deciding one lead.

The function does what ``engine.evaluate.decide(..., detail=False)`` does, in the same
order, but as straight-line code for *this* playbook: one loop over the lead's events
computes every aggregate the playbook reads (decayed engagement in micro-points, surge
windows, each ``count``/``last``/``content_stage`` call), then the rules run as plain
``if`` statements. It never sorts: every aggregate is order-free (integer sums, counts,
maxima), which is also why the SQL backend can compute them with plain aggregates.

Playbooks with recycle rules or sticky stages (and expressions :mod:`engine.kernel.emit`
cannot express) raise :class:`NoKernel`; ``decide`` keeps handling those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine.compile import CompiledPlaybook, Rule
from engine.expr import CompiledExpression
from engine.kernel.emit import Aggregate, Emitter, Namespace, NoKernel

_US = 1_000_000


def _us(seconds: int | float) -> int:
    """A window in microseconds, rounded as ``timedelta(seconds=...)`` rounds."""
    return timedelta(seconds=seconds) // timedelta(microseconds=1)


@dataclass
class Generated:
    """The function's source, its constants, and the event fields its loop reads."""

    source: str
    constants: dict[str, Any]
    fields: tuple[str, ...]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


def generate(cp: CompiledPlaybook, helpers: dict[str, Callable[..., Any]]) -> Generated:
    """The source of ``run(lead, at_us, types, *field_columns, as_of_us, lead_id, as_of_text)``."""
    if cp.recycle:
        raise NoKernel("recycle rules have no kernel form")
    if cp.last_sticky >= 0:
        raise NoKernel("sticky stages have no kernel form")
    ns = Namespace()
    for name, value in helpers.items():
        ns.constants[name] = value
    stages = [s.rule.id for s in cp.stages]

    def emit(expr: CompiledExpression) -> str:
        return Emitter(expr, ns, cp.lists, stages).emit()

    def test(rule: Rule | None) -> str:
        """``ev.test(...) is True`` for a rule (no expression: always holds)."""
        if rule is None or rule.expr is None:
            return "True"
        return f"({emit(rule.expr)} is True)"

    # The rules first (they register the aggregates), then the loop that computes them.
    body = _Writer()
    for index, persona in enumerate(cp.personas):
        var = f"p{index}"
        text = "True" if persona.expr is None else f"bool({emit(persona.expr)})"
        body(1, f"{var} = {text}")
        ns.personas[persona.id] = var
    pairs = "".join(f"({ns.constant(p.id)}, p{i}), " for i, p in enumerate(cp.personas))
    body(1, f"personas = tuple(ident for ident, held in ({pairs}) if held)" if pairs else "personas = ()")
    for name, rule in (("target_account", cp.target_accounts), ("target_lead", cp.target_leads)):
        if rule is None:
            body(1, f"v_{name} = False")
        else:
            body(1, f"v_{name} = bool({'True' if rule.expr is None else emit(rule.expr)})")
    body(1, "fit_breakdown = {}")
    body(1, "fit_total = 0.0")
    for fit_rule in cp.fit_rules:
        for index, (expr, points) in enumerate(fit_rule.branches):
            keyword = "if" if index == 0 else "elif"
            body(1, f"{keyword} {emit(expr)} is True:")
            p = ns.constant(points)
            body(2, f"fit_breakdown[{ns.constant(fit_rule.id)}] = {p}")
            body(2, f"fit_total += {p}")
    if cp.fit_cap is not None:
        body(1, f"fit_total = min(fit_total, {ns.constant(cp.fit_cap)})")
    body(1, "v_fit = score(fit_total)")
    if cp.surge is not None:
        body(1, "v_recent, v_prior = recent, prior")
        body(1, f"v_surge = bool({test(cp.surge)})")
    else:
        body(1, "v_recent = v_prior = 0")
        body(1, "v_surge = False")
    body(1, "engagement_total = micro / 1000000")
    if cp.engagement_cap is not None:
        body(1, f"engagement_total = min(engagement_total, {ns.constant(cp.engagement_cap)})")
    body(1, "v_engagement = score(engagement_total)")
    body(1, "excluded = None")
    for index, exclusion in enumerate(cp.exclusions):
        body(1, f"{'if' if index == 0 else 'elif'} {test(exclusion)}:")
        body(2, f"excluded = {ns.constant(exclusion.id)}")
    body(1, "v_stage = 0")
    for index, stage in enumerate(cp.stages):  # every stage is evaluated, as decide does
        if index:
            body(1, f"if {test(stage.rule)}:")
            body(2, f"v_stage = {index}")
    body(1, "handoff = None")
    if cp.handoffs:
        body(1, "if excluded is None:")
        for index, handoff in enumerate(cp.handoffs):
            body(2, f"{'if' if index == 0 else 'elif'} {test(handoff.rule)}:")
            priority = "NO_PRIORITY" if handoff.priority is None else emit(handoff.priority)
            body(3, f"handoff = make_handoff({ns.constant(index)}, lead, {priority}, at_us, as_of_us)")
    stage_ids, owners = ns.constant(tuple(stages)), ns.constant(tuple(s.owner for s in cp.stages))
    body(1, "return Decision(lead_id, as_of_text, excluded, personas, v_target_account, v_target_lead, "
            "v_fit, fit_breakdown, v_engagement, {}, v_recent, v_prior, v_surge, "
            f"{stage_ids}[v_stage], {owners}[v_stage], None, handoff)")

    fields = _fields(cp, ns)
    head = _Writer()
    columns = "".join(f"c{i}, " for i in range(len(fields)))
    names = list(ns.constants)
    bound = "".join(f", {n}={n}" for n in names)  # constants as locals (LOAD_FAST in the loop)
    head(0, f"def run(lead, at_us, types, {columns}as_of_us, lead_id, as_of_text{bound}):")
    head(1, "lead_get = lead.get")
    _loop(cp, ns, head, fields)
    source = "\n".join(head.lines + body.lines) + "\n"
    return Generated(source, ns.constants, fields)


def _fields(cp: CompiledPlaybook, ns: Namespace) -> tuple[str, ...]:
    """Event fields the loop reads: ``content`` (weights, content_stage) and count filters."""
    names: list[str] = []
    if cp.playbook.scoring.engagement is not None or any(
        a.fn == "content_stage" for a in ns.aggregates
    ):
        names.append("content")
    for aggregate in ns.aggregates:
        for name, _ in aggregate.fields:
            if name not in names:
                names.append(name)
    return tuple(names)


def _loop(cp: CompiledPlaybook, ns: Namespace, w: _Writer, fields: tuple[str, ...]) -> None:
    """The one pass over the events: every aggregate, with the cut at ``as_of``."""
    var = {name: f"f{i}" for i, name in enumerate(fields)}
    w(1, "micro = 0")
    w(1, "recent = prior = 0")
    for aggregate, name in ns.aggregates.items():
        w(1, f"{name} = {'0' if aggregate.fn == 'count' else 'None' if aggregate.fn == 'last' else 'False'}")
    loop_vars = "".join(f", {var[f]}" for f in fields)
    columns = "".join(f", c{i}" for i in range(len(fields)))
    w(1, f"for at, t{loop_vars} in zip(at_us, types{columns}):")
    w(2, "age = as_of_us - at")
    w(2, "if age < 0:")
    w(3, "continue  # after as_of")
    if cp.playbook.scoring.engagement is not None:
        content = var.get("content", "None")
        w(2, "w = plain_get(t)")
        w(2, "if w is None:  # points that depend on content: remembered per (type, content)")
        w(3, "memo = content_get(t)")
        w(3, f"w = None if memo is None else memo.get({content})")
        w(3, "if w is None:")
        w(4, f"w = weigh(t, {content})")
        limit = cp.engagement_window_seconds
        w(2, f"if w{'' if limit is None else f' and age < {_us(limit)}'}:")
        if cp.half_life_seconds:
            half_life = ns.constant(cp.half_life_seconds)
            w(3, f"micro += floor(w * 0.5 ** ((age / 1000000) / {half_life}) * 1e6 + 0.5)")
        else:
            w(3, "micro += floor(w * 1e6 + 0.5)")
    if cp.surge is not None:
        window = _us(cp.surge_window_seconds)
        guard = "" if cp.surge_events is None else f"t in {ns.constant(cp.surge_events)} and "
        w(2, f"if {guard}age < {2 * window}:")
        w(3, f"if age < {window}:")
        w(4, "recent += 1")
        w(3, "else:")
        w(4, "prior += 1")
    by_type: dict[str, list[tuple[Aggregate, str]]] = {}
    for aggregate, name in ns.aggregates.items():
        if aggregate.fn == "content_stage":
            conditions = [f"not {name}"]
            if aggregate.within is not None:
                conditions.append(f"age < {_us(aggregate.within)}")
            c = var["content"]
            conditions.append(f"isinstance({c}, str) and stage_of({c}) == {ns.constant(aggregate.stage)}")
            w(2, f"if {' and '.join(conditions)}:")
            w(3, f"{name} = True")
        else:
            assert aggregate.type is not None
            by_type.setdefault(aggregate.type, []).append((aggregate, name))
    if by_type:
        codes = {event_type: code for code, event_type in enumerate(by_type)}
        w(2, f"code = {ns.constant(codes)}.get(t)")
        w(2, "if code is not None:")
    for index, (event_type, aggregates) in enumerate(by_type.items()):
        w(3, f"{'if' if index == 0 else 'elif'} code == {index}:  # {_comment(event_type)}")
        for aggregate, name in aggregates:
            if aggregate.fn == "last":
                w(4, f"if {name} is None or at > {name}:")
                w(5, f"{name} = at")
                continue
            conditions = []
            if aggregate.within is not None:
                conditions.append(f"age < {_us(aggregate.within)}")
            conditions += [f"{var[k]} == {ns.constant(v)}" for k, v in aggregate.fields]
            if conditions:
                w(4, f"if {' and '.join(conditions)}:")
                w(5, f"{name} += 1")
            else:
                w(4, f"{name} += 1")


def _comment(text: str) -> str:
    """An event type as a comment: identifier characters only (never playbook text as code)."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "?" for ch in text)[:40]
