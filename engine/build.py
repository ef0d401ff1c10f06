"""Turn a loaded YAML document into a :class:`Playbook`, or positioned diagnostics.

pydantic reports errors by location tuples; this module maps each one back to the
line and column of the YAML node and rewrites the message for a playbook author
(unknown keys get a "did you mean"). All errors are reported, not just the first.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.diagnostics import Diagnostic, did_you_mean
from engine.load import Document
from engine.model import DURATION_PATTERN, ID_PATTERN, Playbook


def _model_in(annotation: Any) -> Any:
    """Strip Optional/Annotated/containers down to what the next path part indexes."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
            if typing.get_origin(arg) in (list, dict):
                return arg
        return None
    return annotation


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return ()


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model at ``loc``, for "did you mean" on unknown keys."""
    current: Any = Playbook
    for part in loc:
        members = {getattr(a, "__name__", ""): a for a in _union_members(current)}
        if isinstance(part, str) and part in members:
            current = members[part]
            continue
        current = _model_in(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _model_in(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _doc_path(doc: Document, loc: tuple[Any, ...]) -> list[str | int]:
    """Keep the parts of a pydantic ``loc`` that name real nodes (drop union tags)."""
    node: Any = doc.data
    path: list[str | int] = []
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
    return path


_TYPE_ERRORS = ("_type", "_parsing")
#: Type errors, which strict models raise for `true` as points or `"5"` as a number.
_TYPES = {
    "float_type": ("a number", "write a number such as `1` or `2.5`, without quotes"),
    "int_type": ("a whole number", "write a whole number such as `2`, without quotes"),
    "bool_type": ("true or false", "write `true` or `false`, without quotes"),
    "string_type": ("text", "quote it if it is meant as text, e.g. \"1.0\""),
}
#: Checks the JSON Schema cannot state (see engine.model): their own codes, so that
#: "E-SCHEMA" means exactly what an editor with the schema also reports.
_VALUE_CODES = {"timezone": "E-TIMEZONE", "duration": "E-DURATION"}


def _friendly(error: Any) -> tuple[str, str | None]:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == ID_PATTERN:
            return (f"{value!r} is not a valid id",
                    "use lower-case letters, digits, `_` or `-`, starting with a letter")
        if ctx.get("pattern") == DURATION_PATTERN:
            return (f"{value!r} is not a duration",
                    "write a whole number and a unit: s, m, h, d or w, e.g. `14d`")
        return f"{value!r} does not have the expected form ({ctx.get('pattern')})", None
    if kind in _TYPES:
        written = ("a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list)
                   else json.dumps(value, ensure_ascii=False))
        expected, hint = _TYPES[kind]
        return f"{written} is not {expected}", hint if not isinstance(value, dict | list) else None
    if kind == "greater_than" and error["loc"] and error["loc"][-1] == "cap":
        return (f"a cap must be above {ctx.get('gt'):g}, got {value!r}",
                "a cap is the most a score, a rule or an event type adds; to add nothing, "
                "set its points to 0 or remove the rule")
    if kind == "literal_error":
        return f"{value!r} is not allowed here: expected {ctx.get('expected')}", None
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return message, None


def build(doc: Document) -> tuple[Playbook | None, list[Diagnostic]]:
    """Validate ``doc`` against the model; return the playbook or every error found."""
    try:
        return Playbook.model_validate(doc.data), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, int, int, str]] = set()
    paths = [tuple(_doc_path(doc, tuple(e["loc"]))) for e in errors]
    for error, path_key in zip(errors, paths, strict=True):
        loc = tuple(error["loc"])
        path = list(path_key)
        kind = error["type"]
        # A union of a scalar and a mapping: when a mapping was written, the
        # mapping member's errors are the useful ones; drop "should be a number" —
        # but only when such an error exists: a mapping where no member takes one
        # (`lists: {x: {}}`) must still be reported, never an invalid file in silence.
        if isinstance(error.get("input"), dict) and kind.endswith(_TYPE_ERRORS) and any(
            other[: len(path_key)] == path_key and not e["type"].endswith(_TYPE_ERRORS)
            for other, e in zip(paths, errors, strict=True)
        ):
            continue
        if kind == "extra_forbidden":
            key = str(loc[-1])
            options = _allowed_keys(loc[:-1])
            hint = did_you_mean(key, options) or (
                f"allowed keys: {', '.join(options)}" if options else None
            )
            diagnostic = doc.diagnostic(path, "E-SCHEMA-UNKNOWN-KEY", f"unknown key `{key}`",
                                        hint=hint, key=True)
        elif kind == "missing":
            diagnostic = doc.diagnostic(path, "E-SCHEMA-MISSING",
                                        f"missing required key `{loc[-1]}`", key=True)
        else:
            message, hint = _friendly(error)
            code = _VALUE_CODES.get(kind, "E-SCHEMA")
            diagnostic = doc.diagnostic(path, code, message, hint=hint)
        # Unions report one error per member; one per place and code is enough.
        marker = (diagnostic.path, diagnostic.line, diagnostic.col, diagnostic.code)
        if marker not in seen:
            seen.add(marker)
            diagnostics.append(diagnostic)
    if not diagnostics:  # never an invalid playbook without a word: report pydantic's first
        message, hint = _friendly(errors[0])
        diagnostics.append(doc.diagnostic(paths[0], "E-SCHEMA", message, hint=hint))
    return None, diagnostics
