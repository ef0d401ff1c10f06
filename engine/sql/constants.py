"""Which of the decisions query's output columns hold one value for every lead.

A playbook without personas, accounts, recycle rules, SLAs or nurture tracks still
outputs their columns: 15 of the 29 for ``bench-reference.yaml``, each the same text on
every row. Stored in the decisions table they cost a column of 1M values each (0.4 s of
CPU at 1M leads, issue #17); :func:`engine.sql.decisions.make_table` keeps them out of
the table and adds them back as literals in a view.

The query's layers are CTEs that each select ``*`` from the one before and add columns,
so a column is followed back to the layer that defines it and that expression folded:
literals, casts, ``CASE``, ``NOT``, ``AND``/``OR``, ``IS NULL`` and ``COALESCE`` over
other constants. Anything else is "not known", and the column stays in the table: the
fold may miss a constant, never invent one.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

#: A folded expression's value; NOT_KNOWN when it may differ between rows.
NOT_KNOWN = object()
_DEPTH = 200  # a reference chain longer than this is not followed (no query of ours is near it)


def constant_columns(tree: exp.Select) -> dict[str, Any]:
    """Output column → its one value (``None`` for SQL NULL, a ``str`` or a ``bool``)
    for the columns of ``tree``'s final select that every row has the same value in."""
    ctes = {cte.alias: cte.this for cte in tree.ctes if isinstance(cte.this, exp.Select)}
    folder = _Folder(ctes)
    found = {}
    source = _from_name(tree)
    for projection in tree.expressions:
        value = folder.fold(projection.unalias(), source, 0)
        if value is not NOT_KNOWN:
            found[projection.alias_or_name] = value
    return found


def _from_name(select: exp.Select) -> str | None:
    """The one table or CTE ``select`` reads (None when it joins or reads a subquery)."""
    source = select.args.get("from_")
    if source is None or select.args.get("joins") or not isinstance(source.this, exp.Table):
        return None
    return source.this.name


class _Folder:
    def __init__(self, ctes: dict[str, exp.Select]) -> None:
        self.ctes = ctes
        self.memo: dict[tuple[str, str], Any] = {}

    def column(self, name: str, layer: str | None, depth: int) -> Any:
        """The value of column ``name`` as layer ``layer`` (a CTE) gives it."""
        if layer is None or layer not in self.ctes or depth > _DEPTH:
            return NOT_KNOWN
        key = (layer, name)
        if key not in self.memo:
            self.memo[key] = NOT_KNOWN  # a cycle is not known
            self.memo[key] = self._column(name, self.ctes[layer], depth)
        return self.memo[key]

    def _column(self, name: str, select: exp.Select, depth: int) -> Any:
        source = _from_name(select)
        for projection in select.expressions:
            if isinstance(projection, exp.Star):
                continue
            if projection.alias_or_name == name:
                return self.fold(projection.unalias(), source, depth + 1)
        if any(isinstance(p, exp.Star) for p in select.expressions):
            return self.column(name, source, depth + 1)
        return NOT_KNOWN

    def fold(self, e: exp.Expr, source: str | None, depth: int) -> Any:
        """``e``'s one value over every row of ``source``, or NOT_KNOWN."""
        if isinstance(e, exp.Paren):
            return self.fold(e.this, source, depth)
        if isinstance(e, exp.Null):
            return None
        if isinstance(e, exp.Boolean):
            return bool(e.this)
        if isinstance(e, exp.Literal):
            return e.this if e.is_string else NOT_KNOWN  # numbers: their text is DuckDB's to spell
        if isinstance(e, exp.Cast):
            value = self.fold(e.this, source, depth)
            return value if value is None else NOT_KNOWN  # a NULL stays NULL; other casts change text
        if isinstance(e, exp.Column):
            return self.column(e.name, source, depth + 1) if not e.table else NOT_KNOWN
        if isinstance(e, exp.Not):
            value = self.fold(e.this, source, depth)
            if value is NOT_KNOWN or not _is_truth(value):
                return NOT_KNOWN
            return None if value is None else not value
        if isinstance(e, exp.Is) and isinstance(e.expression, exp.Null):
            value = self.fold(e.this, source, depth)
            return NOT_KNOWN if value is NOT_KNOWN else value is None
        if isinstance(e, (exp.And, exp.Or)):
            return self._logic(e, source, depth)
        if isinstance(e, exp.Coalesce):
            for part in [e.this, *e.expressions]:
                value = self.fold(part, source, depth)
                if value is not None:
                    return value  # a known value, or NOT_KNOWN before any known one
            return None
        if isinstance(e, exp.Case):
            return self._case(e, source, depth)
        return NOT_KNOWN

    def _logic(self, e: exp.And | exp.Or, source: str | None, depth: int) -> Any:
        """SQL's three-valued AND / OR: a FALSE (AND) or TRUE (OR) side decides alone."""
        decisive = isinstance(e, exp.Or)
        left, right = self.fold(e.this, source, depth), self.fold(e.expression, source, depth)
        if left is decisive or right is decisive:
            return decisive
        if NOT_KNOWN in (left, right) or not (_is_truth(left) and _is_truth(right)):
            return NOT_KNOWN
        return None if None in (left, right) else not decisive

    def _case(self, e: exp.Case, source: str | None, depth: int) -> Any:
        """The branch every row takes, when each condition before it is known."""
        subject = e.this
        known = self.fold(subject, source, depth) if subject is not None else None
        if subject is not None and (known is NOT_KNOWN or known is None):
            return NOT_KNOWN if known is NOT_KNOWN else self._default(e, source, depth)
        for branch in e.args.get("ifs") or []:
            test = self.fold(branch.this, source, depth)
            if test is NOT_KNOWN:
                return NOT_KNOWN
            if subject is not None:
                taken = test is not None and type(test) is type(known) and test == known
            elif not _is_truth(test):
                return NOT_KNOWN
            else:
                taken = test is True
            if taken:
                return self.fold(branch.args["true"], source, depth)
        return self._default(e, source, depth)

    def _default(self, e: exp.Case, source: str | None, depth: int) -> Any:
        default = e.args.get("default")
        return None if default is None else self.fold(default, source, depth)


def _is_truth(value: Any) -> bool:
    """A SQL truth value: TRUE, FALSE or NULL (a text is not one)."""
    return value is None or isinstance(value, bool)
