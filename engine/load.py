"""Read playbook YAML into plain data that remembers where each node came from.

Untrusted text never reaches pydantic before it has passed the guards here:
size, binary content, tabs, duplicate keys, alias bombs, custom tags, a single
mapping document. Every failure is a :class:`Diagnostic` at a line and column,
never a traceback or a hang.

Parsing uses ruamel.yaml's libyaml-based C parser (``ruamel.yaml.clib``) to compose
nodes, then builds plain dicts and lists here while recording each node's
position: a tenth of the round-trip loader's cost, which keeps ``engine
validate`` fast enough for a pre-commit hook. ``fmt`` uses the round-trip loader
separately, where comments matter.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.diagnostics import Diagnostic, Severity, format_path

#: Playbooks are hand-written; a megabyte is far beyond any real one.
MAX_BYTES = 1024 * 1024
#: Nesting deeper than this is no playbook; the parser's recursion must never see it.
MAX_FLOW_DEPTH = 64
MAX_INDENT = 256
#: Nodes after expanding aliases. Billion-laughs documents blow far past this.
MAX_EXPANDED_NODES = 200_000

NodePath = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """Where a node sits: 1-based line/col of its key (if any) and of its value."""

    key_line: int
    key_col: int
    line: int
    col: int
    style: str | None = None  # scalar style: None (plain), "'", '"', "|", ">"


@dataclass
class Document:
    """A parsed YAML document: plain data, its text, and every node's position."""

    file: str
    text: str
    data: Any
    positions: dict[NodePath, Position] = field(default_factory=dict)

    def position(self, path: Sequence[str | int], key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the node at ``path``, or of its nearest ancestor.

        With ``key=True`` a mapping entry points at its key instead of its value,
        which reads better for "unknown key" and "missing key" findings.
        """
        parts = tuple(path)
        while parts and parts not in self.positions:
            parts = parts[:-1]
        found = self.positions.get(parts)
        if found is None:
            return 1, 1
        if key and parts == tuple(path):
            return found.key_line, found.key_col
        return found.line, found.col

    def diagnostic(
        self,
        path: Sequence[str | int],
        code: str,
        message: str,
        *,
        hint: str | None = None,
        key: bool = False,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        """A diagnostic positioned at ``path`` in this document."""
        line, col = self.position(path, key=key)
        return Diagnostic(file=self.file, line=line, col=col, code=code, message=message,
                          severity=severity, path=format_path(path), hint=hint)


class _LoadError(Exception):
    def __init__(self, node: Node, code: str, message: str, hint: str | None) -> None:
        super().__init__(message)
        self.node, self.code, self.message, self.hint = node, code, message, hint


_SCALARS = {
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:int": None,
    "tag:yaml.org,2002:float": None,
    "tag:yaml.org,2002:bool": None,
    "tag:yaml.org,2002:null": None,
    "tag:yaml.org,2002:timestamp": str,  # kept as text: the engine parses times itself
}


def _yaml() -> YAML:
    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = False
    return yaml


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalar(node: ScalarNode, yaml: YAML) -> Any:
    tag = str(node.tag)
    if tag not in _SCALARS:
        raise _LoadError(node, "E-LOAD-TAG", f"YAML tag `{tag}` is not allowed in a playbook",
                         "remove the `!tag`; playbooks use plain values only")
    if _SCALARS[tag] is str:
        return str(node.value)
    return yaml.constructor.construct_object(node, deep=True)


def _build(root: Node, yaml: YAML) -> tuple[Any, dict[NodePath, Position]]:
    """Plain data from composed nodes, recording every node's position."""
    positions: dict[NodePath, Position] = {}
    line, col = _mark(root)
    positions[()] = Position(line, col, line, col)

    def visit(node: Node, path: NodePath) -> Any:
        if isinstance(node, ScalarNode):
            return _scalar(node, yaml)
        if str(node.tag) not in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
            raise _LoadError(node, "E-LOAD-TAG",
                             f"YAML tag `{node.tag}` is not allowed in a playbook",
                             "remove the `!tag`; playbooks use plain values only")
        if isinstance(node, SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                cl, cc = _mark(child)
                positions[(*path, index)] = Position(cl, cc, cl, cc, getattr(child, "style", None))
                items.append(visit(child, (*path, index)))
            return items
        if isinstance(node, MappingNode):
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise _LoadError(key_node, "E-LOAD-KEY", "mapping keys must be plain values",
                                     None)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _LoadError(key_node, "E-LOAD-MERGE", "merge keys (`<<`) are not supported",
                                     "write the entries out; playbooks are reviewed as text")
                key = _scalar(key_node, yaml)
                # Keys are names, as in JSON: `1:` or `true:` is the text written.
                key = key if isinstance(key, str) else str(key_node.value)
                if key in mapping:
                    raise _LoadError(key_node, "E-LOAD-DUPLICATE-KEY", f"duplicate key `{key}`",
                                     "each key may appear once in a mapping; merge the two entries")
                kl, kc = _mark(key_node)
                vl, vc = _mark(value_node)
                style = getattr(value_node, "style", None)
                positions[(*path, key)] = Position(kl, kc, vl, vc, style)
                mapping[key] = visit(value_node, (*path, key))
            return mapping
        raise _LoadError(node, "E-LOAD-SYNTAX", "unexpected YAML node", None)

    return visit(root, ()), positions


def _expanded_size(root: Node) -> int:
    """Count nodes as if every alias were expanded, memoised so it stays linear."""
    memo: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in memo:
            continue
        children: list[Node] = []
        if isinstance(node, MappingNode):
            for k, v in node.value:
                children.extend((k, v))
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        if done or not children:
            memo[id(node)] = 1 + sum(memo.get(id(c), 1) for c in children)
            if memo[id(node)] > MAX_EXPANDED_NODES:
                return memo[id(node)]
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in memo)
    return memo.get(id(root), 1)


def _error(file: str, line: int, col: int, code: str, message: str, hint: str | None) -> Diagnostic:
    return Diagnostic(file=file, line=line, col=col, code=code, message=message, hint=hint)


def _decode(file: str, raw: bytes) -> tuple[str | None, list[Diagnostic]]:
    if len(raw) > MAX_BYTES:
        return None, [
            _error(file, 1, 1, "E-LOAD-SIZE",
                   f"file is {len(raw):,} bytes; playbooks are limited to {MAX_BYTES:,}",
                   "split the playbook or move long lists into list files")
        ]
    if b"\x00" in raw:
        return None, [
            _error(file, 1, 1, "E-LOAD-BINARY", "file contains NUL bytes: it is not a text playbook",
                   "check that the path names a YAML file")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [
            _error(file, line, 1, "E-LOAD-ENCODING",
                   f"file is not UTF-8 (invalid byte at offset {exc.start})",
                   "save the playbook as UTF-8")
        ]
    return text, []


def _tab_indent(file: str, text: str) -> list[Diagnostic]:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            return [
                _error(file, number, len(line) - len(stripped) + 1, "E-LOAD-TAB",
                       "tab character used for indentation", "YAML indents with spaces only")
            ]
    return []


def _nesting(file: str, text: str) -> list[Diagnostic]:
    """Reject pathological nesting before parsing (deep input can crash the parser)."""
    depth = 0
    quote: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" "))
        if indent > MAX_INDENT:
            return [_error(file, number, 1, "E-LOAD-DEPTH",
                           f"indented {indent} columns: nesting is too deep for a playbook",
                           "flatten the structure")]
        quote = None  # per line: over-counting inside a multi-line string is the safe side
        for col, char in enumerate(line, start=1):
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"" and (col == 1 or line[col - 2] in " [{,:"):
                quote = char
            elif char == "#" and (col == 1 or line[col - 2] in " \t"):
                break
            elif char in "[{":
                depth += 1
                if depth > MAX_FLOW_DEPTH:
                    return [_error(file, number, col, "E-LOAD-DEPTH",
                                   f"more than {MAX_FLOW_DEPTH} nested brackets",
                                   "flatten the structure")]
            elif char in "]}":
                depth = max(0, depth - 1)
    return []


