"""The ``engine`` command: thin click commands that parse, call one function, render.

Exit codes: 0 success, 1 findings or a user error (message, no traceback), 2 usage
error, 3 an internal error (a bug: the traceback goes to a log file for the report),
130 interrupted. Heavy modules are imported inside the commands that need them so
``engine validate`` starts fast enough for a pre-commit hook.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from engine.diagnostics import EngineError


class _LazyGroup(click.Group):
    """Imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from engine.commands import COMMAND_PATHS

        return list(COMMAND_PATHS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from engine.commands import COMMAND_PATHS, load_command

        return load_command(cmd_name) if cmd_name in COMMAND_PATHS else None


@click.group(cls=_LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="revenue-playbook-engine", prog_name="engine")
def cli() -> None:
    """Revenue playbooks as code: validate, test and evaluate lead-management rules.

    \b
    Typical use:
      engine validate playbooks/            check every playbook (CI, pre-commit)
      engine test --coverage                replay fixtures against their snapshots
      engine evaluate PLAYBOOK --leads ...  decide every lead of an export
      engine diff --base origin/main        the plan of a rule change, for review
    """


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
        click.echo(f"error: {exc}", err=True)  # an InputError renders its file:line
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
        click.echo(f"internal error (a bug in engine); details written to {_crash_log()}", err=True)
        return 3
    return 0


def _crash_log() -> str:
    """Save the current traceback to a new file of its own and return its path.

    One file per crash (``engine-crash-*.log`` in the temp directory): two runs that
    crash at once must not overwrite each other's report.
    """
    import os
    import tempfile
    import traceback

    report = traceback.format_exc()
    try:
        handle, name = tempfile.mkstemp(prefix="engine-crash-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as log:
            log.write(report)
    except OSError as error:  # no writable temp directory: the report goes to stderr instead
        click.echo(report, err=True, nl=False)
        return f"nowhere ({error}); the traceback is above"
    return name


def entry() -> None:
    """Console-script wrapper.

    When the command is over (its files written, closed and renamed into place), the
    objects it made are moved out of the collector's reach (``gc.freeze``): the
    interpreter's last full collection at exit walked every one of them, 0.04-0.1 s of
    each run's wall time (issue #17). Then :func:`_leave`."""
    import gc

    code = main()
    gc.freeze()
    _leave(code)


def _leave(code: int) -> None:
    """Exit with ``code`` once the standard streams are flushed and the exit handlers have
    run, without the interpreter's teardown of every module and object: about 0.01 s of
    each command (``engine validate`` has 0.3 s in all; issue #17). Nothing is left to
    that teardown: the commands close and rename their files before they return. A reader
    that went away (``engine ... | head``) costs nothing but the lost output."""
    import atexit
    import os

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None:  # an interpreter without it: the usual exit
        sys.exit(code)
    _flush()
    run_handlers()
    _flush()  # what the handlers printed
    os._exit(code)


def _flush() -> None:
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # none, a closed pipe or stream
            stream.flush()
