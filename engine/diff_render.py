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

#: Marks the PR comment so CI finds and updates it instead of posting another.
MARKER = "<!-- engine-diff -->"
#: GitHub rejects comments over 65,536 characters; stay well below.
MAX_MARKDOWN = 60_000


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


def impact_lines(report: ImpactReport) -> list[str]:
    """The impact as text: totals, then each non-diagonal cell of both matrices."""
    lines = [f"{report.changed} of {report.total} lead(s) change decision"]
    for name, cells in (("stage", report.stages), ("route", report.routes)):
        for cell in _changed_cells(cells):
            lines.append(f"  {name} {cell.before} → {cell.after}: {cell.count} "
                         f"(e.g. {', '.join(cell.examples)})")
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
            out.append("  impact:")
            out += [f"    {line}" for line in impact_lines(diff.impact)]
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
    if diff.impact is not None:
        parts.append(f"{diff.impact.changed} of {diff.impact.total} fixture lead(s) change decision")
    return " — ".join(parts)


def _details_md(diff: PlaybookDiff) -> list[str]:
    lines = ["<details>", f"<summary><code>{diff.path}</code>: {diff.status}</summary>", ""]
    if diff.changes:
        lines += ["```diff", *[line for c in diff.changes for line in change_lines(c)], "```", ""]
    if diff.approvals:
        lines += ["| section | approvers |", "|---|---|"]
        lines += [f"| {a.section} | {_md_cell(approval_line(a).split(': ', 1)[1])} |"
                  for a in diff.approvals]
        lines.append("")
    if diff.impact is not None:
        lines += [f"{diff.impact.changed} of {diff.impact.total} lead(s) change decision.", ""]
        if diff.impact.changed:
            lines += _matrix_md("Stages", diff.impact.stages)
            lines += _matrix_md("Routes", diff.impact.routes)
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
