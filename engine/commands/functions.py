"""`engine functions`: the catalogue of names and functions expressions may use."""

from __future__ import annotations

import json

import click

from engine.functions import CONTEXTS

CONTEXT_CHOICES = list(CONTEXTS)


@click.command()
@click.option("--context", type=click.Choice(CONTEXT_CHOICES), default=None,
              help="Only what an expression at this point of the pipeline may use.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def functions(context: str | None, fmt: str) -> None:
    """List every name and function a playbook expression may use, with types and docs.

    Names are known only from some point of the pipeline on (personas → targets →
    fit → surge → exclusions → stages → handoffs → recycle): `stage` cannot be
    read while stages are being decided. The contexts column says where each works.

    \b
    Examples:
      engine functions
      engine functions --context stage
    """
    from engine.functions import catalogue_rows

    rows = catalogue_rows(context)
    if fmt == "json":
        click.echo(json.dumps([{"name": n, "signature": s, "contexts": c.split(", "), "doc": d}
                               for n, s, c, d in rows], ensure_ascii=False, indent=2))
        return
    width = max(len(sig) for _, sig, _, _ in rows)
    for _, sig, contexts, doc in rows:
        click.echo(f"{sig.ljust(width)}  {doc}")
        click.echo(f"{'':{width}}  in: {contexts}")
