"""The week loop's rule body over numpy columns: every (lead, instant) frame of a chunk at once.

``run_weeks`` (:mod:`engine.kernel.source`) decides one lead at many instants: what
depends on the lead alone is computed once, then a Python loop runs the rule body per
instant (≈ 1.3 µs; 2.7 M instants of the 100k-lead bench). :class:`VectorWeeks` runs the
same generated statements — read from the kernel's own source, not written twice — over
numpy columns: the lead-only part stays Python (once a lead) and is broadcast, the totals
are the frames' columns (:meth:`engine.kernel.frames.Frames.columns`), an ``if`` is a
mask, an assignment under it a ``where``. A handoff is built once per distinct
(rule, priority) value, by the kernel's own builders.

Exact by construction or not at all: it knows a small set of constructs (names, numbers,
comparisons, ``and``/``or``/``not`` on booleans, ``+ - * /`` on numbers, ``round(x, d)``,
``score``, ``new_handoff(..., priority_of(x))``, ``is True``/``is None``) and raises
:class:`Decline` for anything else, or for values where numpy's arithmetic could differ
from Python's: an int past 2**53 (int/int true division is Python's correctly rounded
one only below it), a zero divisor, and ``round``'s ties — ``rint(x * 10**d) / 10**d``
equals Python's correctly rounded ``round(x, d)`` except where ``x * 10**d`` lies next to
a half, and those frames are rounded by Python. A lead whose lead-only values are not of
the kinds the chunk's columns hold (or raise) is left out, for the per-lead loop.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from engine.decision import ROUND_DIGITS

#: Ints numpy's float64 holds exactly, so int arithmetic, comparison and division agree.
_EXACT = 2**53
_OUTPUTS = ("personas", "v_target_account", "v_target_lead")


class Decline(Exception):
    """The chunk is not decided here (the generated loop does it)."""


class Unsupported(Decline):
    """A construct this module does not know: never tried again for the playbook."""


class _Column:
    """A value over the frames: ``kind`` b(ool), i(nt64), f(loat64), o(bject codes into the
    call's table), or s(calar: ``data`` a Python value the same for every frame)."""

    __slots__ = ("data", "kind")

    def __init__(self, kind: str, data: Any) -> None:
        self.kind, self.data = kind, data


class VectorWeeks:
    """``run_weeks``'s per-instant body as numpy; :meth:`of` gives None when the source
    does not have the expected shape."""

    def __init__(self, hoist: Any, names: tuple[str, ...], sums: tuple[str, ...], body: list[ast.stmt],
                 namespace: Mapping[str, Any]) -> None:
        self._hoist, self._names, self._sums, self._body = hoist, names, sums, body
        self._ns = namespace
        self.broken = False
        assigned: set[str] = set()
        for node in body:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    assigned.add(sub.id)
        self._loop_assigned = assigned
        self._reads = {sub.id for node in body for sub in ast.walk(node)
                       if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}

    @classmethod
    def of(cls, source: str, namespace: Mapping[str, Any]) -> VectorWeeks | None:
        """From the kernel's generated source and namespace (None: no ``run_weeks`` of the
        known shape — a prologue, ``out = []``, ``append = out.append``, one ``for``
        unpacking ``sums``, the return)."""
        tree = ast.parse(source)
        found = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_weeks"), None)
        if found is None:
            return None
        body = found.body
        at = next((i for i, n in enumerate(body)
                   if isinstance(n, ast.Assign) and ast.unparse(n) == "out = []"), None)
        if at is None or len(body) < at + 4:
            return None
        loop = body[at + 2]
        if (ast.unparse(body[at + 1]) != "append = out.append" or not isinstance(loop, ast.For)
                or ast.unparse(loop.target) != "(as_of_us, sums)"
                or ast.unparse(loop.iter) != "zip(instants, sums_list)" or loop.orelse):
            return None
        prologue = body[:at]
        names: list[str] = []
        for node in prologue:
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store) and sub.id not in names
                        and sub.id != "lead_get"):
                    names.append(sub.id)
        if any(name not in names for name in _OUTPUTS):
            return None
        steps = list(loop.body)
        sums: tuple[str, ...] = ()
        first = steps[0] if steps else None
        if (isinstance(first, ast.Assign) and len(first.targets) == 1
                and isinstance(first.targets[0], ast.Tuple) and isinstance(first.value, ast.Name)
                and first.value.id == "sums"):
            targets = first.targets[0].elts
            if not all(isinstance(t, ast.Name) for t in targets):
                return None
            sums = tuple(t.id for t in targets if isinstance(t, ast.Name))
            steps = steps[1:]
        reads = {sub.id for node in steps for sub in ast.walk(node)
                 if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}
        names = [n for n in names if n in reads or n in _OUTPUTS]  # (not a walrus' temporary)
        returned = ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in names], ast.Load()))
        hoist = ast.FunctionDef(name="hoist", args=found.args, body=[*prologue, returned], decorator_list=[])
        module = ast.fix_missing_locations(ast.Module([hoist], []))
        scope: dict[str, Any] = dict(namespace)
        exec(compile(module, "<kernel hoist>", "exec"), scope)
        made = cls(scope["hoist"], tuple(names), sums, steps, namespace)
        if any(name in made._loop_assigned for name in _OUTPUTS):
            return None
        return made

    def prepare(self, leads: Sequence[Mapping[str, Any]]) -> _Leads:
        """The lead-only values of ``leads`` (the prologue run once a lead), for any number
        of :meth:`decide` calls over their frames (a chunk's weeks and its climbing instants)."""
        import numpy as np

        hoisted: list[tuple[Any, ...] | None] = []
        for lead in leads:
            try:
                hoisted.append(self._hoist(lead, (), ()))
            except (TypeError, NameError):  # a mistyped field: the per-lead path (and decide) answer it
                hoisted.append(None)
        table: list[Any] = [None]
        codes: dict[int, int] = {id(None): 0}
        read = [i for i, name in enumerate(self._names) if name in self._reads]
        kinds: list[str | None] = [None] * len(self._names)
        for values in hoisted:
            if values is not None:
                kinds = [_kind(v) for v in values]
                break
        ok = [values is not None and all(_kind(values[i]) == kinds[i] for i in read) for values in hoisted]
        columns: dict[str, _Column] = {}
        for position in read:
            name, kind = self._names[position], kinds[position]
            column = [values[position] if good and values is not None else _blank(kind)
                      for values, good in zip(hoisted, ok, strict=True)]
            if kind == "o":
                columns[name] = _Column("o", np.fromiter((_code(v, table, codes) for v in column), np.int64,
                                                         len(column)))
            elif kind:
                dtype = {"b": bool, "i": np.int64, "f": np.float64}[kind]
                columns[name] = _Column(kind, np.asarray(column, dtype))
        spots = [self._names.index(name) for name in _OUTPUTS]
        lasts = [tuple(values[i] for i in spots) if values is not None else None for values in hoisted]
        return _Leads(table, codes, ok, columns, lasts, len(columns) == len(read))

    def decide(self, leads: Sequence[Mapping[str, Any]] | _Leads, who: Any, instants: Any, sums: Sequence[Any]
               ) -> tuple[list[int], list[Any], list[Any], list[bool], list[Any]]:
        """Every frame (``who[k]``: its lead's position in ``leads``; ``instants[k]``; the
        totals' columns ``sums``): per frame (stage index, exclusion, handoff) as lists,
        per lead whether it was decided here, and its (personas, target_account,
        target_lead). ``leads`` as given or :meth:`prepare`d. Raises :class:`Decline`."""
        if self.broken:
            raise Unsupported("known unsupported")
        prepared = leads if isinstance(leads, _Leads) else self.prepare(leads)
        stage, excluded, handoff, objects = self.decide_codes(prepared, who, instants, sums)

        def listed(column: Any) -> list[Any]:
            found: list[Any] = objects[column].tolist()
            return found

        return stage.tolist(), listed(excluded), listed(handoff), prepared.ok, prepared.lasts

    def decide_codes(self, prepared: _Leads, who: Any, instants: Any, sums: Sequence[Any]
                     ) -> tuple[Any, Any, Any, Any]:
        """:meth:`decide` as numpy columns: per frame the stage index (int64), the exclusion's
        and the handoff's codes into the returned object array (0: None; one code per
        distinct object, so a handoff built once is one code). Raises :class:`Decline`."""
        import numpy as np

        if self.broken:
            raise Unsupported("known unsupported")
        if not prepared.known:
            raise Decline("no lead to decide")
        table, codes = prepared.table, prepared.codes
        env = {name: _Column(column.kind, column.data[who]) for name, column in prepared.columns.items()}
        if len(self._sums) > len(sums):
            raise Decline("fewer totals than the loop unpacks")
        for name, column in zip(self._sums, sums, strict=False):
            total = np.asarray(column, np.int64)
            if len(total) and int(np.abs(total).max()) >= _EXACT:
                raise Decline("a total past 2**53")
            env[name] = _Column("i", total)
        env["as_of_us"] = _Column("i", np.asarray(instants, np.int64))
        run = _Run(self, env, table, codes, len(who))
        out = run.block(self._body, None)
        if out is None:
            raise Unsupported("no append")
        stage, excluded, handoff = (run.full(c) for c in out)
        if stage.kind != "i":
            raise Decline("a stage not an int")
        for column in (excluded, handoff):
            if column.kind != "o":  # (a decision's exclusion and handoff are objects or None)
                raise Unsupported("an exclusion or handoff not an object")
        objects = np.empty(len(table), object)
        for index, value in enumerate(table):
            objects[index] = value
        return stage.data, excluded.data, handoff.data, objects


