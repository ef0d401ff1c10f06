"""Work out how a CSV export's bytes are encoded, and say where they stop making sense.

Japanese Excel and CRM exports are often CP932 (Shift_JIS with Microsoft extensions)
and sometimes UTF-8 with a BOM; users rarely know which. Detection order is
deliberately simple and deterministic: BOM, then strict UTF-8 on a prefix, then
CP932, then charset-normalizer as a last resort.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from engine.io.errors import InputError

#: Bytes examined to decide the encoding. Large enough that a CP932 file almost surely
#: shows a non-ASCII byte in it; a file ASCII-only this far and CP932 later fails with a
#: clear error naming the offset and suggesting ``--encoding``.
SAMPLE_BYTES = 1 << 20

_ALIASES = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "ms932": "cp932"}


def normalize_encoding(name: str) -> str:
    """Canonical codec name; Shift_JIS spellings become cp932, the superset exports really use."""
    lowered = name.strip().lower()
    lowered = _ALIASES.get(lowered, lowered)
    try:
        return codecs.lookup(lowered).name
    except LookupError:
        raise InputError(f"unknown encoding {name!r}", hint="use utf-8, utf-8-sig or cp932") from None


def _decodes(sample: bytes, encoding: str, complete: bool) -> bool:
    """True when ``sample`` decodes strictly; a multibyte character cut at the end is fine."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        decoder.decode(sample, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: str | Path) -> str:
    """Return the codec name to read ``path`` with (see the module docstring for the order)."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        complete = not handle.read(1)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(sample, "utf-8", complete):
        return "utf-8"
    if _decodes(sample, "cp932", complete):
        return "cp932"
    guess = _charset_normalizer_guess(sample)
    if guess is not None:
        return guess
    offset, line = locate_decode_error(path, "utf-8")
    raise InputError(
        f"cannot tell the text encoding: byte offset {offset} is neither UTF-8 nor CP932",
        file=path,
        line=line,
        hint="pass the encoding explicitly, e.g. --encoding cp932",
    )


def _charset_normalizer_guess(sample: bytes) -> str | None:
    import charset_normalizer

    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return None
    return str(best.encoding)


def locate_decode_error(path: str | Path, encoding: str) -> tuple[int | None, int | None]:
    """Byte offset and 1-based line of the first byte ``encoding`` cannot decode.

    Only called once reading has failed, so the fast path never pays for it.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    consumed = 0
    newlines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                pending = len(decoder.getstate()[0])
                offset = consumed - pending + error.start
                newlines += chunk[: max(0, error.start - pending)].count(b"\n")
                return offset, newlines + 1
            newlines += chunk.count(b"\n")
            consumed += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            return consumed - len(error.object) + error.start, newlines + 1
    return None, None


def decode_error(path: str | Path, encoding: str) -> InputError:
    """The user-facing error for a file that stopped decoding part way through."""
    offset, line = locate_decode_error(path, encoding)
    where = f" at byte offset {offset}" if offset is not None else ""
    return InputError(
        f"the file is not valid {encoding}{where}",
        file=path,
        line=line,
        hint="pass the right encoding explicitly, e.g. --encoding cp932 or --encoding utf-8",
    )
