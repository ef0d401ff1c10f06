"""Renderers of :class:`~engine.diff.PlaybookDiff` lists: text, markdown (a PR comment), json.

Output is deterministic (document order, sorted matrices, no times), so a comment is
only re-posted when the plan really changed and snapshots stay stable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from engine.diff import (
    Added,
    Approval,
    Change,
    ImpactReport,
    ListItems,
    Moved,
    PlaybookDiff,
    Removed,
    Transition,
)
from engine.diff_impact import ColumnImpact, QueueImpact

#: Marks the PR comment so CI finds and updates it instead of posting another.
MARKER = "<!-- engine-diff -->"
#: GitHub rejects comments over 65,536 characters; stay well below.
MAX_MARKDOWN = 60_000
#: Plan lines shown per playbook in the PR comment (the rest: run ``engine diff``).
MAX_CHANGE_LINES = 40
#: Kinds of change shown per decision column.
MOVES_SHOWN = 3


def _value(value: Any) -> str:
    """Strings (expressions, mostly) as written; other values as compact JSON."""
    if isinstance(value, str) and value.strip() == value and value:
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=False, separators=(", ", ": "))


def change_lines(change: Change) -> list[str]:
    """A change as plan lines: ``+ path: value``, ``- path: value``, ``~ path`` with before/after."""
    if isinstance(change, Added):
        return [f"+ {change.path}: {_value(change.value)}"]
    if isinstance(change, Removed):
        return [f"- {change.path}: {_value(change.value)}"]
    if isinstance(change, ListItems):
        return _list_lines(change)
    if isinstance(change, Moved):
        return [f"~ {change.path}: moved from position {change.before} to {change.after}"]
    before, after = _value(getattr(change, "before", None)), _value(getattr(change, "after", None))
    if len(before) + len(after) + len(change.path) < 90:
        return [f"~ {change.path}: {before} → {after}"]
    return [f"~ {change.path}:", f"    - {before}", f"    + {after}"]


def _list_lines(change: ListItems) -> list[str]:
    """``~ lists.x.items: +120 -3 item(s)``, then up to a few of each, quoted as JSON strings."""
    lines = [f"~ {change.path}: +{change.added} -{change.removed} item(s)"]
    for sign, count, sample in (("+", change.added, change.added_sample),
                                ("-", change.removed, change.removed_sample)):
        if sample:
            more = f" … and {count - len(sample)} more" if count > len(sample) else ""
            shown = ", ".join(json.dumps(item, ensure_ascii=False) for item in sample)
            lines.append(f"    {sign} {shown}{more}")
    return lines


def _handles(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(no owners)"


def approval_line(approval: Approval) -> str:
    """``stages: sales-ops`` plus the head's owners when the change edits them."""
    line = f"{approval.section}: {_handles(approval.owners)}"
    if approval.head_owners is not None:
        line += f" (after this change: {_handles(approval.head_owners)})"
    return line


def _changed_cells(cells: Sequence[Transition]) -> list[Transition]:
    return [t for t in cells if t.before != t.after]


def _moves(column: ColumnImpact, shown: int = MOVES_SHOWN) -> str:
    parts = [f"{m.change} for {m.count:,} (e.g. {', '.join(m.examples)})"
             for m in column.moves[:shown]]
    rest = sum(m.count for m in column.moves[shown:]) + column.other
    if rest:
        parts.append(f"{rest:,} other")
    return "; ".join(parts)


def _capacity(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}/wk"


