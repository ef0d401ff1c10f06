"""The ``engine`` command: thin click commands that parse, call one function, render.

Exit codes: 0 success, 1 findings or a user error (message, no traceback), 2 usage
error, 3 an internal error (a bug: the traceback goes to a log file for the report),
130 interrupted. Heavy modules are imported inside the commands that need them so
``engine validate`` starts fast enough for a pre-commit hook.
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from engine.diagnostics import EngineError

FORMATS = ["text", "json", "github", "sarif"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="revenue-playbook-engine", prog_name="engine")
def cli() -> None:
    """Revenue playbooks as code: validate, test and evaluate lead-management rules.

    \b
    Typical use:
      engine validate playbooks/            check every playbook (CI, pre-commit)
      engine schema > playbook.schema.json  the JSON Schema editors complete from
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people, json for machines, github for Actions annotations, sarif "
                   "for code scanning.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def validate(paths: tuple[Path, ...], fmt: str, strict: bool) -> None:
    """Check playbooks: YAML, schema, references, reachability, expressions.

    PATHS are files or directories (searched recursively for *.yaml playbooks);
    default: playbooks/. Exit 0 when valid, 1 when any error (or, with --strict,
    warning) is found, 2 on a usage error.

    \b
    Examples:
      engine validate playbooks/
      engine validate --strict --format github playbooks/smb-saas.yaml
    """
    from engine.diagnostics import RENDERERS, has_failures
    from engine.validate import discover, validate_path

    targets = list(discover(paths or (Path("playbooks"),)))
    if not targets:
        raise click.UsageError("no playbooks found under the given paths")
    diagnostics = []
    sources: dict[str, str] = {}
    for path in targets:
        result = validate_path(path)
        diagnostics.extend(result.diagnostics)
        if result.document is not None:
            sources[str(path)] = result.document.text
    output = RENDERERS[fmt](diagnostics, sources)
    if fmt == "text" and not diagnostics:
        output = f"{len(targets)} playbook(s) valid\n"
    click.echo(output, nl=False)
    sys.exit(1 if has_failures(diagnostics, strict) else 0)


@cli.command()
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into an exit code, never a traceback."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="engine",
                 standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except EngineError as exc:
        click.echo(f"error: {exc.message}", err=True)
        if exc.diagnostics:
            from engine.diagnostics import render_text

            click.echo(render_text(exc.diagnostics), err=True, nl=False)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except Exception:
        log = Path(tempfile.gettempdir()) / "engine-crash.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        click.echo(f"internal error (a bug in engine); details written to {log}", err=True)
        return 3
    return 0


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())
