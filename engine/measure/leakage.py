"""A playbook against its mapping: rules that could read the outcome, or notes written after contact.

Two ways a backtest can flatter a playbook: a rule that reads the outcome itself (the
old ``leads-x-education`` preset mapped ``Converted`` as a lead field, and a queue 100%
"converted" passed ``validate --strict``), and rules reading columns the sales team
fills in *after* contacting a lead (X Education's ``Tags``), which describe an
already-worked list. The first is an error, the second a warning; both run in
``engine validate --mapping`` and before every ``engine backtest``.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.compile import CompiledPlaybook, NodePath
from engine.diagnostics import Diagnostic, Severity, sort_diagnostics
from engine.expr import CompiledExpression
from engine.io import Mapping
from engine.io.mapping import field_spec
from engine.load import Document
from engine.pipeline import expression_sites


def expressions(cp: CompiledPlaybook) -> Iterator[tuple[NodePath, str, CompiledExpression]]:
    """Every compiled expression with where it is written and what it is (rule id)."""
    for site in expression_sites(cp):
        label = site.section.label
        what = label if site.rule is None else f"{label} {site.rule}"
        if site.role == "when":
            yield site.path, what, site.expr
        else:  # a priority is named as such; a re-entry condition by its reason
            suffix = f" {site.role}" if site.role in ("priority", "points") else ""
            yield _beside(site.path, site.role), what + suffix, site.expr


def _beside(path: NodePath, key: str) -> NodePath:
    """The path of ``key`` next to a rule's ``when`` (rule paths end at their condition)."""
    return (*path[:-1], key) if path and path[-1] in ("when", "entry") else (*path, key)


def outcome_field_errors(cp: CompiledPlaybook, doc: Document, mapping: Mapping) -> list[Diagnostic]:
    """E-OUTCOME-READABLE: a declared lead field named like an outcome or fed by an outcome column."""
    if mapping.outcomes is None:
        return []
    outcome_columns = mapping.outcomes.columns()
    names = {n.casefold() for n in outcome_columns} | {c.casefold() for c in outcome_columns.values()}
    found = []
    for name in cp.playbook.lead.fields:
        spec = mapping.leads.fields.get(name)
        column = field_spec(spec).column if spec is not None else None
        fed = column is not None and column in outcome_columns.values()
        if name.casefold() in names or fed:
            found.append(doc.diagnostic(
                ("lead", "fields", name), "E-OUTCOME-READABLE",
                f"lead field `{name}` is an outcome in mapping {mapping.name or 'given'!s} "
                f"(outcomes: {', '.join(f'{k} ← {v}' for k, v in outcome_columns.items())}): "
                "a rule reading it would score on the result itself",
                hint="remove the field; outcomes are measured by `engine backtest`, never read by rules",
                key=True,
            ))
    return found


def after_contact_warnings(cp: CompiledPlaybook, doc: Document, mapping: Mapping) -> list[Diagnostic]:
    """W-AFTER-CONTACT: a rule reads a field (or scores an event type) sales writes after contact."""
    late = mapping.after_contact_fields()
    found = []
    for path, what, expr in expressions(cp):
        read = sorted(f.removeprefix("lead.") for f in expr.fields
                      if f.startswith("lead.") and f.removeprefix("lead.") in late)
        if read:
            columns = ", ".join(f"`{f}` ({late[f]})" for f in read)
            found.append(doc.diagnostic(
                path, "W-AFTER-CONTACT",
                f"{what} reads {columns}, written by sales after contacting the lead: "
                "decisions describe an already-worked list and backtest figures are optimistic",
                hint="score on what is known before contact, or keep the rule out of the headline figures",
                severity=Severity.WARNING,
            ))
    late_types = sorted({r.type for r in mapping.leads.activity if r.after_contact})
    engagement = cp.playbook.scoring.engagement
    scored = engagement.points if engagement is not None else {}
    for event_type in late_types:
        if event_type in cp.playbook.events and cp.weight_of_type(event_type) != 0:
            found.append(doc.diagnostic(
                ("scoring", "engagement", "points", event_type) if event_type in scored
                else ("events", event_type),
                "W-AFTER-CONTACT",
                f"engagement scores `{event_type}`, which the mapping makes from a column written "
                "after sales contact: backtest figures are optimistic",
                hint="give the type 0 points, or keep it out of the headline figures",
                severity=Severity.WARNING,
            ))
    return found


def mapping_diagnostics(cp: CompiledPlaybook, doc: Document, mapping: Mapping) -> list[Diagnostic]:
    """Both checks, in file order."""
    found = [*outcome_field_errors(cp, doc, mapping), *after_contact_warnings(cp, doc, mapping)]
    return sort_diagnostics(found)
