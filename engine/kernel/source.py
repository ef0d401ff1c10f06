"""A compiled playbook → the source of one Python function deciding one lead.

The function does what ``engine.evaluate.decide(..., detail=False)`` does, in the same
order, but as straight-line code for *this* playbook: one loop over the lead's events
computes every aggregate the playbook reads (decayed engagement in 2**-32 units, surge
windows, each history function call), then the rules run as plain
``if`` statements. It never sorts: every aggregate is order-free (integer sums, counts,
maxima), which is also why the SQL backend can compute them with plain aggregates.

Recycling takes a second pass, only for a lead whose latest trigger has ``reenter_when``
(events after the trigger); a sticky stage re-runs the function at earlier event
instants, as decide does. Expressions :mod:`engine.kernel.emit` cannot express raise
:class:`NoKernel`; ``decide`` keeps handling those.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine.compile import CompiledPlaybook, Rule
from engine.decision import ROUND_DIGITS, Handoff
from engine.expr import CompiledExpression
from engine.kernel.emit import Aggregate, Emitter, Namespace
from engine.pipeline import (
    EXCLUSIONS,
    FIT,
    HANDOFFS,
    PERSONAS,
    RECYCLE,
    STAGES,
    SURGE,
    TARGETS,
    Section,
    walk,
)

_US = 1_000_000
_LIFE_MARK = "#LIFE_COLUMNS#"  # replaced by the team and content columns (or None) per variant


def _us(seconds: int | float) -> int:
    """A window in microseconds, rounded as ``timedelta(seconds=...)`` rounds."""
    return timedelta(seconds=seconds) // timedelta(microseconds=1)


@dataclass
class Generated:
    """The function's source, its constants, and the event fields its loop reads."""

    source: str
    constants: dict[str, Any]
    fields: tuple[str, ...]
    codes: dict[str, int]  # event type → index into the tables below
    content_memo: list[dict[Any, float]]  # per code: content → points (types whose points vary)
    totals: list[Total] | None  # what run_sums is handed; None: the playbook has no run_sums


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


def generate(cp: CompiledPlaybook, helpers: dict[str, Callable[..., Any]]) -> Generated:
    """The source of ``run(lead, at_us, types, *field_columns, as_of_us, lead_id, as_of_text)``."""
    ns = Namespace()
    for name, value in helpers.items():
        ns.constants[name] = value
    stages = [s.rule.id for s in cp.stages]

    def emit(expr: CompiledExpression) -> str:
        return Emitter(expr, ns, cp.lists, stages).emit()

    # The rules first (they register the aggregates), then the loop that computes them.
    body = _body(cp, ns, emit, None)
    since = _Writer()
    fields = _fields(cp, ns)
    by_type: dict[str, list[tuple[Aggregate, str]]] = {}
    for aggregate, name in ns.aggregates.items():
        if aggregate.fn not in ("since_tally", "seen_stage"):
            assert aggregate.type is not None
            by_type.setdefault(aggregate.type, []).append((aggregate, name))
    codes = type_codes(cp, by_type)
    content_memo: list[dict[Any, float]] = [{} for _ in codes]
    ns.constants["weights"] = _weights_by_code(cp, codes)
    ns.constants["content_memo"] = content_memo
    columns = "".join(f"c{i}, " for i in range(len(fields)))
    if cp.recycle:
        _since_loop(cp, ns, since, fields, codes)
    lines: list[str] = []
    # run: computes each event's points; run_points: is handed them (engine.kernel.decay)
    variants = (False, True) if cp.playbook.scoring.engagement is not None else (False,)
    for points in variants:
        head, loop = _Writer(), _Writer()
        _loop(cp, ns, loop, fields, codes, by_type, points)
        bound = "".join(f", {n}={n}" for n in ns.constants)  # every constant a local (LOAD_FAST)
        name, extra = ("run_points", "points, ") if points else ("run", "")
        head(0, f"def {name}(lead, at_us, types, {columns}{extra}ids, seqs, as_of_us, lead_id, as_of_text"
                f"{bound}):")
        head(1, "lead_get = lead.get")
        lines += head.lines + loop.lines
        life_columns = "".join(f"c{fields.index(n)}, " if n in fields else "None, "
                               for n in ("team", "content"))
        for line in body.lines:  # the after-trigger pass goes where each reenter_when needs it
            lines.extend(since.lines if line.strip() == _SINCE_MARK else
                         [line.replace(_COLUMNS_MARK, columns).replace(_LIFE_MARK, life_columns)])
        lines.append("")
    plan = _sums_plan(cp, ns)
    if plan is not None:  # run_sums: handed each total the loop would have made
        bound = "".join(f", {n}={n}" for n in ns.constants)
        lines.append(f"def run_sums(lead, sums, as_of_us, lead_id, as_of_text{bound}):")
        lines.append("    lead_get = lead.get")
        names = [name for name, _ in plan]
        lines += _unpack_sums(cp, names, "    ")
        lines += body.lines
        lines.append("")
        lines += _run_weeks(cp, ns, emit, names)
    source = "\n".join(lines) + "\n"
    totals = None if plan is None else [total for _, total in plan]
    return Generated(source, ns.constants, fields, codes, content_memo, totals)


