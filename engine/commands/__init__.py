"""One module per ``engine`` subcommand; each keeps its top-level imports light.

To add a command: write ``engine/commands/NAME.py`` with a ``click.command`` that
imports what it needs inside its body, and add it to ``COMMAND_PATHS`` below. A
command module is imported only when its command runs (or ``--help`` lists them),
so ``engine validate`` pays for no other command's imports.
"""

from __future__ import annotations

import importlib

import click

#: Command name → ``module:attribute``, in the order ``engine --help`` lists them.
COMMAND_PATHS: dict[str, str] = {
    "validate": "engine.commands.validate:validate",
    "schema": "engine.commands.schema:schema",
    "functions": "engine.commands.functions:functions",
    "test": "engine.commands.test:test",
    "replay": "engine.commands.replay:replay",
    "explain": "engine.commands.replay:explain",
    "evaluate": "engine.commands.evaluate:evaluate",
    "backtest": "engine.commands.backtest:backtest",
    "funnel": "engine.commands.funnel:funnel",
    "plan": "engine.commands.plan:plan",
    "fmt": "engine.commands.fmt:fmt",
    "diff": "engine.commands.diff:diff",
    "owners": "engine.commands.owners:owners",
    "approvals": "engine.commands.approvals:approvals",
    "log": "engine.commands.log:log",
    "compile": "engine.commands.compile:compile_command",
    "learn": "engine.commands.learn:learn",
}


def load_command(name: str) -> click.Command:
    """Import and return one command by name."""
    module, _, attribute = COMMAND_PATHS[name].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


def all_commands() -> list[click.Command]:
    """Every command, imported (for listings and tests)."""
    return [load_command(name) for name in COMMAND_PATHS]
