"""Work out how a CSV export's bytes are encoded, and say where they stop making sense.

Japanese Excel and CRM exports are often CP932 (Shift_JIS with Microsoft extensions)
and sometimes UTF-8 with a BOM; users rarely know which. Detection is deliberately
simple, deterministic and never a guess: a BOM, then strict UTF-8 on a prefix (ASCII
is UTF-8), then CP932 *only when the text reads as Japanese* (see
:func:`_reads_as_japanese`). Anything else stops with an error asking for
``--encoding``: single-byte Western encodings (Latin-1, cp1252, cp1250, ...) decode
any bytes at all, so no detector can tell ``é`` from ``č`` — a guess once decoded a
Latin-1 title wrong and changed a lead's fit (issue #13, item 5).
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
    """Return the codec name to read ``path`` with (see the module docstring for the order).

    Raises :class:`InputError` when the encoding cannot be told for sure.
    """
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        complete = not handle.read(1)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(sample, "utf-8", complete):
        return "utf-8"
    if _reads_as_japanese(sample, complete):
        return "cp932"
    offset, line = locate_decode_error(path, "utf-8")
    raise InputError(
        f"cannot tell the text encoding: byte offset {offset} is not UTF-8, and the file "
        "does not read as Japanese CP932; guessing could decode letters wrong",
        file=path,
        line=line,
        hint="pass the encoding the export was written in, e.g. --encoding cp1252 (Excel on "
             "Western Windows), --encoding latin-1 or --encoding cp932",
    )


def _reads_as_japanese(sample: bytes, complete: bool) -> bool:
    """Whether ``sample`` decodes as CP932 and is Japanese text rather than Western bytes.

    CP932 decodes most Latin-1 and cp1252 text too (``é`` + a letter is a kanji pair), so
    decoding is not enough. Japanese text is dominated by characters whose first byte is
    0x81-0x9F (kana, punctuation, full-width forms, the common kanji); Western text
    never has such bytes but for cp1252's quotes and dashes, while its accented
    lowercase letters are 0xE0-0xFC, which CP932 decodes as rare kanji or, with 0xA0
    and 0xF0-0xF9, as private-use characters. So: no private-use or C1 control
    character at all, and at least four times as many distinct common Japanese
    characters as rare ones (a file of rare kanji alone is asked about, not guessed).
    Distinct characters, not occurrences: a set is built at C speed.
    """
    try:
        text = codecs.getincrementaldecoder("cp932")("strict").decode(sample, final=complete)
    except UnicodeDecodeError:
        return False
    common = rare = 0
    for char in set(text):
        code = ord(char)
        if code < 0x80:
            continue
        if code <= 0x9F or 0xE000 <= code <= 0xF8FF:
            return False
        encoded = char.encode("cp932")
        if len(encoded) == 1:
            continue  # half-width katakana: Japanese, or Latin-1's capitals; says nothing
        if encoded[0] <= 0x9F:
            common += 1
        else:
            rare += 1
    return common > 0 and common >= 4 * rare


def describe_encoding(path: str | Path, given: str | None, origin: str = "--encoding") -> str:
    """How a run reads ``path``, for the summary: ``utf-8 (detected)``, ``cp932 (--encoding)``."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if given:
        return f"{normalize_encoding(given)} ({origin})"
    if suffix in (".jsonl", ".ndjson"):
        return "utf-8 (JSON Lines)"
    return f"{detect_encoding(path)} (detected)"


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