class _Hoist:
    """Where the week loop's function (``run_weeks``) puts what depends on the lead alone.

    A lead's fields cannot change between week ends, so a value whose generated text
    reads nothing but the lead, constants and values already hoisted (fit, personas,
    a lead-only test) is computed once before the loop over the instants. Decided on
    the generated text itself, so a construct added later cannot be hoisted by mistake:
    any name of the per-instant code (totals, ``as_of_us``, stage...) keeps it in the loop.
    """

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.lines = _Writer()
        # the lead, and the builtins the kernel's namespace gives (engine.kernel.Kernel)
        self.known: set[str] = {"lead", "lead_get", "zip", "tuple", "bool", "min", "isinstance", "str",
                                 "round"}
        self.count = 0

    def lead_only(self, text: str) -> bool:
        tree = ast.parse(text, mode="eval")
        stored = {n.target.id for n in ast.walk(tree)
                  if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)}
        return all(n.id in self.known or n.id in stored or n.id in self.ns.constants
                   for n in ast.walk(tree) if isinstance(n, ast.Name))

    def value(self, text: str, prefix: str = "h") -> str:
        """``text``, or the name of a local computed once before the loop when lead-only."""
        if not self.lead_only(text):
            return text
        name = f"{prefix}{self.count}"
        self.count += 1
        self.lines(1, f"{name} = {text}")
        self.known.add(name)
        return name


class _Rules:
    """What each section's emitter writes the rules with: the playbook, the namespace, the
    expression emitter, the week loop's hoist (None outside ``run_weeks``) and ``body``."""

    def __init__(self, cp: CompiledPlaybook, ns: Namespace, emit: Callable[[CompiledExpression], str],
                 hoist: _Hoist | None) -> None:
        self.cp, self.ns, self.emit, self.hoist = cp, ns, emit, hoist
        self.body = _Writer()
        # (the week loop has no recycling, sticky stages nor due times: _sums_plan; nothing holds)
        self.holds = hoist is None or bool(cp.recycle)

    def test(self, rule: Rule | None) -> str:
        """``ev.test(...) is True`` for a rule (no expression: always holds)."""
        if rule is None or rule.expr is None:
            return "True"
        text = f"({self.emit(rule.expr)} is True)"
        return text if self.hoist is None else self.hoist.value(text)

    def block(self, lines: _Writer, names: tuple[str, ...], reads: list[str]) -> None:
        """Lines defining ``names`` from the values ``reads``: before the loop when those
        are all lead-only."""
        hoist = self.hoist
        if hoist is not None and all(hoist.lead_only(text) for text in reads):
            hoist.lines.lines += lines.lines
            hoist.known.update(names)
        else:
            self.body.lines += lines.lines


