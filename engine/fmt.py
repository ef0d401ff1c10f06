"""The canonical layout of a playbook, keeping every comment: what ``engine fmt`` writes.

Reviews should show rule changes, not layout churn, so every playbook gets one layout:
top-level sections in :data:`SECTION_ORDER`, mappings indented 2, sequences 4 with the
dash at 2, quotes as written, lines never re-wrapped (an expression split over two
lines reads worse than a long line). Formatting is idempotent: ``format_text`` of its
own output returns it unchanged.

Two steps are done on the text rather than through ruamel.yaml, because its
round-trip model attaches a comment to the entry *above* it: sections are reordered as
blocks of lines (a section's leading comments move with it), and values that the author
aligned in a column (``timing:     {cooldown: 90d}``) stay aligned.
"""

from __future__ import annotations

import difflib
import io
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.diagnostics import EngineError
from engine.load import load_text, read_text_file

#: Top-level order: identity first, then vocabulary, then the rules in evaluation order.
SECTION_ORDER: tuple[str, ...] = (
    "apiVersion", "kind", "metadata", "timezone", "teams", "lead", "events", "lists",
    "personas", "targets", "content", "scoring", "exclusions", "stages", "handoffs",
    "recycle", "sources",
)
#: Wide enough that ruamel never folds an expression onto a second line.
WIDTH = 4096


@dataclass(frozen=True)
class FormatResult:
    """One file's text before and after formatting."""

    path: Path
    original: str
    formatted: str

    @property
    def changed(self) -> bool:
        """Whether ``engine fmt`` would rewrite the file."""
        return self.original != self.formatted

    def unified_diff(self) -> str:
        """What would change, as ``diff -u`` prints it."""
        name = str(self.path)
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True), self.formatted.splitlines(keepends=True),
            fromfile=f"{name} (original)", tofile=f"{name} (formatted)",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = WIDTH
    yaml.preserve_quotes = True
    return yaml


def format_text(text: str, file: str = "<string>") -> str:
    """The canonical layout of one playbook's text (an :class:`EngineError` if unreadable)."""
    return rewrite_text(text, file)


def rewrite_text(text: str, file: str = "<string>", edit: Callable[[Any], None] | None = None) -> str:
    """:func:`format_text`, with ``edit`` changing the loaded round-trip document first.

    ``engine learn`` writes its proposal this way: numbers changed and rules appended
    in place, every comment and the author's layout kept, the result in ``fmt`` layout.
    """
    text = text.replace("\r\n", "\n")
    _doc, problems = load_text(text, file)  # the loader's guards: tabs, alias bombs, depth
    if problems:
        raise EngineError(f"{file}: cannot format a file that does not load", problems)
    reordered = _reorder_sections(text, _yaml().compose(text))
    yaml = _yaml()
    out = io.StringIO()
    data = yaml.load(reordered)
    if edit is not None:
        edit(data)
    yaml.dump(data, out)
    dumped = "\n".join(line.rstrip() for line in out.getvalue().split("\n"))
    try:
        result = _realign(reordered, _keep_line_breaks(reordered, dumped))
        kept = _plain(result) == _plain(dumped) and (edit is not None or _plain(dumped) == _plain(text))
    except YAMLError:
        kept = False
    if not kept:  # never write (or hand learn) a layout that reads differently, or not at all
        lines = _flow_item_comments(text)
        where = f" (here: line {', '.join(map(str, lines))})" if lines else ""
        raise EngineError(
            f"{file}: engine fmt cannot lay this file out without changing what it says (a limit of "
            "the YAML writer it uses), so nothing was written (hint: a comment at the end of a "
            f"`- {{...}}` item followed by a block-style item can trip it{where}: move such a comment "
            "onto its own line above its item, then run engine fmt again)")
    return result


def _plain(text: str) -> Any:
    """The data a YAML text says, without comments or layout: what formatting must keep."""
    return YAML(typ="safe", pure=True).load(text)


_FLOW_ITEM_COMMENT = re.compile(r"- \{.*\}\s+#")


def _flow_item_comments(text: str) -> list[int]:
    """Lines with a ``- {...}  # comment`` item right before a block-style item: the layout
    ruamel.yaml's writer loses a line break after (it joins the next item's first keys)."""
    lines = text.split("\n")
    found = []
    for number, (line, after) in enumerate(itertools.pairwise(lines), start=1):
        following = after.strip()
        if (_FLOW_ITEM_COMMENT.match(line.strip()) and following.startswith("- ")
                and not following.startswith("- {")):
            found.append(number)
    return found


def _is_comment_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or (line.startswith("#"))


def _reorder_sections(text: str, root: Node) -> str:
    """Top-level sections in canonical order, each moved with the comments just above it."""
    if not isinstance(root, MappingNode) or root.flow_style:
        return text
    keys = [str(k.value) for k, _ in root.value]
    rank = {name: i for i, name in enumerate(SECTION_ORDER)}
    wanted = sorted(range(len(keys)), key=lambda i: (rank.get(keys[i], len(rank)), i))
    if wanted == list(range(len(keys))):
        return text
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    starts = []
    for key, _ in root.value:
        start = key.start_mark.line
        while start > 0 and _is_comment_or_blank(lines[start - 1]):
            start -= 1
        starts.append(start)
    # The file's header comment (before the first key) stays on top whatever comes first.
    header_end = root.value[0][0].start_mark.line
    starts[0] = header_end
    header = lines[: min(starts[0], header_end)]
    ends = [*starts[1:], len(lines)]
    chunks = [lines[starts[i]:ends[i]] for i in range(len(keys))]
    body = [line for i in wanted for line in chunks[i]]
    return "".join(header + body)


