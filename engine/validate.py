"""load → build → check for one playbook file: the validation pipeline as one call.

Everything downstream (evaluate, test, diff) starts from :func:`load_playbook`, so a
playbook is never used without having passed the same checks ``engine validate`` runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.build import build
from engine.check import CheckContext, run_checks
from engine.compile import CompiledPlaybook, compile_playbook
from engine.diagnostics import Diagnostic, EngineError, Severity, sort_diagnostics
from engine.lint import lint_owners, run_lints
from engine.load import Document, declared_kind, load_file
from engine.model import Playbook


@dataclass
class ValidationResult:
    """The outcome for one file: the model if it built, and every finding."""

    path: Path
    document: Document | None
    playbook: Playbook | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    compiled: CompiledPlaybook | None = None

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return self.playbook is not None and not any(
            d.severity is Severity.ERROR for d in self.diagnostics
        )


def validate_path(path: Path) -> ValidationResult:
    """Run the whole pipeline on one file and collect every diagnostic."""
    doc, problems = load_file(path)
    if doc is None:
        return ValidationResult(path, None, None, problems)
    playbook, problems = build(doc)
    if playbook is None:
        return ValidationResult(path, doc, None, sort_diagnostics(problems))
    ctx = CheckContext(doc=doc, playbook=playbook, base_dir=path.parent)
    found = run_checks(ctx)
    compiled, problems = compile_playbook(playbook, path.parent, doc)
    found += problems
    if compiled is not None:
        found += run_lints(compiled, doc)
        if not any(d.severity is Severity.ERROR for d in found):
            found += lint_owners(playbook, doc)
    return ValidationResult(path, doc, playbook, sort_diagnostics(found), compiled)


def looks_like_playbook(kind: str | None) -> bool:
    """Inside folders, YAML that declares another kind (fixtures, mappings) is skipped."""
    return kind in (None, "Playbook")


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; directories searched recursively for playbooks, in sorted order."""
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                is_yaml = candidate.suffix in (".yaml", ".yml") and candidate.is_file()
                if is_yaml and looks_like_playbook(declared_kind(candidate)):
                    yield candidate
        else:
            yield path


def load_playbook(path: Path | str) -> ValidationResult:
    """A valid playbook or an :class:`EngineError` carrying its diagnostics."""
    result = validate_path(Path(path))
    if not result.ok:
        errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
        raise EngineError(f"{path}: playbook is invalid ({len(errors)} error(s)); "
                          f"run `engine validate {path}`", errors)
    return result