def _body(cp: CompiledPlaybook, ns: Namespace, emit: Callable[[CompiledExpression], str],
          hoist: _Hoist | None) -> _Writer:
    """The rules as statements, from personas to the decision: each section in
    ``engine.pipeline.DECISION_ORDER``, by its emitter in :data:`_SECTIONS`; with
    ``hoist`` (the week loop), what depends on the lead alone goes there, and each instant
    appends only ``(stage index, exclusion, handoff)``."""
    stages = [s.rule.id for s in cp.stages]
    rules = _Rules(cp, ns, emit, hoist)
    for _, emitter in walk(_SECTIONS, "the batch kernel (engine/kernel/source.py)"):
        emitter(rules)
    body = rules.body
    stage_ids, owners = ns.constant(tuple(stages)), ns.constant(tuple(s.owner for s in cp.stages))
    if hoist is not None:  # (no life: a playbook declaring one has no run_sums, so no run_weeks)
        body(1, "append((v_stage, excluded, handoff))")
        return body
    nurture = ""
    if cp.life.declared:  # a handoff's life (engine.handoff_life), from the lead's event columns
        body(1, f"handoff, nurture = life(lead, handoff, recycle, recycled_at, excluded, v_stage, at_us, "
                f"types, {_LIFE_MARK}as_of_us)")
        nurture = ", nurture"
    body(1, "return Decision(lead_id, as_of_text, excluded, personas, v_target_account, v_target_lead, "
            "v_fit, fit_breakdown, v_engagement, {}, v_recent, v_prior, v_surge, "
            f"{stage_ids}[v_stage], {owners}[v_stage], recycle, handoff{nurture})")
    return body


def _personas(rules: _Rules) -> None:
    cp, ns, emit, hoist, body, block = rules.cp, rules.ns, rules.emit, rules.hoist, rules.body, rules.block
    for index, persona in enumerate(cp.personas):
        var = f"p{index}"
        text = "True" if persona.expr is None else f"bool({emit(persona.expr)})"
        line = _Writer()
        line(1, f"{var} = {text}")
        block(line, (var,), [text])
        ns.personas[persona.id] = var
    pairs = "".join(f"({ns.constant(p.id)}, p{i}), " for i, p in enumerate(cp.personas))
    line = _Writer()
    line(1, f"personas = tuple(ident for ident, held in ({pairs}) if held)" if pairs else "personas = ()")
    if hoist is not None and all(f"p{i}" in hoist.known for i in range(len(cp.personas))):
        hoist.lines.lines += line.lines
        hoist.known.add("personas")
    else:
        body.lines += line.lines


def _targets(rules: _Rules) -> None:
    cp, emit, block = rules.cp, rules.emit, rules.block
    for name, rule in (("target_account", cp.target_accounts), ("target_lead", cp.target_leads)):
        line = _Writer()
        text = "False" if rule is None else f"bool({'True' if rule.expr is None else emit(rule.expr)})"
        line(1, f"v_{name} = {text}")
        block(line, (f"v_{name}",), [text])


def _fit(rules: _Rules) -> None:
    cp, ns, emit, block = rules.cp, rules.ns, rules.emit, rules.block
    fit = _Writer()
    reads: list[str] = []
    fit(1, "fit_breakdown = {}")
    fit(1, "fit_total = 0.0")
    for fit_rule in cp.fit_rules:
        for index, (expr, points) in enumerate(fit_rule.branches):
            keyword = "if" if index == 0 else "elif"
            reads.append(emit(expr))
            fit(1, f"{keyword} {reads[-1]} is True:")
            if isinstance(points, CompiledExpression):  # decide's _points
                p = f"computed_points({emit(points)})"
                reads.append(p)
            else:
                p = ns.constant(points)
            if fit_rule.cap is not None:
                fit(2, f"points = {p}")
                cap = ns.constant(fit_rule.cap)
                fit(2, f"if points > {cap}:")
                fit(3, f"points = {cap}")
                p = "points"
            fit(2, f"fit_breakdown[{ns.constant(fit_rule.id)}] = {p}")
            fit(2, f"fit_total += {p}")
    if cp.fit_cap is not None:
        fit(1, f"fit_total = min(fit_total, {ns.constant(cp.fit_cap)})")
    fit(1, "v_fit = score(fit_total)")
    block(fit, ("v_fit", "fit_breakdown"), reads)


def _surge(rules: _Rules) -> None:
    """The surge, then engagement: the scores are complete before exclusions, as in decide."""
    cp, ns, hoist, body, test = rules.cp, rules.ns, rules.hoist, rules.body, rules.test
    if cp.surge is not None:
        body(1, "v_recent, v_prior = recent, prior")
        surge = test(cp.surge)  # ((x is True), or a hoisted one: already a bool in the week loop)
        body(1, f"v_surge = bool({surge})" if hoist is None else f"v_surge = {surge}")
    else:
        body(1, "v_recent = v_prior = 0")
        body(1, "v_surge = False")
    body(1, f"engagement_total = {_capped_total(cp, ns, 'micro')} / 4294967296")
    if cp.engagement_cap is not None:
        cap = ns.constant(cp.engagement_cap)
        if hoist is None:
            body(1, f"engagement_total = min(engagement_total, {cap})")
        else:  # min() inlined, as min(x, cap) gives it: cap only when cap < x
            body(1, f"if {cap} < engagement_total:")
            body(2, f"engagement_total = {cap}")
    if hoist is None:
        body(1, "v_engagement = score(engagement_total)")
    else:  # engine.decision.score inlined: the week loop runs it at every (lead, instant)
        body(1, f"v_engagement = round(engagement_total, {ROUND_DIGITS}) + 0.0")


