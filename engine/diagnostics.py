"""One diagnostic type for every stage, and the renderers that print it.

Diagnostics are data: stages collect them and return them; only the CLI prints.
Every renderer reads the same list, so ``--format`` can never change *what* is
reported, only how (text for people, json for machines, github for Actions
annotations, sarif for code-scanning tools).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is; ``--strict`` promotes warnings to failures."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A finding at a place in a file, written for the person who must fix it.

    ``path`` is the location inside the playbook as a user reads it
    (``stages[2].entry``); ``line``/``col`` are 1-based and point at the exact
    character when known (inside an expression string, not just at its key).
    """

    file: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = Severity.ERROR
    path: str = ""
    hint: str | None = None
    end_col: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


class EngineError(Exception):
    """An error the user caused and can fix; the CLI prints it without a traceback.

    Carries diagnostics when it has a position to show.
    """

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = list(diagnostics)


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """A "did you mean `x`?" hint naming the closest option, if one is close enough.

    Examples:
        >>> did_you_mean("promsing", ["lead", "promising"])
        'did you mean `promising`?'
    """
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def format_path(parts: Iterable[str | int]) -> str:
    """Render a node path the way a reader writes it: ``stages[2].entry``.

    Examples:
        >>> format_path(["stages", 2, "entry"])
        'stages[2].entry'
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Deterministic order: by file, line, column, code, message."""
    return sorted(diagnostics)


def has_failures(diagnostics: Iterable[Diagnostic], strict: bool = False) -> bool:
    """True when the diagnostics should fail a run (warnings count under ``strict``)."""
    failing = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    return any(d.severity in failing for d in diagnostics)


def render_text(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """``file:line:col: severity[code] message`` plus the source line, a caret and the hint."""
    lines: list[str] = []
    sources = sources or {}
    for d in diagnostics:
        where = f" ({d.path})" if d.path else ""
        lines.append(f"{d.file}:{d.line}:{d.col}: {d.severity.value}[{d.code}] {d.message}{where}")
        text = sources.get(d.file)
        if text is not None and d.line >= 1:
            source_lines = text.splitlines()
            if d.line <= len(source_lines):
                src = source_lines[d.line - 1]
                width = max(1, (d.end_col or d.col + 1) - d.col)
                lines.append(f"    {src}")
                lines.append("    " + " " * max(0, d.col - 1) + "^" * width)
        if d.hint:
            lines.append(f"    hint: {d.hint}")
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def render_json(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """A JSON document: ``{"diagnostics": [...], "errors": n, "warnings": n}``."""
    payload = {
        "diagnostics": [d.to_dict() for d in diagnostics],
        "errors": sum(d.severity is Severity.ERROR for d in diagnostics),
        "warnings": sum(d.severity is Severity.WARNING for d in diagnostics),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _escape_github(value: str, property_value: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def render_github(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """GitHub Actions workflow commands, so findings annotate the changed lines of a PR."""
    out = []
    for d in diagnostics:
        level = {"error": "error", "warning": "warning", "info": "notice"}[d.severity.value]
        props = ",".join(
            [
                f"file={_escape_github(d.file, True)}",
                f"line={d.line}",
                f"col={d.col}",
                f"title={_escape_github(d.code, True)}",
            ]
        )
        message = d.message + (f" (hint: {d.hint})" if d.hint else "")
        out.append(f"::{level} {props}::{_escape_github(message)}")
    return "\n".join(out) + ("\n" if out else "")


def render_sarif(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """SARIF 2.1.0, for code-scanning dashboards."""
    rules = sorted({d.code for d in diagnostics})
    level = {"error": "error", "warning": "warning", "info": "note"}
    results = [
        {
            "ruleId": d.code,
            "level": level[d.severity.value],
            "message": {"text": d.message + (f" Hint: {d.hint}" if d.hint else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": d.file},
                        "region": {"startLine": max(1, d.line), "startColumn": max(1, d.col)},
                    },
                    "logicalLocations": [{"fullyQualifiedName": d.path}] if d.path else [],
                }
            ],
        }
        for d in diagnostics
    ]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "engine",
                        "informationUri": "https://example.invalid/engine",
                        "rules": [{"id": code} for code in rules],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


Renderer = Callable[[Sequence[Diagnostic], "dict[str, str] | None"], str]

RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
    "sarif": render_sarif,
}
