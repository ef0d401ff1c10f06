"""One module per ``engine`` subcommand; each keeps its top-level imports light.

To add a command: write ``engine/commands/NAME.py`` with a ``click.command`` that
imports what it needs inside its body, and add it to ``COMMANDS`` below.
"""

from __future__ import annotations

import click

from engine.commands.compile import compile_command
from engine.commands.diff import diff
from engine.commands.evaluate import evaluate
from engine.commands.fmt import fmt
from engine.commands.functions import functions
from engine.commands.owners import owners
from engine.commands.replay import explain, replay
from engine.commands.schema import schema
from engine.commands.test import test
from engine.commands.validate import validate

COMMANDS: list[click.Command] = [
    validate,
    schema,
    test,
    replay,
    explain,
    functions,
    evaluate,
    fmt,
    diff,
    owners,
    compile_command,
]
