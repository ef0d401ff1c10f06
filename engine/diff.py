"""Two versions of a playbook → what changed, who must approve it, whom it affects.

Like a Terraform plan for rules: the loaded models are compared, never the text, so
comments, key order and whitespace never count. Rule lists are keyed by ``id``: a
rule edited in place is a change to that rule, and in the first-match-wins sections
(:data:`ORDERED`) a reordering is reported as a move, because it changes decisions.
Changes form an edit script of frozen dataclasses, as in sqlglot's ``diff.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from engine.compile import CompiledPlaybook
from engine.diff_impact import Case, ImpactReport, Observer, QueueCut, Transition, impact
from engine.model import Metadata

__all__ = ["Case", "ImpactReport", "Transition", "impact"]  # impact lives in engine.diff_impact

#: List sections whose items carry an ``id`` (compared by id, not by position).
KEYED: frozenset[str] = frozenset({"exclusions", "stages", "handoffs", "scoring.fit.rules"})
#: Keyed sections where the first match wins, so the order of rules is behaviour.
ORDERED: frozenset[str] = frozenset({"exclusions", "stages", "handoffs"})

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Change:
    """One edit. ``path`` is where, e.g. ``stages[promising].entry``; ``section`` the top key."""

    section: str
    path: str
    op: ClassVar[str] = "?"
    kind: ClassVar[str] = "change"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: op, kind, section, path and the values of this kind of change."""
        data: dict[str, Any] = {"op": self.op, "kind": self.kind, "section": self.section,
                                "path": self.path}
        for item in fields(self)[2:]:
            value = getattr(self, item.name)
            data[item.name] = list(value) if isinstance(value, tuple) else value
        return data


@dataclass(frozen=True)
class Added(Change):
    """Something the head version has and the base had not."""

    value: Any = None
    op: ClassVar[str] = "+"
    kind: ClassVar[str] = "added"


@dataclass(frozen=True)
class Removed(Change):
    """Something the base version had and the head has not."""

    value: Any = None
    op: ClassVar[str] = "-"
    kind: ClassVar[str] = "removed"


@dataclass(frozen=True)
class Updated(Change):
    """A value that differs: ``before`` → ``after``."""

    before: Any = None
    after: Any = None
    op: ClassVar[str] = "~"
    kind: ClassVar[str] = "changed"


@dataclass(frozen=True)
class ListItems(Change):
    """A list's items changed: counts and a capped sample, never the whole list.

    A list file can hold thousands of lines, and the plan is posted as a PR comment;
    the counts say how big the change is, the sample what it looks like.
    """

    added: int = 0
    removed: int = 0
    added_sample: tuple[str, ...] = ()
    removed_sample: tuple[str, ...] = ()
    op: ClassVar[str] = "~"
    kind: ClassVar[str] = "items"


#: Items of a changed list shown per direction, and the characters shown of each.
LIST_SAMPLE = 5
LIST_ITEM_CHARS = 80