class _Leads:
    """A chunk's leads prepared for :meth:`VectorWeeks.decide`: the object table (codes by
    identity), whether each lead's lead-only values are of the chunk's kinds, those values
    as one column a name (a row a lead), and each lead's (personas, target_account,
    target_lead)."""

    __slots__ = ("codes", "columns", "known", "lasts", "ok", "table")

    def __init__(self, table: list[Any], codes: dict[int, int], ok: list[bool], columns: dict[str, _Column],
                 lasts: list[Any], known: bool) -> None:
        self.table, self.codes, self.ok, self.columns, self.lasts = table, codes, ok, columns, lasts
        self.known = known


def _kind(value: Any) -> str:
    if value.__class__ is bool:
        return "b"
    if value.__class__ is int and -_EXACT < value < _EXACT:
        return "i"
    if value.__class__ is float:
        return "f"
    return "o"


def _blank(kind: str | None) -> Any:
    return {"b": False, "i": 0, "f": 0.0}.get(kind or "o")


def _code(value: Any, table: list[Any], codes: dict[int, int]) -> int:
    found = codes.get(id(value))
    if found is None:
        found = codes[id(value)] = len(table)
        table.append(value)  # (kept alive: its id stays its own)
    return found


class _Run:
    """One pass of the body over a chunk's frames."""

    def __init__(self, owner: VectorWeeks, env: dict[str, _Column], table: list[Any], codes: dict[int, int],
                 size: int) -> None:
        self.owner, self.env, self.table, self.codes, self.size = owner, env, table, codes, size
        self.assigned: set[str] = set()

    def full(self, column: _Column) -> _Column:
        """A scalar as a column of its kind."""
        import numpy as np

        if column.kind != "s":
            return column
        value = column.data
        kind = _kind(value)
        if kind == "o":
            return _Column("o", np.full(self.size, _code(value, self.table, self.codes), np.int64))
        return _Column(kind, np.full(self.size, value, {"b": bool, "i": np.int64, "f": np.float64}[kind]))

    def block(self, steps: Sequence[ast.stmt], mask: Any) -> tuple[_Column, _Column, _Column] | None:
        out = None
        for step in steps:
            got = self.step(step, mask)
            if got is not None:
                out = got
        return out

    def step(self, step: ast.stmt, mask: Any) -> tuple[_Column, _Column, _Column] | None:
        import numpy as np

        if isinstance(step, ast.Assign) and len(step.targets) == 1 and isinstance(step.targets[0], ast.Name):
            name = step.targets[0].id
            value = self.expr(step.value, mask)
            if mask is not None:
                if name not in self.env or (name in self.owner._loop_assigned and name not in self.assigned):
                    raise Unsupported(f"{name} assigned under a condition only")
                value = self.merge(mask, value, self.env[name])
            self.env[name] = value
            self.assigned.add(name)
            return None
        if (isinstance(step, ast.Assign) and len(step.targets) == 1 and isinstance(step.targets[0], ast.Tuple)
                and isinstance(step.value, ast.Tuple) and len(step.value.elts) == len(step.targets[0].elts)
                and all(isinstance(t, ast.Name) for t in step.targets[0].elts)):
            values = [self.expr(e, mask) for e in step.value.elts]  # (all read before any is set)
            for target, value in zip(step.targets[0].elts, values, strict=True):
                self.step(ast.Assign([target], _Given(value)), mask)
            return None
        if isinstance(step, ast.If):
            test = self.boolean(self.expr(step.test, mask))
            yes = test if mask is None else mask & test
            no = ~test if mask is None else mask & ~test
            if step.body and yes.any() and self.block(step.body, yes) is not None:
                raise Unsupported("append under a condition")
            if step.orelse and no.any() and self.block(step.orelse, no) is not None:
                raise Unsupported("append under a condition")
            return None
        if (isinstance(step, ast.Expr) and isinstance(step.value, ast.Call)
                and isinstance(step.value.func, ast.Name) and step.value.func.id == "append"
                and len(step.value.args) == 1 and isinstance(step.value.args[0], ast.Tuple)
                and len(step.value.args[0].elts) == 3 and mask is None):
            stage, excluded, handoff = (self.expr(e, None) for e in step.value.args[0].elts)
            return stage, excluded, handoff
        if isinstance(step, ast.Pass):
            return None
        del np
        raise Unsupported(f"statement {ast.unparse(step)[:40]}")

    def merge(self, mask: Any, new: _Column, old: _Column) -> _Column:
        import numpy as np

        if new.kind == "s" and old.kind == "s" and new.data is old.data:
            return old
        new, old = self.full(new), self.full(old)
        if new.kind != old.kind:
            raise Decline(f"a name holding {new.kind} and {old.kind}")
        return _Column(new.kind, np.where(mask, new.data, old.data))

    def boolean(self, column: _Column) -> Any:
        import numpy as np

        if column.kind == "s" and column.data.__class__ is bool:
            return np.full(self.size, column.data, bool)
        if column.kind != "b":
            raise Unsupported("a test that is not a bool")
        return column.data

    def expr(self, node: ast.expr, mask: Any) -> _Column:
        if isinstance(node, _Given):
            return node.column
        if isinstance(node, ast.Constant):
            return _Column("s", node.value)
        if isinstance(node, ast.Name):
            name = node.id
            owner = self.owner
            if name in owner._loop_assigned and name not in self.assigned and name not in owner._sums:
                raise Unsupported(f"{name} read before the loop assigns it")
            found = self.env.get(name)
            if found is not None:
                return found
            if name in self.owner._ns and not callable(self.owner._ns[name]):
                return _Column("s", self.owner._ns[name])  # (an object: only assigned, or tested by `is`)
            raise Unsupported(f"name {name}")
        if isinstance(node, ast.BoolOp):
            values = [self.boolean(self.expr(v, mask)) for v in node.values]
            result = values[0]
            for value in values[1:]:
                result = (result & value) if isinstance(node.op, ast.And) else (result | value)
            return _Column("b", result)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand, mask)
            if isinstance(node.op, ast.Not):
                return _Column("b", ~self.boolean(operand))
            if isinstance(node.op, ast.USub) and operand.kind in ("i", "f"):
                return _Column(operand.kind, -operand.data)
            raise Unsupported("unary operator")
        if isinstance(node, ast.Compare):
            return self.compare(node, mask)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node, mask)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self.call(node.func.id, node.args, mask)
        raise Unsupported(f"expression {ast.unparse(node)[:40]}")

    def number(self, column: _Column) -> tuple[str, Any]:
        """A numeric operand: its kind (i or f) and its data (array or Python number)."""
        if column.kind in ("i", "f"):
            return column.kind, column.data
        if column.kind == "s":
            kind = _kind(column.data)
            if kind in ("i", "f"):
                return kind, column.data
        raise Unsupported("a number expected")

    def compare(self, node: ast.Compare, mask: Any) -> _Column:
        import numpy as np

        if len(node.ops) != 1:
            raise Unsupported("chained comparison")
        op, right_node = node.ops[0], node.comparators[0]
        left = self.expr(node.left, mask)
        if isinstance(op, ast.Is | ast.IsNot):
            if not isinstance(right_node, ast.Constant) or right_node.value not in (True, None) \
                    or right_node.value.__class__ is int:
                raise Unsupported("'is' with other than True or None")
            target = right_node.value
            if left.kind == "s":
                found: Any = np.full(self.size, left.data is target, bool)
            elif left.kind == "o":
                found = left.data == self.codes.get(id(target), -1)
            elif left.kind == "b" and target is True:
                found = left.data.copy()
            else:  # a number is never True or None; a bool column never None
                found = np.zeros(self.size, bool)
            return _Column("b", ~found if isinstance(op, ast.IsNot) else found)
        right = self.expr(right_node, mask)
        (_, a), (_, b) = self.number(left), self.number(right)
        if left.kind == "s" and right.kind == "s":  # (a name no branch assigned yet): Python's own
            python = {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b, ast.Eq: a == b,
                      ast.NotEq: a != b}.get(type(op))
            if python is None:
                raise Unsupported("comparison operator")
            return _Column("s", python)
        ops = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
               ast.Eq: np.equal, ast.NotEq: np.not_equal}
        function = ops.get(type(op))
        if function is None:
            raise Unsupported("comparison operator")
        return _Column("b", np.broadcast_to(function(a, b), (self.size,)))

    def arithmetic(self, node: ast.BinOp, mask: Any) -> _Column:
        import numpy as np

        (ka, a), (kb, b) = self.number(self.expr(node.left, mask)), self.number(self.expr(node.right, mask))
        op = node.op
        if isinstance(op, ast.Div):
            if ka == "i" and kb == "i":
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)  # both below 2**53: exact
            if not np.all(b != 0):
                raise Decline("a division by zero")
            return _Column("f", np.broadcast_to(np.true_divide(a, b), (self.size,)))
        function = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply}.get(type(op))
        if function is None:
            raise Unsupported("arithmetic operator")
        if ka == "i" and kb == "i":
            top = float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0))
            bound = top[0] * top[1] if isinstance(op, ast.Mult) else top[0] + top[1]
            if bound >= _EXACT:
                raise Decline("an int past 2**53")
            return _Column("i", np.broadcast_to(function(np.asarray(a, np.int64), b), (self.size,)))
        return _Column("f", np.broadcast_to(function(np.asarray(a, np.float64), np.asarray(b, np.float64)),
                                            (self.size,)))

    def call(self, name: str, args: list[ast.expr], mask: Any) -> _Column:
        import numpy as np

        ns = self.owner._ns
        if name == "round" and len(args) == 2 and isinstance(args[1], ast.Constant) \
                and args[1].value.__class__ is int and 0 <= args[1].value <= 8:
            return self.rounded(self.expr(args[0], mask), args[1].value)
        if name == "score" and len(args) == 1 and ns.get("score") is _score():
            kind, value = self.number(self.expr(args[0], mask))
            value = np.asarray(value, np.float64)  # score(x) is round(float-or-int, d) + 0.0
            if kind == "i":
                return _Column("f", np.broadcast_to(value + 0.0, (self.size,)))
            return _Column("f", self.rounded(_Column("f", value), ROUND_DIGITS).data + 0.0)
        if (name == "new_handoff" and len(args) == 4 and isinstance(args[3], ast.Call)
                and isinstance(args[3].func, ast.Name) and args[3].func.id == "priority_of"
                and len(args[3].args) == 1):
            fixed = [self.expr(a, mask) for a in args[:3]]
            if any(f.kind != "s" for f in fixed):
                raise Unsupported("a handoff of per-frame rule or team")
            kind, value = self.number(self.expr(args[3].args[0], mask))
            values = np.broadcast_to(np.asarray(value, np.float64 if kind == "f" else np.int64), (self.size,))
            where = np.flatnonzero(mask) if mask is not None else np.arange(self.size)
            keys = values[where].view(np.int64)  # by bits: 0.0 and -0.0 are not one priority
            unique, inverse = np.unique(keys, return_inverse=True)
            build, priority = ns["new_handoff"], ns["priority_of"]
            made = np.fromiter(
                (_code(build(*(f.data for f in fixed), priority(v)), self.table, self.codes)
                 for v in unique.view(values.dtype).tolist()), np.int64, len(unique))
            out = np.zeros(self.size, np.int64)
            out[where] = made[inverse.reshape(-1)]
            return _Column("o", out)
        raise Unsupported(f"call {name}")

    def rounded(self, column: _Column, digits: int) -> _Column:
        """Python's ``round(x, digits)``: an int as it is; a float by ``rint`` where that is
        exact, else by ``round`` itself (module docstring)."""
        import numpy as np

        kind, value = self.number(column)
        if kind == "i":
            return column
        x = np.broadcast_to(np.asarray(value, np.float64), (self.size,))
        scale = 10.0**digits
        scaled = x * scale
        result = np.rint(scaled) / scale
        distance = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5)
        near = (distance < np.maximum(np.abs(scaled) * 2.0**-40, 1e-9)) | ~(np.abs(scaled) < 2.0**50)
        if near.any():
            result = result.copy()
            at = np.flatnonzero(near)
            result[at] = [round(v, digits) for v in x[at].tolist()]
        return _Column("f", result)


class _Given(ast.expr):
    """A value already computed (one of a tuple assignment's)."""

    def __init__(self, column: _Column) -> None:
        super().__init__()
        self.column = column


def _score() -> Any:
    from engine.decision import score

    return score
