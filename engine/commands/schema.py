"""`engine schema`: print (or check) the JSON Schema generated from the model."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option("--check", "check_path", type=click.Path(path_type=Path),
              help="Instead of printing, exit 1 if this committed schema file is stale.")
def schema(check_path: Path | None) -> None:
    """Print the playbook JSON Schema (generated from the model).

    Editors use it through the `# yaml-language-server: $schema=...` line at the
    top of a playbook. Regenerate the committed copy with
    `engine schema > schemas/playbook.schema.json`.
    """
    from engine.schema_file import render_schema

    text = render_schema()
    if check_path is not None:
        current = check_path.read_text(encoding="utf-8") if check_path.exists() else ""
        if current != text:
            click.echo(f"{check_path} is stale; run `engine schema > {check_path}`", err=True)
            sys.exit(1)
        click.echo(f"{check_path} is up to date")
        return
    click.echo(text, nl=False)