def _sample(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(i if len(i) <= LIST_ITEM_CHARS else i[: LIST_ITEM_CHARS - 1] + "…"
                 for i in items[:LIST_SAMPLE])


def list_items(section: str, path: str, before: Sequence[str], after: Sequence[str]) -> ListItems:
    """The change from ``before`` to ``after`` (sorted item lists) as counts and samples."""
    old, new = set(before), set(after)
    added = [i for i in after if i not in old]
    removed = [i for i in before if i not in new]
    return ListItems(section, path, added=len(added), removed=len(removed),
                     added_sample=_sample(added), removed_sample=_sample(removed))


@dataclass(frozen=True)
class Moved(Change):
    """A rule whose position changed in a first-match-wins section (positions are 1-based)."""

    before: int = 0
    after: int = 0
    op: ClassVar[str] = "~"
    kind: ClassVar[str] = "moved"


def _whole(value: Any) -> Any:
    """``20.0`` → ``20``: points are floats in the model, but written (and read) as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def snapshot(cp: CompiledPlaybook) -> dict[str, Any]:
    """The playbook as comparable data: the model, with list files replaced by their items."""
    data: dict[str, Any] = _whole(cp.playbook.model_dump(mode="json"))
    data["lists"] = {
        name: {"file": value if isinstance(value, str) else None,
               "items": sorted(cp.lists.get(name, frozenset()))}
        for name, value in data["lists"].items()
    }
    return data


def _join(path: str, key: str) -> str:
    step = key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False)
    if not path:
        return step
    return f"{path}.{step}" if _PLAIN_KEY.match(key) else f"{path}[{step}]"


def diff_data(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[Change]:
    """The edit script from ``base`` to ``head`` (two :func:`snapshot` s), in document order."""
    changes: list[Change] = []
    _diff_mapping(base, head, "", "", changes)
    return changes


def _diff_mapping(base: Mapping[str, Any], head: Mapping[str, Any], path: str, shape: str,
                  out: list[Change]) -> None:
    keys = list(base) + [k for k in head if k not in base]
    for key in keys:
        where, key_shape = _join(path, key), f"{shape}.{key}" if shape else key
        section = where.split(".", 1)[0].split("[", 1)[0]
        if shape == "lists" and (key not in head or key not in base):
            out.extend(_whole_list(base.get(key), head.get(key), where, section))
        elif key not in head:
            out.append(Removed(section, where, value=base[key]))
        elif key not in base:
            out.append(Added(section, where, value=head[key]))
        else:
            _diff_value(base[key], head[key], where, key_shape, section, out)


def _diff_value(before: Any, after: Any, path: str, shape: str, section: str,
                out: list[Change]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        _diff_mapping(before, after, path, shape, out)
    elif shape in KEYED and isinstance(before, list) and isinstance(after, list):
        _diff_keyed(before, after, path, shape, section, out)
    elif shape.startswith("lists.") and shape.endswith(".items"):
        out.append(list_items(section, path, before, after))
    else:
        out.append(Updated(section, path, before=before, after=after))


def _whole_list(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, path: str,
                section: str) -> list[Change]:
    """A list added or removed: where it comes from, then its items as counts and a sample."""
    entry = after if after is not None else before
    assert entry is not None
    file = {"file": entry["file"]} if entry["file"] is not None else {"inline": True}
    head = Added(section, path, value=file) if after is not None else Removed(section, path,
                                                                                value=file)
    items = list_items(section, f"{path}.items", before["items"] if before else [],
                       after["items"] if after else [])
    return [head, items]


def _diff_keyed(before: list[dict[str, Any]], after: list[dict[str, Any]], path: str, shape: str,
                section: str, out: list[Change]) -> None:
    old = {item["id"]: item for item in before}
    new = {item["id"]: item for item in after}
    for rule_id, item in old.items():
        where = f"{path}[{rule_id}]"
        if rule_id not in new:
            out.append(Removed(section, where, value=item))
        else:
            _diff_mapping(item, new[rule_id], where, shape, out)
    out.extend(Added(section, f"{path}[{rule_id}]", value=item)
               for rule_id, item in new.items() if rule_id not in old)
    if shape in ORDERED:
        out.extend(_moves(list(old), list(new), path, section))


def _moves(old: list[str], new: list[str], path: str, section: str) -> list[Moved]:
    """Rules kept on both sides but out of their relative order (not on a longest common run)."""
    common_old = [i for i in old if i in new]
    common_new = [i for i in new if i in old]
    stay = _lcs(common_old, common_new)
    return [Moved(section, f"{path}[{i}]", before=old.index(i) + 1, after=new.index(i) + 1)
            for i in common_new if i not in stay]


def _lcs(a: Sequence[str], b: Sequence[str]) -> set[str]:
    """Items of a longest common subsequence (rule lists are short: quadratic is fine)."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = (table[i + 1][j + 1] + 1 if a[i] == b[j]
                           else max(table[i + 1][j], table[i][j + 1]))
    kept, i, j = set(), 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            kept.add(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


# --- approvals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """A changed section and who must approve it: the base's owners (and the head's if different)."""

    section: str
    owners: tuple[str, ...]
    head_owners: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"section": self.section, "owners": list(self.owners),
                "head_owners": None if self.head_owners is None else list(self.head_owners)}


def touched_sections(changes: Iterable[Change]) -> list[str]:
    """Sections a change touches; editing ``metadata.owners.X`` touches section X too."""
    found: dict[str, None] = {}
    for change in changes:
        found[change.section] = None
        if change.path.startswith("metadata.owners"):
            owned = change.path.removeprefix("metadata.owners").lstrip(".")
            if owned:
                found[owned.split(".", 1)[0]] = None
            else:  # the whole owners mapping added or removed
                for value in (getattr(change, "value", None), getattr(change, "before", None),
                              getattr(change, "after", None)):
                    if isinstance(value, dict):
                        found.update(dict.fromkeys(value))
    return list(found)