def _exclusions(rules: _Rules) -> None:
    cp, ns, body, test = rules.cp, rules.ns, rules.body, rules.test
    body(1, "excluded = None")
    for index, exclusion in enumerate(cp.exclusions):
        body(1, f"{'if' if index == 0 else 'elif'} {test(exclusion)}:")
        body(2, f"excluded = {ns.constant(exclusion.id)}")


def _stages(rules: _Rules) -> None:
    cp, body, test = rules.cp, rules.body, rules.test
    body(1, "v_stage = 0")
    for index, stage in enumerate(cp.stages):  # every stage is evaluated, as decide does
        if index:
            body(1, f"if {test(stage.rule)}:")
            body(2, f"v_stage = {index}")
    if cp.last_sticky >= 0:  # decide's _sticky_floor: this same function at earlier instants
        body(1, f"if v_stage < {cp.last_sticky}:")  # (the columns are known once every rule is emitted)
        body(2, f"v_stage = sticky_floor(lead, at_us, types, {_COLUMNS_MARK}ids, seqs, as_of_us, v_stage)")


def _recycle_section(rules: _Rules) -> None:
    """Whether the lead is held (before the handoffs: ``engine.pipeline.DECISION_ORDER``)."""
    cp, ns, emit, body = rules.cp, rules.ns, rules.emit, rules.body
    if rules.holds:
        body(1, "held = False")
        body(1, "released = recycle = recycled_at = None")
    if cp.recycle:
        _recycle(cp, ns, body, emit)


def _handoffs(rules: _Rules) -> None:
    cp, ns, emit, hoist, body, test = rules.cp, rules.ns, rules.emit, rules.hoist, rules.body, rules.test
    body(1, "handoff = None")
    if cp.handoffs:
        body(1, "if excluded is None and not held:" if rules.holds else "if excluded is None:")
        for index, handoff in enumerate(cp.handoffs):
            body(2, f"{'if' if index == 0 else 'elif'} {test(handoff.rule)}:")
            priority = "None" if handoff.priority is None else emit(handoff.priority)
            if handoff.sla_seconds is None and not cp.sources:  # no due time: nothing per lead
                if handoff.priority is None:
                    fixed = Handoff.from_values(handoff.rule.id, handoff.to, None, None)
                    body(3, f"handoff = {ns.constant(fixed)}")  # frozen: one object serves all
                else:
                    rule_id, to = ns.constant(handoff.rule.id), ns.constant(handoff.to)
                    made = f"new_handoff({rule_id}, {to}, None, priority_of({priority}))"
                    body(3, f"handoff = {made if hoist is None else hoist.value(made, 'hh')}")
            else:
                body(3, f"handoff = make_handoff({index}, lead, {priority}, at_us, types, {_COLUMNS_MARK}"
                        "as_of_us, released)")


#: Each section's statements (``engine.pipeline.walk`` fails for a section without one).
_SECTIONS: dict[Section, Callable[[_Rules], None]] = {
    PERSONAS: _personas,
    TARGETS: _targets,
    FIT: _fit,
    SURGE: _surge,
    EXCLUSIONS: _exclusions,
    STAGES: _stages,
    RECYCLE: _recycle_section,
    HANDOFFS: _handoffs,
}


