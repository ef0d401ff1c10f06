"""`engine validate`: the whole validation pipeline over files and folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click

FORMATS = ["text", "json", "github", "sarif"]


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people, json for machines, github for Actions annotations, sarif "
                   "for code scanning.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--mapping", help="Also check each playbook against this mapping (a preset or a YAML "
                                "file): a lead field that is an outcome is an error (E-OUTCOME-READABLE), "
                                "a rule reading a column marked after_contact a warning (W-AFTER-CONTACT).")
def validate(paths: tuple[Path, ...], fmt: str, strict: bool, mapping: str | None) -> None:
    """Check playbooks: YAML, schema, references, reachability, expressions.

    PATHS are files or directories (searched recursively for *.yaml playbooks);
    default: playbooks/. Exit 0 when valid, 1 when any error (or, with --strict,
    warning) is found, 2 on a usage error.

    Every command reads playbooks through the same guards: at most 1 MiB, a
    regular file (never a FIFO or device), UTF-8, no tabs, duplicate keys, alias
    bombs or deep nesting. List files must be regular files of at most 10 MiB
    inside the repository (the git work tree containing the playbook, else its
    folder), never under .git.

    \b
    Examples:
      engine validate playbooks/
      engine validate --strict --format github playbooks/smb-saas.yaml
      engine validate --mapping leads-x-education playbooks/x-education.yaml
    """
    from engine.diagnostics import RENDERERS, has_failures
    from engine.validate import discover, validate_path

    targets = list(discover(paths or (Path("playbooks"),)))
    if not targets:
        raise click.UsageError("no playbooks found under the given paths")
    columns = None
    if mapping is not None:
        from engine.diagnostics import EngineError
        from engine.io import InputError, load_mapping

        try:
            columns = load_mapping(mapping)
        except InputError as error:
            raise EngineError(str(error)) from None
    diagnostics = []
    sources: dict[str, str] = {}
    for path in targets:
        result = validate_path(path)
        diagnostics.extend(result.diagnostics)
        if columns is not None and result.compiled is not None and result.document is not None:
            from engine.measure.leakage import mapping_diagnostics

            diagnostics.extend(mapping_diagnostics(result.compiled, result.document, columns))
        if result.document is not None:
            sources[str(path)] = result.document.text
    output = RENDERERS[fmt](diagnostics, sources)
    if fmt == "text" and not diagnostics:
        output = f"{len(targets)} playbook(s) valid\n"
    click.echo(output, nl=False)
    sys.exit(1 if has_failures(diagnostics, strict) else 0)
