"""The static types of the expression language.

Types are checked once, before a playbook runs, so that "string compared with
number" is a diagnostic at ``validate`` time rather than a silent False per lead.
Nullability is not tracked: every value may be None at run time (see the null
semantics in :mod:`engine.expr`), so ``null`` and ``any`` are compatible with all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Type:
    """A type: a ``kind`` plus the element type of a list or the name of a record."""

    kind: str
    elem: Type | None = None
    record: str | None = None

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list[{self.elem}]"
        if self.kind == "record":
            return f"record {self.record}"
        return self.kind

    @property
    def loose(self) -> bool:
        """True for ``null`` and ``any``, which fit wherever a value is expected."""
        return self.kind in ("null", "any")


NUMBER = Type("number")
STRING = Type("string")
BOOL = Type("bool")
STAGE = Type("stage")
DURATION = Type("duration")
DATETIME = Type("datetime")
NULL = Type("null")
ANY = Type("any")
LIST_STRING = Type("list", STRING)
LIST_NUMBER = Type("list", NUMBER)
LIST_ANY = Type("list", ANY)

_BY_NAME = {
    t.kind if t.kind != "list" else str(t): t
    for t in (NUMBER, STRING, BOOL, STAGE, DURATION, DATETIME, NULL, ANY)
}
_BY_NAME.update({str(t): t for t in (LIST_STRING, LIST_NUMBER, LIST_ANY)})

#: Lead field types a vocabulary may declare.
LEAD_FIELD_TYPES = ("string", "number", "bool", "datetime")


def parse_type(spelling: str) -> Type:
    """Return the type spelled ``spelling`` (``"number"``, ``"list[string]"``, ...)."""
    try:
        return _BY_NAME[spelling]
    except KeyError:
        raise ValueError(f"unknown type {spelling!r}") from None


def record(name: str) -> Type:
    """The type of a record name such as ``lead`` or ``lists``."""
    return Type("record", record=name)


def fits(actual: Type, expected: Type) -> bool:
    """Whether a value of ``actual`` may be used where ``expected`` is required."""
    if actual.loose or expected.loose:
        return True
    if actual.kind == "list" and expected.kind == "list":
        assert actual.elem is not None and expected.elem is not None
        return fits(actual.elem, expected.elem)
    return actual == expected


def unify(a: Type, b: Type) -> Type | None:
    """The common type of two branches or list elements, or None if they clash."""
    if a.kind == "null" or a == ANY:
        return b if a.kind == "null" else ANY
    if b.kind == "null" or b == ANY:
        return a if b.kind == "null" else ANY
    if a.kind == "list" and b.kind == "list":
        assert a.elem is not None and b.elem is not None
        elem = unify(a.elem, b.elem)
        return None if elem is None else Type("list", elem)
    return a if a == b else None
