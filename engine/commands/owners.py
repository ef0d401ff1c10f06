"""`engine owners`: print (or check) CODEOWNERS generated from the playbooks."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("owners")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--check", "check_path", type=click.Path(path_type=Path),
              help="Instead of printing, exit 1 if this committed CODEOWNERS file is stale.")
@click.option("--prefix", default="@", show_default=True,
              help="Put before each owner name to make a GitHub handle, e.g. `@my-org/`.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Repository root the CODEOWNERS paths are relative to.")
def owners(paths: tuple[Path, ...], check_path: Path | None, prefix: str, root: Path) -> None:
    """CODEOWNERS lines from each playbook's metadata.owners (one line per playbook).

    PATHS are files or directories; default: playbooks/.

    \b
    Examples:
      engine owners > .github/CODEOWNERS
      engine owners --prefix @acme/ --check .github/CODEOWNERS
    """
    from engine.owners import file_owners, render_codeowners
    from engine.validate import discover

    targets = list(discover(paths or (Path("playbooks"),)))
    if not targets:
        raise click.UsageError("no playbooks found under the given paths")
    text = render_codeowners(file_owners(targets, root, prefix))
    if check_path is not None:
        current = check_path.read_text(encoding="utf-8") if check_path.exists() else ""
        if current != text:
            click.echo(f"{check_path} is stale; run `engine owners > {check_path}`", err=True)
            sys.exit(1)
        click.echo(f"{check_path} is up to date", err=True)
        return
    click.echo(text, nl=False)