def approvals(changes: Sequence[Change], base: Metadata, head: Metadata) -> list[Approval]:
    """Per touched section, in document order, the base's owners (``default`` when it names none).

    The base's owners decide, so a pull request cannot approve itself by editing
    ``metadata.owners``; the head's are shown when they differ.
    """
    result = []
    for section in touched_sections(changes):
        owners, after = tuple(base.owners_of(section)), tuple(head.owners_of(section))
        result.append(Approval(section, owners, after if after != owners else None))
    return result


def approvers_of(change: Change, base: Metadata) -> list[str]:
    """Who must approve one change: the base's owners of every section it touches."""
    found: dict[str, None] = {}
    for section in touched_sections([change]):
        found.update(dict.fromkeys(base.owners_of(section)))
    return list(found)


# --- one playbook, both sides ------------------------------------------------------------


@dataclass(frozen=True)
class PlaybookDiff:
    """Everything ``engine diff`` reports about one playbook file.

    ``impact`` is over the fixtures (whole timelines), ``export`` over the leads of an
    export (``--leads``) with each team's queue at capacity.
    """

    path: str
    status: str  # added | removed | changed | unchanged
    changes: tuple[Change, ...] = ()
    approvals: tuple[Approval, ...] = ()
    impact: ImpactReport | None = None
    impact_note: str | None = None
    export: ImpactReport | None = None
    approvers: tuple[tuple[str, ...], ...] = ()  # per change, who must approve it
    version: tuple[str | None, str | None] = (None, None)  # metadata.version, base → head

    @property
    def owned_change(self) -> bool:
        """Whether any changed section has owners (``--fail-on-owner-change``)."""
        return any(a.owners or a.head_owners for a in self.approvals)

    @property
    def unowned_sections(self) -> list[str]:
        """Changed sections nobody owns on the base side: nobody could approve them."""
        return [a.section for a in self.approvals if not a.owners]

    @property
    def semantic(self) -> bool:
        """Whether decisions may differ: a change outside ``metadata`` (owners, version, text)."""
        return any(c.section != "metadata" for c in self.changes)

    def required_approvers(self) -> list[str]:
        """Everyone whose approval this playbook's change needs (the base's owners), sorted."""
        return sorted({o for a in self.approvals for o in a.owners})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        changes = [c.to_dict() for c in self.changes]
        for data, who in zip(changes, self.approvers, strict=False):
            data["approvers"] = list(who)
        return {"path": self.path, "status": self.status,
                "version": {"before": self.version[0], "after": self.version[1]},
                "changes": changes,
                "approvals": [a.to_dict() for a in self.approvals],
                "required_approvers": self.required_approvers(),
                "impact": self.impact.to_dict() if self.impact else None,
                "export_impact": self.export.to_dict() if self.export else None,
                "impact_note": self.impact_note}


def diff_playbooks(path: str, base: CompiledPlaybook | None, head: CompiledPlaybook | None,
                   cases: Iterable[Case] | None = None,
                   export_cases: Iterable[Case] | None = None,
                   progress: Callable[[int], None] | None = None,
                   measure: Callable[[QueueCut], Sequence[Observer]] | None = None) -> PlaybookDiff:
    """Compare one playbook's two versions; either may be missing (added or removed).

    ``cases`` are fixtures (their whole timelines compared); ``export_cases`` the leads
    of an export, whose queues are also cut at capacity on both sides. ``measure`` makes
    the export's further observers from that cut (outcome impact, :mod:`engine.diff_outcomes`).
    """
    if base is None and head is None:
        raise ValueError("a playbook diff needs at least one side")
    if base is None or head is None:
        present = base or head
        assert present is not None
        meta = present.playbook.metadata
        status = "added" if base is None else "removed"
        owned = tuple(Approval(s, tuple(o)) for s, o in meta.owners.items())
        version = (None, meta.version) if base is None else (meta.version, None)
        return PlaybookDiff(path, status, approvals=owned, version=version)
    versions = (base.playbook.metadata.version, head.playbook.metadata.version)
    changes = tuple(diff_data(snapshot(base), snapshot(head)))
    if not changes:
        return PlaybookDiff(path, "unchanged", version=versions)
    old_meta, new_meta = base.playbook.metadata, head.playbook.metadata
    needed = tuple(approvals(changes, old_meta, new_meta))
    who = tuple(tuple(approvers_of(c, old_meta)) for c in changes)
    report = impact(base, head, cases) if cases is not None else None
    export = None
    if export_cases is not None:
        cut = QueueCut(base, head)
        export = impact(base, head, export_cases, queues=cut, progress=progress,
                        observers=measure(cut) if measure is not None else ())
    return PlaybookDiff(path, "changed", changes, needed, report, None, export, who, versions)
