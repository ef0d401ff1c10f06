"""`engine compile`: print a playbook as one SQL query for a warehouse dialect."""

from __future__ import annotations

from pathlib import Path

import click

from engine.sql import TARGETS


@click.command(name="compile")
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="duckdb",
    show_default=True,
    help="SQL dialect to generate (sqlglot transpiles one query tree).",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="TIMESTAMP",
    help="Decision instant, ISO 8601 (naive: the playbook's zone). Default: a :as_of parameter in the query.",
)
def compile_command(playbook: Path, target: str, as_of: str | None) -> None:
    """Compile PLAYBOOK to one SQL query giving each lead's decision.

    The query reads leads(lead_id, <lead.fields>) and events(lead_id, event_id,
    occurred_at, type, seq, <event fields>) and returns the columns of
    `engine evaluate`'s rows, one per lead. Constructs without a faithful SQL
    form (a regex pattern that is not a literal, bracket globs in content ids...)
    are errors naming them.

    \b
    Examples:
      engine compile playbooks/smb-saas.yaml
      engine compile playbooks/smb-saas.yaml --target snowflake --as-of 2026-11-01T00:00:00Z
    """
    from datetime import datetime

    from engine.sql import render
    from engine.validate import load_playbook

    instant = None
    if as_of is not None:
        try:
            instant = datetime.fromisoformat(as_of)
        except ValueError:
            raise click.BadParameter(
                f"{as_of!r} is not an ISO 8601 timestamp", param_hint="--as-of"
            ) from None
    compiled = load_playbook(playbook).compiled
    assert compiled is not None
    click.echo(render(compiled, target, instant), nl=False)