def _run_weeks(cp: CompiledPlaybook, ns: Namespace, emit: Callable[[CompiledExpression], str],
               names: list[str]) -> list[str]:
    """``run_weeks(lead, instants, sums)``: ``run_sums`` at many instants of one lead
    (engine funnel's week ends): per instant ``(stage index, exclusion, handoff)``, and
    the last instant's ``(personas, target_account, target_lead)``. What depends on the
    lead alone — fit, personas, lead-field tests, a handoff built from them — is
    computed once (:class:`_Hoist`); the rest runs per instant, the same statements as
    ``run_sums``."""
    hoist = _Hoist(ns)
    body = _body(cp, ns, emit, hoist)
    bound = "".join(f", {n}={n}" for n in ns.constants)
    lines = [f"def run_weeks(lead, instants, sums_list{bound}):",
             "    lead_get = lead.get",
             *hoist.lines.lines,
             "    out = []",
             "    append = out.append",
             "    for as_of_us, sums in zip(instants, sums_list):",
             *_unpack_sums(cp, names, "        ")]
    lines += ["    " + line for line in body.lines]
    lines += ["    return out, ((personas, v_target_account, v_target_lead) if out else None)", ""]
    return lines


def _unpack_sums(cp: CompiledPlaybook, names: list[str], indent: str) -> list[str]:
    """``sums`` into the totals' names, and zero for the ones the rules read but the plan
    has none of (a playbook may read nothing of a history: no totals at all)."""
    lines = [f"{indent}{', '.join(names)}, = sums"] if names else []
    if "micro" not in names:
        lines.append(f"{indent}micro = 0")
        lines += [f"{indent}micro_k{index} = 0" for index in range(_bucket_count(cp))]
    if "recent" not in names:
        lines.append(f"{indent}recent = prior = 0")
    return lines


@dataclass(frozen=True)
class Total:
    """One per-lead total of ``run_sums``: events with ``low <= age < high`` µs (no
    ``high``: any age from ``low``), of ``types`` (None: any), whose ``fields`` equal the
    values given; their decayed points (``points``) or their number."""

    points: bool
    low_us: int = 0
    high_us: int | None = None
    types: frozenset[str] | None = None
    fields: tuple[tuple[str, Any], ...] = ()


def _sums_plan(cp: CompiledPlaybook, ns: Namespace) -> list[tuple[str, Total]] | None:
    """What ``run_sums`` is handed, in order, when the loop's every result is a sum over
    events (engine.kernel.sums adds them up per block); None when the playbook needs the
    events themselves: recycling (triggers, the pass after), sticky stages (earlier
    instants), a latest event or content seen (``latest``, ``seen_stage``), or a due time
    (when the condition first held: engine.due reads the events)."""
    # (content caps: a glob has no total form)
    if cp.recycle or cp.last_sticky >= 0 or cp.sources or cp.life.declared or cp.content_caps:
        return None
    if any(h.sla_seconds is not None for h in cp.handoffs):
        return None
    plan: list[tuple[str, Total]] = []
    if cp.playbook.scoring.engagement is not None:
        limit = None if cp.engagement_window_seconds is None else _us(cp.engagement_window_seconds)
        capped = frozenset(cp.capped_types)  # summed apart, as the loop does (one bucket each)
        rest = frozenset(cp.playbook.events) - capped if capped else None
        plan.append(("micro", Total(True, 0, limit, rest)))
        plan += [(f"micro_k{index}", Total(True, 0, limit, frozenset({event_type})))
                 for index, event_type in enumerate(cp.capped_types)]
    if cp.surge is not None:
        window = _us(cp.surge_window_seconds)
        plan.append(("recent", Total(False, 0, window, cp.surge_events)))
        plan.append(("prior", Total(False, window, 2 * window, cp.surge_events)))
    for aggregate, name in ns.aggregates.items():
        if aggregate.fn != "tally":
            return None
        assert aggregate.type is not None
        within = None if aggregate.within is None else _us(aggregate.within)
        plan.append((name, Total(False, 0, within, frozenset({aggregate.type}), aggregate.fields)))
    return plan


def _fields(cp: CompiledPlaybook, ns: Namespace) -> tuple[str, ...]:
    """Event fields the loop reads: ``content`` (weights, seen_stage) and count filters."""
    names: list[str] = []
    if cp.playbook.scoring.engagement is not None or any(
        a.fn == "seen_stage" for a in ns.aggregates
    ):
        names.append("content")
    if any(rule.on == "disposition" for rule in cp.recycle) and "reason" not in names:
        names.append("reason")
    life = cp.life  # a rejection's reason, an acceptance's team, what nurture content was consumed
    for name, needed in (("reason", life.rejected), ("team", life.accepted), ("content", life.tracks)):
        if needed and name not in names:
            names.append(name)
    for aggregate in ns.aggregates:
        read = [name for name, _ in aggregate.fields]
        if aggregate.value is not None:
            read.append(aggregate.value)
        for name in read:
            if name not in names:
                names.append(name)
    return tuple(names)


