"""Checks that need compiled expressions: thresholds no rule set can reach, and the
seed-003 pitfall of routing on a score that email opens alone can fill.

They run after ``compile`` inside ``engine validate``; each is a small function
from a :class:`CompiledPlaybook` (and its document, for positions) to diagnostics.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator

from engine.compile import CompiledPlaybook, NodePath
from engine.diagnostics import Diagnostic, Severity
from engine.expr import CompiledExpression
from engine.expr.reach import never_holds, stages_where_certain, stages_where_possible
from engine.functions import NAMES
from engine.load import Document
from engine.model import SECTIONS, Playbook
from engine.pipeline import expression_sites

#: The event type whose points the opens-only lint looks at (seed 003).
EMAIL_OPEN = "email_open"


def _expressions(cp: CompiledPlaybook) -> Iterator[tuple[NodePath, CompiledExpression]]:
    """The conditions that may read fit and engagement (the sections from exclusions on);
    a handoff's priority is a number, not a condition, and is left out."""
    for site in expression_sites(cp):
        if site.role not in ("priority", "points") and NAMES["fit"].available(site.section.context):
            yield (site.path if site.role == "when" else (*site.path, site.role)), site.expr


def max_fit(cp: CompiledPlaybook) -> float:
    """The highest fit score any lead can get: best branch of each rule, then the cap."""
    total = sum(rule.ceiling for rule in cp.fit_rules)
    return min(total, cp.fit_cap) if cp.fit_cap is not None else total


def lint_unreachable_thresholds(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """`fit >= 70` under a cap of 60 can never hold: the rule is dead."""
    ceilings = {"fit": max_fit(cp)}
    if cp.engagement_cap is not None:
        ceilings["engagement"] = cp.engagement_cap
    for path, expr in _expressions(cp):
        for fact in expr.comparisons():
            ceiling = ceilings.get(fact.name)
            if ceiling is None:
                continue
            dead = (fact.op == ">=" and fact.value > ceiling) or (
                fact.op == ">" and fact.value >= ceiling
            ) or (fact.op == "==" and fact.value > ceiling)
            if dead:
                yield doc.diagnostic(
                    path, "E-THRESHOLD-UNREACHABLE",
                    f"`{fact.name} {fact.op} {fact.value:g}` can never hold: {fact.name} is at "
                    f"most {ceiling:g}",
                    hint=f"lower the threshold or raise the {fact.name} cap/points",
                )


def _opens_count(node: ast.AST) -> bool:
    """``count("email_open", ...)``: a count of e-mail opens alone."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "count" and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and node.args[0].value == EMAIL_OPEN)


def _opens_fillable(node: ast.expr) -> bool:
    """``engagement > N`` or ``count("email_open", ...) > N``: a test opens alone can pass."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return False
    left, right, op = node.left, node.comparators[0], node.ops[0]
    if isinstance(left, ast.Constant):
        left, right = right, left
        op = {ast.Lt: ast.Gt(), ast.LtE: ast.GtE()}.get(type(op), ast.Eq())
    if not (isinstance(right, ast.Constant) and isinstance(op, ast.Gt | ast.GtE)):
        return False
    return (isinstance(left, ast.Name) and left.id == "engagement") or _opens_count(left)


def _engagement_only(node: ast.expr, order: list[str]) -> bool:
    """True if ``node`` holds on opens-fillable tests alone (no fit, event or real stage test).

    A stage test that a brand-new lead passes (``stage < "opportunity"``) requires nothing.
    """
    parts = node.values if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) else [node]
    neutral = [0 in stages_where_possible(p, order) and not _opens_fillable(p)
               and _is_stage_test(p) for p in parts]
    return all(n or _opens_fillable(p) for n, p in zip(neutral, parts, strict=True)) and not all(neutral)


def _is_stage_test(node: ast.expr) -> bool:
    return isinstance(node, ast.Compare) and any(
        isinstance(n, ast.Name) and n.id == "stage" for n in (node.left, *node.comparators))


def _disjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return [d for v in node.values for d in _disjuncts(v)]
    return [node]


