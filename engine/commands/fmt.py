"""`engine fmt`: rewrite playbooks in the canonical layout, or check that they are."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True,
              help="Change nothing: print a unified diff and exit 1 if any file is not formatted.")
def fmt(paths: tuple[Path, ...], check: bool) -> None:
    """Format playbooks: canonical section order and indentation, comments kept.

    PATHS are files or directories (searched recursively for playbooks); default:
    playbooks/. Files are rewritten atomically; with --check nothing is written.

    \b
    Examples:
      engine fmt playbooks/
      engine fmt --check playbooks/smb-saas.yaml
    """
    from engine.fmt import format_file, write_atomic
    from engine.validate import discover

    targets = list(discover(paths or (Path("playbooks"),)))
    if not targets:
        raise click.UsageError("no playbooks found under the given paths")
    results = [format_file(path) for path in targets]
    changed = [r for r in results if r.changed]
    if check:
        for result in changed:
            click.echo(result.unified_diff(), nl=False)
        for result in changed:
            click.echo(f"would reformat {result.path}", err=True)
        click.echo(f"{len(changed)} of {len(results)} playbook(s) need formatting; run `engine fmt`"
                   if changed else f"{len(results)} playbook(s) already formatted", err=True)
        sys.exit(1 if changed else 0)
    for result in changed:
        write_atomic(result.path, result.formatted)
        click.echo(f"reformatted {result.path}", err=True)
    click.echo(f"{len(changed)} reformatted, {len(results) - len(changed)} unchanged", err=True)