def _loop(cp: CompiledPlaybook, ns: Namespace, w: _Writer, fields: tuple[str, ...], codes: dict[str, int],
          by_type: dict[str, list[tuple[Aggregate, str]]], points: bool) -> None:
    """The one pass over the events: every aggregate, with the cut at ``as_of``.

    With ``points``, each event's decayed points come precomputed in a column."""
    var = {name: f"f{i}" for i, name in enumerate(fields)}
    w(1, "micro = 0")
    for index in range(_bucket_count(cp)):
        w(1, f"micro_k{index} = 0  # a capped type's (or content glob's) units, apart")
    w(1, "recent = prior = 0")
    for aggregate, name in ns.aggregates.items():
        initial = {"tally": "0", "latest": "None", "seen_stage": "False", "units": "0",
                   "numbers": "0"}.get(aggregate.fn)
        if initial is not None:  # since_tally lives in the after-trigger pass
            w(1, f"{name} = {initial}")
    for index in range(len(cp.recycle)):
        w(1, f"r{index} = None  # the recycle trigger's (at, id, seq), the latest")
        w(1, f"x{index} = None  # the latest rejected handoff giving this reason")
    loop_vars = "".join(f", {var[f]}" for f in fields)
    columns = "".join(f", c{i}" for i in range(len(fields)))
    if points:
        loop_vars, columns = loop_vars + ", q", columns + ", points"
    if cp.recycle:
        loop_vars, columns = loop_vars + ", i, s", columns + ", ids, seqs"
    w(1, f"for at, t{loop_vars} in zip(at_us, types{columns}):")
    w(2, "age = as_of_us - at")
    w(2, "if age < 0:")
    w(3, "continue  # after as_of")
    engaged = cp.playbook.scoring.engagement is not None
    if by_type or (engaged and (not points or cp.capped_types)):  # one lookup serves both
        w(2, f"code = {ns.constant(codes)}[t]  # an unknown type raises: decide handles the lead")
    if points:
        limit = cp.engagement_window_seconds
        if limit is None:
            _add_units(cp, ns, codes, w, 2, "micro", "q", var.get("content", "None"))
        else:
            w(2, f"if age < {_us(limit)}:")
            _add_units(cp, ns, codes, w, 3, "micro", "q", var.get("content", "None"))
    else:
        _decayed_points(cp, ns, w, 2, var.get("content", "None"), "micro", codes)
    if cp.surge is not None:
        window = _us(cp.surge_window_seconds)
        guard = "" if cp.surge_events is None else f"t in {ns.constant(cp.surge_events)} and "
        w(2, f"if {guard}age < {2 * window}:")
        w(3, f"if age < {window}:")
        w(4, "recent += 1")
        w(3, "else:")
        w(4, "prior += 1")
    rejected = cp.life.rejected  # a rejected handoff is a trigger of the reason it gives
    for index, rule in enumerate(cp.recycle):  # History.of_type(on)[-1]: the latest by sort key
        reasoned = rule.on in ("disposition", rejected)
        reason = f" and {var['reason']} == {ns.constant(rule.rule.id)}" if reasoned else ""
        w(2, f"if t == {ns.constant(rule.on)}{reason}:")
        w(3, "key = (at, i or '', s)")
        w(3, f"if r{index} is None or key > r{index}:")
        w(4, f"r{index} = key")
        if rejected is not None and rejected != rule.on:
            w(2, f"if t == {ns.constant(rejected)} and {var['reason']} == {ns.constant(rule.rule.id)}:")
            w(3, "key = (at, i or '', s)")
            w(3, f"if x{index} is None or key > x{index}:")
            w(4, f"x{index} = key")
    for aggregate, name in ns.aggregates.items():
        if aggregate.fn == "seen_stage":
            conditions = [f"not {name}"]
            if aggregate.within is not None:
                conditions.append(f"age < {_us(aggregate.within)}")
            c = var["content"]
            conditions.append(f"isinstance({c}, str) and stage_of({c}) == {ns.constant(aggregate.stage)}")
            w(2, f"if {' and '.join(conditions)}:")
            w(3, f"{name} = True")
    if by_type:  # the counted types have the highest codes: one compare skips the rest
        w(2, f"if code >= {codes[next(iter(by_type))]}:")
    for index, (event_type, aggregates) in enumerate(by_type.items()):
        w(3, f"{'if' if index == 0 else 'elif'} code == {codes[event_type]}:  # {_comment(event_type)}")
        for aggregate, name in aggregates:
            if aggregate.fn == "latest":
                w(4, f"if {name} is None or at > {name}:")
                w(5, f"{name} = at")
                continue
            conditions = []
            if aggregate.within is not None:
                conditions.append(f"age < {_us(aggregate.within)}")
            conditions += [f"{var[k]} == {ns.constant(v)}" for k, v in aggregate.fields]
            if aggregate.value is not None:  # units, numbers: events whose field is a number
                conditions.append(f"(u := units({var[aggregate.value]})) is not None")
            step = "u" if aggregate.fn == "units" else "1"
            if conditions:
                w(4, f"if {' and '.join(conditions)}:")
                w(5, f"{name} += {step}")
            else:
                w(4, f"{name} += {step}")