def lint_opens_alone(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """Seed 003: "score ≥ 50 catches everyone" when opens add up; warn where sales gets them."""
    if EMAIL_OPEN not in cp.playbook.events:
        return
    opens = cp.weight_of_type(EMAIL_OPEN)
    first_owner = cp.stages[0].owner
    order = [s.rule.id for s in cp.stages]
    targets: list[tuple[NodePath, CompiledExpression, str]] = [
        (h.rule.path, h.rule.expr, f"handoff `{h.rule.id}`")
        for h in cp.handoffs if h.rule.expr is not None
    ]
    targets += [
        (s.rule.path, s.rule.expr, f"stage `{s.rule.id}`")
        for s in cp.stages if s.rule.expr is not None and s.owner != first_owner
    ]
    for path, expr, what in targets:
        alone = [d for d in _disjuncts(expr.tree) if _engagement_only(d, order)]
        counted = any(_opens_count(n) for d in alone for n in ast.walk(d))
        # An engagement threshold only counts when opens score; a count of opens always does.
        if alone and (opens > 0 or counted):
            how = (f"a count of {EMAIL_OPEN} is compared with a number" if counted
                   else f"{EMAIL_OPEN} scores {opens:g}")
            yield doc.diagnostic(
                path, "W-OPENS-ONLY",
                f"{what} can be reached by email opens alone ({how}, "
                "and nothing else is required)",
                severity=Severity.WARNING,
                hint="require fit or a consideration signal (content_stage, an enquiry) too",
            )


def lint_never_holds(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """`fit >= 50 and fit < 20`: a rule whose own comparisons contradict each other is dead."""
    for path, expr in _expressions(cp):
        name = never_holds(expr.tree)
        if name is not None:
            yield doc.diagnostic(
                path, "E-NEVER-HOLDS",
                f"`{expr.source}` can never hold: no value of {name} satisfies all its "
                "comparisons together", hint="check the bounds (a typo in < or >?)",
            )


def lint_upstream_handoff(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """A handoff that sends a lead back to a team upstream of its stage's owner.

    Teams are ranked by the first stage each owns (the funnel's order): a won customer
    routed to inside sales takes a slot meant for new leads. The stages a handoff can fire
    at come from its `stage` tests, less those where an earlier handoff surely fires (first
    match wins); a handoff with no stage test can fire at every stage. Handing back to the
    first stage's owner (marketing's nurture) is how THE MODEL recycles, so it is allowed.
    """
    order = [s.rule.id for s in cp.stages]
    rank: dict[str, int] = {}
    for i, stage in enumerate(cp.stages):
        rank.setdefault(stage.owner, i)
    taken: frozenset[int] = frozenset()
    for handoff in cp.handoffs:
        if handoff.rule.expr is None:
            break  # always fires: nothing after it is reached
        tree = handoff.rule.expr.tree
        possible = stages_where_possible(tree, order) - taken
        taken |= stages_where_certain(tree, order)
        if handoff.to not in rank or rank[handoff.to] == 0:
            continue
        behind = [order[i] for i in sorted(possible)
                  if rank.get(cp.stages[i].owner, -1) > rank[handoff.to]]
        if behind:
            yield doc.diagnostic(
                handoff.rule.path, "W-HANDOFF-UPSTREAM",
                f"handoff `{handoff.rule.id}` can send leads at stage "
                f"{', '.join(behind)} back to {handoff.to}, upstream of the stage's owner",
                severity=Severity.WARNING,
                hint=f'limit it by stage, e.g. `... and stage < "{behind[0]}"`',
            )


def lint_due_anchor(cp: CompiledPlaybook, doc: Document) -> Iterator[Diagnostic]:
    """A handoff with an SLA whose condition has no exact start (``engine.due``): its due
    time counts from the latest activity, which the playbook should say, not leave implied."""
    from engine.due import plan_of

    for handoff in cp.handoffs:
        if handoff.sla_seconds is None and not cp.sources:
            continue  # no due time at all
        plan = plan_of(cp, handoff)
        if plan.exact or handoff.due_from == "latest_activity":
            continue
        yield doc.diagnostic(
            handoff.rule.path, "W-DUE-ANCHOR",
            f"handoff `{handoff.rule.id}` is due from the latest activity, not from when its "
            f"condition first held: `{plan.untimed}` has no exact start time",
            severity=Severity.WARNING,
            hint="write the condition as an `and` of count(T) > 0, count(T, within=W) > 0, "
            'days_since(T) > D, stage >= "S" (S entered on count(T) > 0) and lead tests '
            "(docs/due.md), or say `due_from: latest_activity` on the handoff",
        )


def lint_no_sql_form(cp: CompiledPlaybook, doc: Document) -> Iterable[Diagnostic]:
    """Constructs the SQL backends (``engine evaluate``'s default) cannot run; sqlglot-free."""
    from engine.sql.support import lint_no_sql_form as lint

    return lint(cp, doc)


def lint_owners(playbook: Playbook, doc: Document) -> Iterator[Diagnostic]:
    """Every section written must have someone to approve its changes (``engine approvals``).

    Run once the playbook is otherwise valid: ownership is a review concern, and a
    broken file's own errors come first.
    """
    meta = playbook.metadata
    written = [s for s in ("timezone", *SECTIONS) if s in playbook.model_fields_set]
    if not meta.owners:
        yield doc.diagnostic(
            ["metadata"], "W-UNOWNED-SECTION",
            "no `metadata.owners`: a change to this playbook needs nobody's approval",
            severity=Severity.WARNING, key=True,
            hint="add `owners: {default: [TEAM]}` under metadata (and per-section owners)",
        )
        return
    for section in written:
        if not meta.owners_of(section):
            yield doc.diagnostic(
                [section], "W-UNOWNED-SECTION",
                f"nobody owns `{section}`: a change to it needs nobody's approval",
                severity=Severity.WARNING, key=True,
                hint=f"add `default: [TEAM]` or `{section}: [TEAM]` under metadata.owners",
            )


Lint = Callable[[CompiledPlaybook, Document], Iterable[Diagnostic]]
LINTS: tuple[Lint, ...] = (lint_unreachable_thresholds, lint_never_holds, lint_opens_alone,
                           lint_upstream_handoff, lint_due_anchor, lint_no_sql_form)


def run_lints(cp: CompiledPlaybook, doc: Document) -> list[Diagnostic]:
    """Every lint's findings."""
    return [d for lint in LINTS for d in lint(cp, doc)]
