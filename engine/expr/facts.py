"""Facts about an expression other modules need without re-parsing it."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from engine.expr.check import symbol

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True, slots=True)
class Comparison:
    """``name op value``: a catalogue name (or ``lead.field``) compared with a number."""

    name: str
    op: str
    value: float


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else node.value
    return None


def numeric_comparisons(tree: ast.expr) -> tuple[Comparison, ...]:
    """Every ``name op number`` in the tree, normalised so the name is on the left.

    ``40 <= engagement`` gives ``Comparison("engagement", ">=", 40)``. A later lint
    uses this to ask whether e-mail opens alone can reach a threshold.
    """
    found: list[Comparison] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            sym = symbol(op)
            if sym not in _FLIP:
                continue
            name, value = _name_of(left), _number(right)
            if name is None or value is None:
                name, value, sym = _name_of(right), _number(left), _FLIP[sym]
            if name is not None and value is not None:
                found.append(Comparison(name, sym, value))
    return tuple(found)