#: What ruamel says it was reading → what the author opened there.
_OPENED = {"while parsing a flow sequence": "'['", "while parsing a flow mapping": "'{'"}


def _syntax_error(file: str, text: str, exc: MarkedYAMLError) -> Diagnostic:
    """Where the broken construct opened, and where the parser gave up.

    The parser notices an unclosed bracket or quote only where the document stops
    making sense, often lines later or at the end of the file; the fix is at the
    opening, so the diagnostic points there and names both places. Other errors
    (indentation) point where they were noticed and name the block they are in.
    """
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    found, opened = exc.problem_mark, exc.context_mark
    hint = "check indentation, colons and quotes near this position"
    if found is None or opened is None or not exc.context or (
            (opened.line, opened.column) >= (found.line, found.column)):
        mark = found or opened
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return _error(file, line, col, "E-LOAD-SYNTAX", f"YAML syntax error: {problem}", hint)
    context = exc.context.strip()
    start, end = (opened.line + 1, opened.column + 1), (found.line + 1, found.column + 1)
    if context == "while scanning a quoted scalar" or context in _OPENED:
        quote = text[opened.index] if opened.index < len(text) else '"'
        what = f"unclosed {quote} quote" if context not in _OPENED else f"unclosed {_OPENED[context]}"
        message = (f"YAML syntax error: {what} opened at {start[0]}:{start[1]}; "
                   f"the parser noticed at {end[0]}:{end[1]}: {problem}")
        return _error(file, *start, "E-LOAD-SYNTAX", message,
                      "close it where it should end; the parser only noticed later")
    block = context.removeprefix("while ").split(" ", 1)[-1].removeprefix("a ").removeprefix("an ")
    message = (f"YAML syntax error: {problem} at {end[0]}:{end[1]} "
               f"(in the {block} that starts at {start[0]}:{start[1]})")
    return _error(file, *end, "E-LOAD-SYNTAX", message, hint)