def _aligned_column(mapping: MappingNode) -> int | None:
    """The column the author aligned this mapping's one-line values at, if they did."""
    pairs = [(k, v) for k, v in mapping.value if _one_line(k, v)]
    if len(pairs) < 2 or len(pairs) != len(mapping.value):
        return None
    columns = {v.start_mark.column for _, v in pairs}
    padded = any(v.start_mark.column > k.end_mark.column + 2 for k, v in pairs)
    return columns.pop() if len(columns) == 1 and padded else None


def _one_line(key: Node, value: Node) -> bool:
    if not isinstance(key, ScalarNode) or key.start_mark.line != value.start_mark.line:
        return False
    if isinstance(value, ScalarNode):
        return value.style not in ("|", ">") and value.end_mark.line == value.start_mark.line
    return bool(getattr(value, "flow_style", False)) and value.end_mark.line == value.start_mark.line


def _mappings(node: Node, path: tuple[Any, ...] = ()) -> Iterable[tuple[tuple[Any, ...], MappingNode]]:
    """Every block mapping under ``node`` with its path of keys and indices."""
    if isinstance(node, MappingNode):
        if not node.flow_style:
            yield path, node
        for key, value in node.value:
            yield from _mappings(value, (*path, str(key.value)))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _mappings(item, (*path, index))


def _multi_line(node: Node) -> bool:
    return bool(node.end_mark.line > node.start_mark.line)


def _inline_nodes(node: Node, path: tuple[Any, ...] = ()) -> Iterable[tuple[tuple[Any, ...], Node]]:
    """Flow collections and non-block scalars directly under block structure, with their paths."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style:
        children = ([(str(k.value), v) for k, v in node.value] if isinstance(node, MappingNode)
                    else list(enumerate(node.value)))
        for step, child in children:
            yield from _inline_nodes(child, (*path, step))
    elif not (isinstance(node, ScalarNode) and node.style in ("|", ">")):
        yield path, node


def _only_comment(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith("#")


def _keep_line_breaks(source: str, output: str) -> str:
    """Flow lists, flow mappings and scalars the author broke over lines stay broken there.

    ruamel.yaml joins them (the width is huge on purpose); the author's breaks are
    restored, continuation lines shifted with the value's new column, trailing comment
    included. Values followed by more than a comment on their last line are left joined.
    """
    src_lines = source.split("\n")
    broken = {}
    for path, node in _inline_nodes(_yaml().compose(source)):
        end = node.end_mark
        if _multi_line(node) and _only_comment(src_lines[end.line][end.column:]):
            broken[path] = node
    if not broken:
        return output
    lines = output.split("\n")
    found = [(path, node) for path, node in _inline_nodes(_yaml().compose(output))
             if path in broken and not _multi_line(node)]
    for path, node in sorted(found, key=lambda item: -item[1].start_mark.line):
        old = broken[path]
        shift = node.start_mark.column - old.start_mark.column
        first, last = old.start_mark.line, old.end_mark.line
        if not _only_comment(lines[node.start_mark.line][node.end_mark.column:]):
            continue
        block = [lines[node.start_mark.line][: node.start_mark.column]
                 + src_lines[first][old.start_mark.column:].rstrip()]
        for line in src_lines[first + 1: last + 1]:
            if shift >= 0:
                block.append((" " * shift + line).rstrip() if line.strip() else "")
            else:
                cut = min(-shift, len(line) - len(line.lstrip(" ")))
                block.append(line[cut:].rstrip())
        lines[node.start_mark.line: node.start_mark.line + 1] = block
    return "\n".join(lines)


def _realign(source: str, output: str) -> str:
    """Re-pad values the source aligned in a column; trailing comments keep their column."""
    wanted = {path: col for path, m in _mappings(_yaml().compose(source))
              if (col := _aligned_column(m)) is not None}
    if not wanted:
        return output
    lines = output.split("\n")
    for path, mapping in _mappings(_yaml().compose(output)):
        if path not in wanted or not all(_one_line(k, v) for k, v in mapping.value):
            continue
        widest = max(k.end_mark.column for k, _ in mapping.value) + 2  # "key:" and a space
        column = max(wanted[path], widest)
        for key, value in mapping.value:
            row = key.start_mark.line
            line = lines[row]
            shift = column - value.start_mark.column
            head, rest = line[: key.end_mark.column + 1], line[value.start_mark.column:]
            value_end = value.end_mark.column - value.start_mark.column
            tail = rest[value_end:]
            if shift > 0 and tail.startswith(" " * (shift + 1)) and "#" in tail:
                tail = tail[shift:]  # keep a trailing comment where it was
            pad = " " * (column - len(head))
            lines[row] = head + pad + rest[:value_end] + tail
    return "\n".join(lines)


def format_file(path: Path) -> FormatResult:
    """Read and format one file (nothing is written)."""
    original, problems = read_text_file(path)  # validate's guards: size, file type, encoding
    if original is None:
        raise EngineError(f"{path}: cannot format a file that does not load", problems)
    return FormatResult(path, original, format_text(original, str(path)))


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so an interrupted run never leaves half a playbook."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
