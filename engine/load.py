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

import re
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
                key = key if isinstance(key, str | int) else str(key)
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


def load_text(text: str, file: str = "<string>") -> tuple[Document | None, list[Diagnostic]]:
    """Parse ``text`` as one YAML mapping document, or explain why not."""
    if not text.strip():
        return None, [_error(file, 1, 1, "E-LOAD-EMPTY", "file is empty",
                             "a playbook starts with `apiVersion: engine/v1` and `kind: Playbook`")]
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
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        return None, [_error(file, line, col, "E-LOAD-SYNTAX", f"YAML syntax error: {problem}",
                             "check indentation, colons and quotes near this position")]
    except (YAMLError, RecursionError, ValueError) as exc:
        return None, [_error(file, 1, 1, "E-LOAD-SYNTAX", f"YAML could not be read: {exc}",
                             None)]
    return Document(file=file, text=text, data=data, positions=positions), []


_KIND = re.compile(r"^kind:\s*['\"]?([A-Za-z]+)", re.MULTILINE)


def declared_kind(path: Path) -> str | None:
    """The top-level ``kind:`` a YAML file declares (Playbook, Fixture, ...), read cheaply.

    Used to sort files found in folders without parsing them; None when the file
    says no kind or cannot be read.
    """
    try:
        return kind_of_text(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def kind_of_text(text: str) -> str | None:
    """The top-level ``kind:`` declared in YAML text (its first 64 KiB), or None."""
    match = _KIND.search(text[:65536])
    return match.group(1) if match else None


def load_file(path: Path | str) -> tuple[Document | None, list[Diagnostic]]:
    """Read and parse a playbook file; unreadable files become diagnostics too."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, [_error(file, 1, 1, "E-LOAD-IO", f"cannot read file: {exc.strerror}", None)]
    text, problems = _decode(file, raw)
    if text is None:
        return None, problems
    return load_text(text, file)