def load_text(text: str, file: str = "<string>") -> tuple[Document | None, list[Diagnostic]]:
    """Parse ``text`` as one YAML mapping document, or explain why not."""
    if not text.strip():
        return None, [_error(file, 1, 1, "E-LOAD-EMPTY", "file is empty",
                             "a playbook starts with `apiVersion: engine/v1` and `kind: Playbook`")]
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8")) > MAX_BYTES:
        return None, [_error(file, 1, 1, "E-LOAD-SIZE",
                             f"text is more than {MAX_BYTES:,} bytes; playbooks are limited to that",
                             "split the playbook or move long lists into list files")]
    guards = _tab_indent(file, text) or _nesting(file, text)
    if guards:
        return None, guards
    yaml = _yaml()
    try:
        nodes = list(yaml.compose_all(text))
        if len(nodes) != 1 or nodes[0] is None:
            count = len([n for n in nodes if n is not None])
            return None, [_error(file, 1, 1, "E-LOAD-DOCUMENTS",
                                 f"expected exactly one YAML document, found {count}",
                                 "keep one playbook per file, without `---` separators")]
        if _expanded_size(nodes[0]) > MAX_EXPANDED_NODES:
            return None, [_error(file, 1, 1, "E-LOAD-ALIAS-BOMB",
                                 f"document expands to more than {MAX_EXPANDED_NODES:,} nodes "
                                 "through aliases", "remove the nested `*alias` references")]
        if not isinstance(nodes[0], MappingNode):
            kind = "a list" if isinstance(nodes[0], SequenceNode) else "a single value"
            return None, [_error(file, 1, 1, "E-LOAD-NOT-MAPPING",
                                 f"top level must be a mapping, found {kind}",
                                 "start with `apiVersion: engine/v1` and `kind: ...`")]
        data, positions = _build(nodes[0], yaml)
    except _LoadError as exc:
        line, col = _mark(exc.node)
        return None, [_error(file, line, col, exc.code, exc.message, exc.hint)]
    except MarkedYAMLError as exc:
        return None, [_syntax_error(file, text, exc)]
    except (YAMLError, RecursionError, ValueError) as exc:
        return None, [_error(file, 1, 1, "E-LOAD-SYNTAX", f"YAML could not be read: {exc}",
                             None)]
    return Document(file=file, text=text, data=data, positions=positions), []


