"""What a compiled expression reads at run time: one lead at one instant."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.history import History


def _no_persona(persona_id: str) -> bool:
    return False


def _no_content(content: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Scope:
    """The run-time inputs of an expression.

    ``values`` holds the catalogue names the context provides (a missing key reads
    as None): ``lead`` (Mapping field → value, values already of the declared
    types), ``lists`` (Mapping name → frozenset[str]), ``target_account``,
    ``target_lead``, ``recent``, ``prior``, ``fit``, ``engagement``, ``surge``,
    ``stage`` (int index into the vocabulary's stages), ``engagement_since_recycle``,
    ``events_since_recycle`` and ``recycled_at`` (aware datetime, read by
    ``count_since_recycle``). ``persona(id)`` answers ``persona("id")``;
    ``content_stage_of(content)`` maps an event's ``content`` field to a stage id.
    """

    values: Mapping[str, Any]
    history: History
    persona: Callable[[str], bool] = _no_persona
    content_stage_of: Callable[[str], str | None] = _no_content
