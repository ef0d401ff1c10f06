"""The committed JSON Schema: rendered from the model in one canonical text form."""

from __future__ import annotations

import json

from engine.model import json_schema


def render_schema() -> str:
    """The schema as committed in ``schemas/playbook.schema.json`` (sorted, indented)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