class FileRefused(OSError):
    """A path that names something other than a small regular file; ``strerror`` says what."""

    def __init__(self, reason: str, size: int | None = None) -> None:
        super().__init__(reason)
        self.strerror = reason
        self.size = size


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def open_regular(path: str | Path, *, dir_fd: int | None = None, follow: bool = True) -> int:
    """A descriptor on a regular file, opened so that nothing else can block or slip through.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a
    writer; the type is then checked with ``fstat`` on the opened descriptor, so a
    file swapped after a check cannot be what is read. ``follow=False`` refuses a
    symbolic link as the last component.
    """
    flags = _OPEN_FLAGS | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(_kind_of(mode))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limit: int, *, head: bool = False) -> bytes:
    """At most ``limit`` bytes from ``fd`` (closed afterwards); more is refused unless ``head``."""
    try:
        size = os.fstat(fd).st_size
        if size > limit and not head:
            raise FileRefused(f"is {size:,} bytes; the limit is {limit:,}", size)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if head:
        return raw[:limit]
    if len(raw) > limit:  # grew since fstat: still refused, never read further
        raise FileRefused(f"is more than {limit:,} bytes; the limit is {limit:,}", len(raw))
    return raw


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file no bigger than ``limit`` (a :class:`FileRefused` otherwise).

    The one way playbooks, fixtures and list files are read: a FIFO, a device, a
    directory or a huge file ends in an error before anything is parsed.
    """
    return read_fd(open_regular(path), limit)


def read_text_file(path: Path | str) -> tuple[str | None, list[Diagnostic]]:
    """The text of a playbook-like file through every guard that needs no parsing.

    Size, file type, NUL bytes and encoding: what every command reading a playbook
    (validate, test, evaluate, diff, compile, explain, replay, fmt) goes through.
    """
    file = str(path)
    try:
        raw = read_regular(path, MAX_BYTES)
    except FileRefused as exc:
        if exc.size is not None:
            return None, [_error(file, 1, 1, "E-LOAD-SIZE",
                                 f"file is {exc.size:,} bytes; playbooks are limited to "
                                 f"{MAX_BYTES:,}",
                                 "split the playbook or move long lists into list files")]
        return None, [_error(file, 1, 1, "E-LOAD-IO", f"cannot read file: it {exc.strerror}",
                             "give the path of a YAML file")]
    except OSError as exc:
        return None, [_error(file, 1, 1, "E-LOAD-IO", f"cannot read file: {exc.strerror}", None)]
    return _decode(file, raw)


_KIND = re.compile(r"^kind:\s*['\"]?([A-Za-z]+)", re.MULTILINE)
#: How much of a file :func:`declared_kind` reads.
KIND_WINDOW = 65536


def declared_kind(path: Path) -> str | None:
    """The top-level ``kind:`` a YAML file declares (Playbook, Fixture, ...), read cheaply.

    Used to sort files found in folders without parsing them; None when the file
    says no kind or cannot be read. Only the head of the file is read.
    """
    try:
        raw = read_fd(open_regular(path), KIND_WINDOW, head=True)
    except OSError:
        return None
    return kind_of_text(raw.decode("utf-8", errors="replace"))


def kind_of_text(text: str) -> str | None:
    """The top-level ``kind:`` declared in YAML text (its first 64 KiB), or None."""
    match = _KIND.search(text[:KIND_WINDOW])
    return match.group(1) if match else None


def load_file(path: Path | str) -> tuple[Document | None, list[Diagnostic]]:
    """Read and parse a playbook file; unreadable files become diagnostics too."""
    text, problems = read_text_file(path)
    if text is None:
        return None, problems
    return load_text(text, str(path))
