"""Read playbook YAML into nodes that remember where they came from.

Untrusted text never reaches pydantic before it has passed the guards here:
size, binary content, tabs, duplicate keys, alias bombs, a single mapping
document. Every failure is a :class:`Diagnostic` at a line and column, never a
traceback or a hang. The round-trip loader keeps comments so ``fmt`` can reuse
the same tree later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from engine.diagnostics import Diagnostic, format_path

#: Playbooks are hand-written; a megabyte is far beyond any real one.
MAX_BYTES = 1024 * 1024
#: Nodes after expanding aliases. Billion-laughs documents blow far past this.
MAX_EXPANDED_NODES = 200_000

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """A parsed YAML document and the text it came from."""

    file: str
    text: str
    data: Any

    def position(self, path: Sequence[str | int], key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the node at ``path``, or of the nearest ancestor.

        With ``key=True`` a mapping entry points at its key instead of its value,
        which reads better for "unknown key" and "missing key" findings.
        """
        node = self.data
        line, col = 1, 1
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, CommentedMap) and part in node:
                if last and key:
                    kl, kc = node.lc.key(part)
                else:
                    kl, kc = node.lc.value(part)
                line, col = kl + 1, kc + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                il, ic = node.lc.item(part)
                line, col = il + 1, ic + 1
                node = node[part]
            else:
                if isinstance(node, CommentedMap | CommentedSeq) and index == 0:
                    line, col = node.lc.line + 1, node.lc.col + 1
                break
        return line, col

    def diagnostic(
        self,
        path: Sequence[str | int],
        code: str,
        message: str,
        *,
        hint: str | None = None,
        key: bool = False,
        severity: Any = None,
    ) -> Diagnostic:
        """A diagnostic positioned at ``path`` in this document."""
        from engine.diagnostics import Severity

        line, col = self.position(path, key=key)
        return Diagnostic(
            file=self.file,
            line=line,
            col=col,
            code=code,
            message=message,
            severity=severity or Severity.ERROR,
            path=format_path(path),
            hint=hint,
        )


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    return yaml


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


def load_text(text: str, file: str = "<string>") -> tuple[Document | None, list[Diagnostic]]:
    """Parse ``text`` as one YAML mapping document, or explain why not."""
    if not text.strip():
        return None, [_error(file, 1, 1, "E-LOAD-EMPTY", "file is empty",
                             "a playbook starts with `apiVersion: engine/v1` and `kind: Playbook`")]
    tabs = _tab_indent(file, text)
    if tabs:
        return None, tabs
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
        data = _yaml().load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [_error(file, line, col, "E-LOAD-DUPLICATE-KEY",
                             (exc.problem or "duplicate key").split("\n")[0],
                             "each key may appear once in a mapping; merge the two entries")]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        return None, [_error(file, line, col, "E-LOAD-SYNTAX", f"YAML syntax error: {problem}",
                             "check indentation, colons and quotes near this position")]
    except (YAMLError, RecursionError, ValueError) as exc:
        return None, [_error(file, 1, 1, "E-LOAD-SYNTAX", f"YAML could not be read: {exc}",
                             None)]
    if not isinstance(data, CommentedMap):
        kind = {CommentedSeq: "a list"}.get(type(data), "a scalar" if data is not None else "nothing")
        return None, [_error(file, 1, 1, "E-LOAD-NOT-MAPPING",
                             f"top level of a playbook must be a mapping, found {kind}",
                             "start with `apiVersion: engine/v1` and `kind: Playbook`")]
    return Document(file=file, text=text, data=data), []


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


def to_plain(value: Any) -> Any:
    """Convert ruamel's commented containers and scalar strings to plain Python."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return value