def type_codes(cp: CompiledPlaybook, counted: Mapping[str, object]) -> dict[str, int]:
    """Each event type's index into the kernel's tables; the ``counted`` types last, in order.

    The loop looks a type up once, then indexes lists by the code (``weights``,
    ``content_memo``) and compares small ints to find the aggregates it feeds.
    """
    order = [t for t in cp.playbook.events if t not in counted] + list(counted)
    return {event_type: code for code, event_type in enumerate(order)}


def _weights_by_code(cp: CompiledPlaybook, codes: dict[str, int]) -> list[float | None]:
    """Each code's points, as ``cp.weight`` gives them; None where they depend on content."""
    engagement = cp.playbook.scoring.engagement
    varying = set() if engagement is None else set(engagement.points) - set(cp.plain_weights)
    return [None if t in varying else cp.plain_weights.get(t, 0.0) for t in codes]


def _bucket_count(cp: CompiledPlaybook) -> int:
    """How many apart totals the capped types need: one each, plus one per capped glob."""
    return sum(1 + len(cp.content_caps.get(t, {})) for t in cp.capped_types)


def _add_units(cp: CompiledPlaybook, ns: Namespace, codes: Mapping[str, int], w: _Writer, indent: int,
               total: str, units: str, content: str) -> None:
    """``total += units``; a capped type's units go to a total of their own, one per capped
    content glob and one for the type's other events (decide's ``by_bucket``)."""
    if not cp.capped_types:
        w(indent, f"{total} += {units}")
        return
    bucket = 0
    for index, event_type in enumerate(cp.capped_types):
        w(indent, f"{'if' if index == 0 else 'elif'} code == {codes[event_type]}:  # {_comment(event_type)}")
        globs = len(cp.content_caps.get(event_type, {}))
        if not globs:
            w(indent + 1, f"{total}_k{bucket} += {units}")
        else:
            w(indent + 1, f"b = cap_bucket({ns.constant(event_type)}, {content})")
            for glob in range(globs + 1):
                w(indent + 1, f"{'if' if glob == 0 else 'elif'} b == {glob}:")
                w(indent + 2, f"{total}_k{bucket + glob} += {units}")
        bucket += 1 + globs
    w(indent, "else:")
    w(indent + 1, f"{total} += {units}")


def _capped_total(cp: CompiledPlaybook, ns: Namespace, total: str) -> str:
    """The units engagement adds up to: the uncapped types', plus each capped type's — its
    capped globs' totals capped, its other events' added, then the type's cap."""
    terms = [total]
    bucket = 0
    for event_type in cp.capped_types:
        globs = cp.content_caps.get(event_type, {})
        inner = [f"{total}_k{bucket}"] + [f"min({total}_k{bucket + i}, {ns.constant(cap)})"
                                          for i, cap in enumerate(globs.values(), 1)]
        text = " + ".join(inner)
        if event_type in cp.type_caps:
            text = f"min({text}, {ns.constant(cp.type_caps[event_type])})"
        terms.append(f"({text})")
        bucket += 1 + len(globs)
    return f"({' + '.join(terms)})"