def queue_line(q: QueueImpact) -> str:
    """One team's queue at capacity, before → after."""
    capacity = _capacity(q.capacity_before)
    if q.capacity_after != q.capacity_before:
        capacity += f" → {_capacity(q.capacity_after)}"
    line = (f"{q.team} (capacity {capacity}): handoffs {q.handoffs_before:,} → {q.handoffs_after:,}, "
            f"queued {q.queued_before:,} → {q.queued_after:,}, overflow {q.overflow_before:,} → "
            f"{q.overflow_after:,}; {q.entered:,} entered the queue, {q.left:,} left")
    if q.entered_examples or q.left_examples:
        line += (f" (e.g. in {', '.join(q.entered_examples) or '-'}; "
                 f"out {', '.join(q.left_examples) or '-'})")
    return line


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _figure(side: dict[str, Any], key: str) -> str:
    """``96.2% [94.7–97.4]`` (precision, recall) or ``2.50 [2.46–2.53]`` (lift)."""
    value, ci = side.get(key), side.get(f"{key}_ci")
    if key == "lift":
        shown = "n/a" if value is None else f"{value:.2f}"
        interval = f" [{ci[0]:.2f}–{ci[1]:.2f}]" if ci else ""
    else:
        shown = _pct(value)
        interval = f" [{ci[0]:.1%}–{ci[1]:.1%}]" if ci else ""
    return shown + interval


def _auc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def outcome_lines(outcomes: dict[str, Any]) -> list[str]:
    """Outcome impact as text: what was measured, the AUC, each team's queue before → after."""
    lines = [f"outcomes at capacity ({outcomes['leads']:,} lead(s) measured, {outcomes['converted']:,} "
             f"converted, base rate {_pct(outcomes['base_rate'])}; 95% intervals):",
             f"  AUC of the ranking (score): {_auc(outcomes['auc']['before'])} → "
             f"{_auc(outcomes['auc']['after'])}"]
    for team in outcomes["teams"]:
        before, after = team["before"], team["after"]
        capacity = _capacity(team["capacity_before"])
        if team["capacity_after"] != team["capacity_before"]:
            capacity += f" → {_capacity(team['capacity_after'])}"
        lines.append(f"  {team['team']} ({capacity}; {before['handoffs']:,} → {after['handoffs']:,} "
                     "measured in the queue):")
        lines += [f"    {key} {_figure(before, key)} → {_figure(after, key)}"
                  for key in ("precision", "recall", "lift")]
    lines += [f"  warning: {w}" for w in outcomes["warnings"]]
    return lines


def _outcomes_md(outcomes: dict[str, Any] | None) -> list[str]:
    if not outcomes:
        return []
    lines = [f"**Outcomes at weekly capacity** (before → after, 95% intervals; {outcomes['leads']:,} "
             f"lead(s) measured, {outcomes['converted']:,} converted, base rate "
             f"{_pct(outcomes['base_rate'])}; AUC of the ranking {_auc(outcomes['auc']['before'])} → "
             f"**{_auc(outcomes['auc']['after'])}**)", "",
             "| team | capacity | precision | recall | lift |", "|---|---:|---|---|---|"]
    for team in outcomes["teams"]:
        capacity = _capacity(team["capacity_before"])
        if team["capacity_after"] != team["capacity_before"]:
            capacity += f" → {_capacity(team['capacity_after'])}"
        cells = [f"{_figure(team['before'], k)} → **{_figure(team['after'], k)}**"
                 for k in ("precision", "recall", "lift")]
        lines.append(f"| `{_md_cell(team['team'])}` | {capacity} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- ⚠ {_md_cell(w)}" for w in outcomes["warnings"]]
    return [*lines, ""] if outcomes["warnings"] else lines


def _headline(report: ImpactReport, fixtures: bool) -> str:
    if fixtures:
        return (f"{report.changed} of {report.total} fixture(s) change "
                "(replayed timeline differs: `engine test` fails on exactly these)")
    return f"{report.changed:,} of {report.total:,} lead(s) change decision"


def impact_lines(report: ImpactReport, fixtures: bool = False) -> list[str]:
    """The impact as text: the headline, each column that moved (most leads first), queues."""
    lines = [_headline(report, fixtures)]
    lines += [f"  {c.column} ({c.changed:,} lead(s)): {_moves(c)}" for c in report.columns]
    if report.queues:
        lines.append("  queues at capacity:")
        lines += [f"    {queue_line(q)}" for q in report.queues]
    outcomes = report.extra.get("outcomes")
    if outcomes:
        lines += [f"  {line}" for line in outcome_lines(outcomes)]
    return lines


