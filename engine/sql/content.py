"""Content ids → catalogue keys, stages and engagement points, as SQL ``CASE`` expressions.

Mirrors ``engine.compile._matcher`` and ``_weights``: an exact id wins over globs,
among globs the first declared wins; a glob becomes ``LIKE`` (``*`` → ``%``,
``?`` → ``_``). Bracket globs (``[a-z]``) have no portable ``LIKE`` form and are
rejected rather than approximated.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from sqlglot import exp

from engine.model import EventPoints, Playbook
from engine.sql.expressions import NoSqlForm, lit

_GLOB = "*?["


def _like(column: exp.Expr, glob: str) -> exp.Expr:
    if "[" in glob:
        raise NoSqlForm(f"content pattern `{glob}`: bracket globs have no SQL form in this backend")
    escaped = any(ch in glob for ch in "%_\\")
    text = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") if escaped else glob
    like: exp.Expr = exp.Like(this=column.copy(), expression=lit(text.replace("*", "%").replace("?", "_")))
    if escaped:
        like = exp.Escape(this=like, expression=lit("\\"))
    return like


def matched_key(column: exp.Expr, patterns: Sequence[str]) -> exp.Expr:
    """The pattern a content id matches (exact first, then the first glob), else NULL."""
    ifs: list[exp.Expr] = []
    if patterns:
        exact = exp.In(this=column.copy(), expressions=[lit(p) for p in patterns])
        ifs.append(exp.If(this=exact, true=column.copy()))
    for pattern in patterns:
        if any(ch in pattern for ch in _GLOB):
            ifs.append(exp.If(this=_like(column, pattern), true=lit(pattern)))
    if not ifs:
        return exp.null()
    return exp.Case(ifs=ifs)


def content_stage(playbook: Playbook, column: exp.Expr) -> exp.Expr:
    """The stage the catalogue maps a content id to, else NULL."""
    patterns = list(playbook.content)
    staged = {k: v.stage for k, v in playbook.content.items() if v.stage}
    if not staged:
        return exp.null()
    key = matched_key(column, patterns)
    return exp.Case(this=key, ifs=[exp.If(this=lit(k), true=lit(s)) for k, s in staged.items()])


def _points_by_content(
    content_column: exp.Expr, patterns: Sequence[str], table: dict[str, float], default: float
) -> exp.Expr:
    """One flat CASE: an exact id first (whatever glob it also matches), then globs in order.

    The same answer as looking up ``matched_key`` in ``table``, without a CASE over a
    CASE per event. NULL content compares unknown and falls to ``default``; empty content
    is no content (as in Python), which matters only if '' could match a pattern.
    """
    ifs: list[exp.Expr] = []
    if any(p == "" or fnmatch.fnmatchcase("", p) for p in patterns):
        ifs.append(exp.If(this=exp.EQ(this=content_column.copy(), expression=lit("")), true=lit(default)))
    for pattern in patterns:
        test = exp.EQ(this=content_column.copy(), expression=lit(pattern))
        ifs.append(exp.If(this=test, true=lit(table.get(pattern, default))))
    for pattern in patterns:
        if any(ch in pattern for ch in _GLOB):
            ifs.append(exp.If(this=_like(content_column, pattern), true=lit(table.get(pattern, default))))
    return exp.Case(ifs=ifs, default=lit(default))


def weight(playbook: Playbook, type_column: exp.Expr, content_column: exp.Expr) -> exp.Expr:
    """Points of one event before decay: per type, with per-content overrides."""
    engagement = playbook.scoring.engagement
    if engagement is None or not engagement.points:
        return lit(0.0)
    ifs: list[exp.Expr] = []
    for event_type, value in engagement.points.items():
        if not isinstance(value, EventPoints):
            ifs.append(exp.If(this=lit(event_type), true=lit(float(value))))
            continue
        if value.content is None or not value.content:
            ifs.append(exp.If(this=lit(event_type), true=lit(value.points)))
            continue
        if value.content == "catalogue":
            patterns = list(playbook.content)
            table = {k: v.points for k, v in playbook.content.items() if v.points is not None}
        else:
            patterns = list(value.content)
            table = value.content_points()
        by_content = (
            _points_by_content(content_column, patterns, table, value.points) if table else lit(value.points)
        )
        ifs.append(exp.If(this=lit(event_type), true=by_content))
    return exp.Case(this=type_column.copy(), ifs=ifs, default=lit(0.0))


def cap_bucket(playbook: Playbook, type_column: exp.Expr, content_column: exp.Expr) -> exp.Expr:
    """``CompiledPlaybook.cap_bucket`` per event: which capped content glob of its type gave it
    its points (1-based), else 0 — the same matching as ``weight`` (exact first, then globs)."""
    engagement = playbook.scoring.engagement
    ifs: list[exp.Expr] = []
    for event_type, value in (engagement.points.items() if engagement is not None else ()):
        if not isinstance(value, EventPoints) or not value.content_caps():
            continue
        numbers = {glob: float(i) for i, glob in enumerate(value.content_caps(), 1)}
        by_content = _points_by_content(content_column, list(value.content_points()), numbers, 0.0)
        ifs.append(exp.If(this=lit(event_type), true=by_content))
    if not ifs:
        return lit(0.0)
    return exp.Case(this=type_column.copy(), ifs=ifs, default=lit(0.0))
