"""``python -m engine`` runs the CLI."""

from engine.cli import entry

entry()