def render_text(diffs: Sequence[PlaybookDiff], base: str, head: str) -> str:
    """A plan for a terminal."""
    shown = [d for d in diffs if d.status != "unchanged"]
    if not shown:
        return f"No semantic changes to playbooks between {base} and {head}.\n"
    out = [f"Changes from {base} to {head}:"]
    symbol = {"added": "+", "removed": "-", "changed": "~"}
    for diff in shown:
        out += ["", f"{symbol[diff.status]} {diff.path} ({diff.status})"]
        out += [f"    {line}" for c in diff.changes for line in change_lines(c)]
        if diff.approvals:
            out.append("  approvals:")
            out += [f"    {approval_line(a)}" for a in diff.approvals]
        if diff.impact is not None:
            out.append("  impact on fixtures:")
            out += [f"    {line}" for line in impact_lines(diff.impact, fixtures=True)]
        if diff.export is not None:
            out.append("  impact on the export:")
            out += [f"    {line}" for line in impact_lines(diff.export)]
        if diff.impact_note:
            out.append(f"  impact: {diff.impact_note}")
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _matrix_md(title: str, cells: Sequence[Transition]) -> list[str]:
    """A from→to table: rows are the base's values, columns the head's."""
    order = list(dict.fromkeys([t.before for t in cells] + [t.after for t in cells]))
    rows = [v for v in order if any(t.before == v for t in cells)]
    cols = [v for v in order if any(t.after == v for t in cells)]
    by_key = {(t.before, t.after): t for t in cells}
    lines = [f"**{title}** (rows: before, columns: after)", "",
             "| before \\ after | " + " | ".join(f"`{_md_cell(c)}`" for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for row in rows:
        values = []
        for col in cols:
            cell = by_key.get((row, col))
            values.append("" if cell is None else str(cell.count) if row == col
                          else f"**{cell.count}** ({', '.join(cell.examples)})")
        lines.append(f"| `{_md_cell(row)}` | " + " | ".join(values) + " |")
    return [*lines, ""]


def _summary(diff: PlaybookDiff) -> str:
    parts = [f"`{diff.path}` {diff.status}"]
    if diff.changes:
        sections = list(dict.fromkeys(c.section for c in diff.changes))
        parts.append(f"{len(diff.changes)} change(s) in {', '.join(sections)}")
    owners = sorted({o for a in diff.approvals for o in (*a.owners, *(a.head_owners or ()))})
    if owners:
        parts.append(f"approval: {', '.join(owners)}")
    if diff.unowned_sections:
        parts.append(f"**no owner** for {', '.join(diff.unowned_sections)}")
    if diff.impact is not None:
        parts.append(f"{diff.impact.changed} of {diff.impact.total} fixture(s) change")
    if diff.export is not None:
        moved = [f"{q.team} queue +{q.entered:,}/−{q.left:,}" for q in diff.export.queues
                 if q.entered or q.left]
        parts.append(f"{diff.export.changed:,} of {diff.export.total:,} export lead(s) change"
                     + (f" ({'; '.join(moved)})" if moved else ""))
        outcomes = diff.export.extra.get("outcomes")
        precision = [f"{t['team']} precision {_pct(t['before']['precision'])} → "
                     f"{_pct(t['after']['precision'])}" for t in (outcomes or {}).get("teams", [])
                     if t["before"]["precision"] != t["after"]["precision"]]
        if precision:
            parts.append("; ".join(precision))
    return " — ".join(parts)


def _columns_md(report: ImpactReport) -> list[str]:
    """Each decision column that moved, most leads first, with its commonest changes."""
    if not report.columns:
        return []
    lines = ["| column | leads | changes |", "|---|---:|---|"]
    lines += [f"| `{c.column}` | {c.changed:,} | {_md_cell(_moves(c))} |" for c in report.columns]
    return [*lines, ""]


def _queues_md(report: ImpactReport) -> list[str]:
    if not report.queues:
        return []
    lines = ["**Queues at weekly capacity** (before → after)", "",
             "| team | capacity | handoffs | queued | overflow | entered | left |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for q in report.queues:
        capacity = _capacity(q.capacity_before)
        if q.capacity_after != q.capacity_before:
            capacity += f" → {_capacity(q.capacity_after)}"
        lines.append(f"| `{q.team}` | {capacity} | {q.handoffs_before:,} → {q.handoffs_after:,} | "
                     f"{q.queued_before:,} → {q.queued_after:,} | {q.overflow_before:,} → "
                     f"{q.overflow_after:,} | **{q.entered:,}** | **{q.left:,}** |")
    return [*lines, ""]


def _impact_md(title: str, report: ImpactReport, fixtures: bool) -> list[str]:
    lines = [f"**{title}**: {_headline(report, fixtures)}.", ""]
    lines += _queues_md(report) + _outcomes_md(report.extra.get("outcomes")) + _columns_md(report)
    if any(t.before != t.after for t in report.stages):
        lines += _matrix_md("Stages", report.stages)
    if any(t.before != t.after for t in report.routes):
        lines += _matrix_md("Routes", report.routes)
    return lines


def _details_md(diff: PlaybookDiff) -> list[str]:
    lines = ["<details>", f"<summary><code>{diff.path}</code>: {diff.status}</summary>", ""]
    if diff.changes:
        plan = [line for c in diff.changes for line in change_lines(c)]
        if len(plan) > MAX_CHANGE_LINES:
            cut = len(plan) - MAX_CHANGE_LINES
            plan = [*plan[:MAX_CHANGE_LINES], f"# … {cut} more line(s): run `engine diff` for all"]
        lines += ["```diff", *plan, "```", ""]
    if diff.approvals:
        lines += ["| section | approvers |", "|---|---|"]
        lines += [f"| {a.section} | {_md_cell(approval_line(a).split(': ', 1)[1])} |"
                  for a in diff.approvals]
        lines.append("")
    if diff.export is not None:
        lines += _impact_md("Impact on the export", diff.export, fixtures=False)
    if diff.impact is not None:
        lines += _impact_md("Impact on fixtures", diff.impact, fixtures=True)
    if diff.impact_note:
        lines += [f"_Impact: {diff.impact_note}_", ""]
    return [*lines, "</details>", ""]


def render_markdown(diffs: Sequence[PlaybookDiff], base: str, head: str,
                    limit: int = MAX_MARKDOWN) -> str:
    """A PR comment: a summary line per playbook first, then collapsed details, size-capped."""
    shown = [d for d in diffs if d.status != "unchanged"]
    head_lines = [MARKER, f"### Playbook changes (`{base}` → `{head}`)", ""]
    if not shown:
        return "\n".join([*head_lines, "No semantic changes to playbooks."]) + "\n"
    text = "\n".join(head_lines) + "\n"
    for index, diff in enumerate(shown):
        line = f"- {_summary(diff)}\n"
        if len(text) + len(line) > limit // 2:
            text += f"- … and {len(shown) - index} more playbook(s)\n"
            break
        text += line
    text += "\n"
    note = ("\n_Output truncated at {limit:,} characters: run `engine diff {base} {head}` "
            "for the full plan._\n")
    for diff in shown:
        block = "\n".join(_details_md(diff)) + "\n"
        if len(text) + len(block) > limit - 200:
            text += note.format(limit=limit, base=base, head=head)
            break
        text += block
    return text


def render_json(diffs: Sequence[PlaybookDiff], base: str, head: str) -> str:
    """Every playbook's diff, unchanged ones included, for machines."""
    return json.dumps({"base": base, "head": head, "playbooks": [d.to_dict() for d in diffs]},
                      ensure_ascii=False, indent=2) + "\n"


RENDERERS: dict[str, Callable[[Sequence[PlaybookDiff], str, str], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