def _decayed_points(cp: CompiledPlaybook, ns: Namespace, w: _Writer, indent: int, content: str,
                    total: str, codes: Mapping[str, int]) -> None:
    """Add the event's decayed points, in whole 2**-32 units, to ``total`` (decide's _engagement)."""
    if cp.playbook.scoring.engagement is None:
        return
    w(indent, "w = weights[code]")
    w(indent, "if w is None:  # points that depend on content: remembered per (type, content)")
    w(indent + 1, f"w = content_memo[code].get({content})")
    w(indent + 1, "if w is None:")
    w(indent + 2, f"w = weigh(code, t, {content})")
    limit = cp.engagement_window_seconds
    w(indent, f"if w{'' if limit is None else f' and age < {_us(limit)}'}:")
    if cp.half_life_seconds:
        half_life = ns.constant(cp.half_life_seconds)
        units = f"floor(w * 0.5 ** ((age / 1000000) / {half_life}) * 4294967296.0 + 0.5)"
    else:
        units = "floor(w * 4294967296.0 + 0.5)"
    _add_units(cp, ns, codes, w, indent + 1, total, units, content)


_SINCE_MARK = "#<since-recycle pass>"
_COLUMNS_MARK = "<field columns>"


def _recycle(cp: CompiledPlaybook, ns: Namespace, body: _Writer,
             emit: Callable[[CompiledExpression], str]) -> None:
    """decide's ``_recycle``: the latest trigger across reasons, its re-entry, hold and release."""
    body(1, "chosen = chosen_key = None")
    rejected = cp.life.rejected
    for index, rule in enumerate(cp.recycle):
        for latest, kind in ((f"r{index}", rule.on), (f"x{index}", rejected)):
            if kind is None or (latest[0] == "x" and kind == rule.on):
                continue
            body(1, f"if {latest} is not None:")
            body(2, f"key = ({latest}[0], {ns.constant(kind)}, {latest}[1], {latest}[2])")
            body(2, "if chosen_key is None or key > chosen_key:")
            body(3, f"chosen, chosen_key = {index}, key")
    body(1, "if chosen is not None:")
    body(2, "recycled_at = chosen_key[0]")
    body(2, "reentered = False")
    for index, rule in enumerate(cp.recycle):
        if rule.reenter is None:
            continue
        body(2, f"if chosen == {index}:")
        body(3, _SINCE_MARK)
        body(3, f"reentered = {emit(rule.reenter)} is True")
    body(2, "recycle, held, released = make_recycle(chosen, recycled_at, reentered, as_of_us)")


def _since_loop(cp: CompiledPlaybook, ns: Namespace, w: _Writer, fields: tuple[str, ...],
                codes: dict[str, int]) -> None:
    """The pass over the events after the trigger: what ``reenter_when`` reads."""
    var = {name: f"f{i}" for i, name in enumerate(fields)}
    since = [(a, n) for a, n in ns.aggregates.items() if a.fn == "since_tally"]
    w(3, "micro_since = events_since = 0")
    for index in range(_bucket_count(cp)):
        w(3, f"micro_since_k{index} = 0")
    for _, name in since:
        w(3, f"{name} = 0")
    loop_vars = "".join(f", {var[f]}" for f in fields)
    columns = "".join(f", c{i}" for i in range(len(fields)))
    w(3, f"for at, t{loop_vars} in zip(at_us, types{columns}):")
    w(4, "if at <= recycled_at or at > as_of_us:")
    w(5, "continue")
    w(4, "events_since += 1")
    w(4, "age = as_of_us - at")
    if cp.playbook.scoring.engagement is not None:
        w(4, f"code = {ns.constant(codes)}[t]")
    _decayed_points(cp, ns, w, 4, var.get("content", "None"), "micro_since", codes)
    for aggregate, name in since:
        conditions = [f"t == {ns.constant(aggregate.type)}"]
        conditions += [f"{var[k]} == {ns.constant(v)}" for k, v in aggregate.fields]
        w(4, f"if {' and '.join(conditions)}:")
        w(5, f"{name} += 1")
    w(3, f"engagement_since = {_capped_total(cp, ns, 'micro_since')} / 4294967296")
    if cp.engagement_cap is not None:
        w(3, f"engagement_since = min(engagement_since, {ns.constant(cp.engagement_cap)})")
    w(3, "v_engagement_since_recycle = score(engagement_since)")
    w(3, "v_events_since_recycle = events_since")


def _comment(text: str) -> str:
    """An event type as a comment: identifier characters only (never playbook text as code)."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "?" for ch in text)[:40]
