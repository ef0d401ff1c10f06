"""The one exception a user's input can cause, and the record of a row set aside.

Whole-file problems (unreadable encoding, missing column, bad mapping) stop the run
with an :class:`InputError`; single-row problems become a :class:`Reject` so a run
over a million rows is not lost to one bad cell, yet nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.diagnostics import EngineError


class InputError(EngineError):
    """A problem with a file the user gave us, described for the user.

    ``str(error)`` renders ``file:line: column: message (hint)`` with whatever parts are known.
    An :class:`~engine.diagnostics.EngineError` like every other user-caused problem (the
    CLI prints ``str(error)``); ``message`` stays the bare message, without the place.
    """

    def __init__(
        self,
        message: str,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        self.message = message
        super().__init__(self.render())
        self.message = message  # EngineError set it to the rendered line

    def render(self) -> str:
        """One line a person can act on."""
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        parts = [where] if where else []
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        parts.append(self.message)
        text = ": ".join(parts)
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class UnsortedInput(InputError):
    """A merge join met a lead id below the one before it: the inputs are not sorted.

    An error when the user promised the order (``--events-sorted``); when the engine
    only assumed it, the run starts again with the on-disk index (``engine.batch``).
    """


@dataclass(frozen=True, slots=True)
class Reject:
    """One input row that could not be used, and why; written to the rejects file."""

    file: str
    row: int
    column: str | None
    value: str | None
    reason: str


#: Where readers send rejects; a list's ``append`` or a :class:`RejectsWriter` will do.
RejectSink = Callable[[Reject], None]
