"""Floating-point rules of the Python path, written in SQL so scores agree to the bit.

``round2_steps`` is Python's ``round(x, 2)``: the decimal nearest to the *binary* value,
ties to even, then the double nearest to that decimal. SQL's ``ROUND`` rounds
half away from zero on a product ``x * 100`` that is itself rounded, so it
disagrees on values such as 2.675 (really 2.67499999...) and 0.125 (a true tie).
Here the side of each midpoint ``(2r ± 1) / 200`` is decided exactly, with an
error-free split of ``8|x|`` (multiplying by 8 is exact; FLOOR of a non-negative
value is its integer part; the parts are short enough that multiplying them by 25
is exact too). Valid for |x| < 2**45.

``micro_sum`` is the Python path's engagement sum: each term becomes whole
2**-32 units, ``floor(x * 2**32 + 0.5)``, and integers add exactly in any order,
so a plain ``SUM`` matches Python to the bit in every dialect (a floating-point
``SUM`` would depend on the order the warehouse adds in).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from engine.decision import POINTS_LIMIT

_TWO_24 = 16777216
QUANTUM = 4294967296  # engine.evaluate.QUANTUM: engagement in whole 2**-32 points


def _num(value: int | float | str) -> exp.Expr:
    return exp.Literal.number(value)


def _d(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DOUBLE")


def _c(name: str) -> exp.Expr:
    return exp.column(name)


def round2_steps(targets: Sequence[tuple[str, str]]) -> list[list[tuple[str, exp.Expr]]]:
    """Python's ``round(x, 2) + 0.0`` as five column steps (one CTE each).

    ``targets`` are (output column, input DOUBLE column). Written as steps because
    inlined, the exact test repeats ``x`` some fifty times and planning cost grows
    with it. Intermediate columns are named ``<output>__<step>``.
    """
    steps: list[list[tuple[str, exp.Expr]]] = [[], [], [], [], []]
    for out, source in targets:

        def v(part: str, out: str = out) -> exp.Expr:
            return _c(f"{out}__{part}")

        ax = exp.Abs(this=_c(source))
        steps[0] += [
            (f"{out}__a", ax),
            (f"{out}__r0", exp.Round(this=exp.Mul(this=ax.copy(), expression=_num(100)))),
        ]
        x8 = exp.Mul(this=v("a"), expression=_num(8))
        steps[1] += [
            (f"{out}__hi", exp.Floor(this=x8)),
            (f"{out}__lo", exp.Sub(this=x8.copy(), expression=exp.Floor(this=x8.copy()))),
        ]
        lo_hi = exp.Div(
            this=exp.Floor(this=exp.Mul(this=v("lo"), expression=_num(_TWO_24))),
            expression=_d(_num(_TWO_24)),
        )
        whole = exp.Sub(
            this=exp.Mul(this=_num(25), expression=v("hi")),
            expression=exp.Mul(this=_num(2), expression=v("r0")),
        )
        steps[2] += [(f"{out}__lohi", lo_hi), (f"{out}__d", whole)]

        def side(offset: int) -> exp.Expr:
            # sign(200 * ax - (2 * r0 - offset)), exactly: each partial sum is exact
            first = exp.paren(
                exp.Add(this=v("d"), expression=_num(offset))
                if offset > 0
                else exp.Sub(this=v("d"), expression=_num(-offset))
            )
            part = exp.paren(exp.Add(this=first, expression=exp.Mul(this=_num(25), expression=v("lohi"))))
            rest = exp.paren(exp.Sub(this=v("lo"), expression=v("lohi")))
            return exp.Add(this=part, expression=exp.Mul(this=_num(25), expression=rest))

        steps[3] += [(f"{out}__up", side(-1)), (f"{out}__down", side(1))]
        # r0 mod 2 without %: BigQuery and Postgres have no modulo of floating values
        half = exp.Floor(this=exp.Div(this=v("r0"), expression=_d(_num(2))))
        odd = exp.paren(exp.Sub(this=v("r0"), expression=exp.Mul(this=_num(2), expression=half)))
        adjust = exp.Case(
            ifs=[
                exp.If(this=exp.GT(this=v("up"), expression=_num(0)), true=_num(1)),
                exp.If(this=exp.LT(this=v("down"), expression=_num(0)), true=_num(-1)),
                exp.If(this=exp.EQ(this=v("up"), expression=_num(0)), true=odd),
                exp.If(this=exp.EQ(this=v("down"), expression=_num(0)), true=exp.Neg(this=odd.copy())),
            ],
            default=_num(0),
        )
        sign = exp.Case(
            ifs=[exp.If(this=exp.LT(this=_c(source), expression=_num(0)), true=_d(_num(-1)))],
            default=_d(_num(1)),
        )
        magnitude = exp.Div(
            this=_d(exp.paren(exp.Add(this=v("r0"), expression=adjust))), expression=_d(_num(100))
        )
        steps[4] += [
            (
                out,
                exp.Add(this=exp.Mul(this=sign, expression=exp.paren(magnitude)), expression=_d(_num("0.0"))),
            )
        ]
    return steps


def naive_sum(terms: Sequence[exp.Expr]) -> exp.Expr:
    """``0.0 + t1 + t2 + ...`` left to right, as Python 3.11's ``sum`` and ``+=`` loops do."""
    total: exp.Expr = _d(_num("0.0"))
    for term in terms:
        total = exp.Add(this=total, expression=exp.paren(term))
    return total


def micro_units(value: exp.Expr, where: exp.Expr | None = None) -> exp.Expr:
    """Aggregate: ``sum(floor(value * 2**32 + 0.5) for rows where ``where``)``, an integer (0 if none).

    ``where`` None sums every row (no CASE per row).
    """
    micro: exp.Expr = exp.cast(
        exp.Floor(this=exp.Add(this=exp.Mul(this=value, expression=_d(_num(QUANTUM))),
                               expression=_d(_num("0.5")))),
        "BIGINT",
    )
    if where is not None:
        micro = exp.Case(ifs=[exp.If(this=where, true=micro)], default=exp.cast(_num(0), "BIGINT"))
    return exp.Coalesce(this=exp.Sum(this=micro), expressions=[exp.cast(_num(0), "BIGINT")])


def from_micro(total: exp.Expr) -> exp.Expr:
    """Whole 2**-32 units as a DOUBLE number of points."""
    return exp.Div(this=_d(total), expression=_d(_num(QUANTUM)))


def micro_sum(value: exp.Expr, where: exp.Expr | None = None) -> exp.Expr:
    """Aggregate: ``sum(floor(value * 2**32 + 0.5) for rows where ``where``) / 2**32`` as a DOUBLE."""
    return from_micro(micro_units(value, where))


def computed_points(value: exp.Expr) -> exp.Expr:
    """``engine.decision.computed_points`` in SQL: NULL → 0, clamped to ±1000 (NaN, which SQL
    orders above every number, to +1000), then ``floor(v * 2**32 + 0.5) / 2**32``: exact."""
    v = _d(value)
    limit = _d(_num(POINTS_LIMIT))
    grid = exp.Div(
        this=exp.Floor(this=exp.Add(this=exp.Mul(this=v.copy(), expression=_d(_num(QUANTUM))),
                                    expression=_d(_num("0.5")))),
        expression=_d(_num(QUANTUM)),
    )
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=v.copy(), expression=exp.Null()), true=_d(_num(0))),
            exp.If(this=exp.GT(this=v.copy(), expression=limit.copy()), true=limit.copy()),
            exp.If(this=exp.LT(this=v.copy(), expression=exp.Neg(this=limit.copy())),
                   true=exp.Neg(this=limit.copy())),
        ],
        default=_d(grid),
    )


#: Veltkamp's splitter for doubles, 2**27 + 1.
_SPLIT = 134217729
#: Above this quotient |a / b| the truncated quotient is no longer exact (``fmod_exact`` gives NULL).
FMOD_QUOTIENT_LIMIT = 2**52


def fmod_exact(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """C's ``fmod(a, b)`` (the dividend's sign) in plain double arithmetic, exact to the bit.

    For dialects with no modulo of doubles (Postgres, BigQuery: MOD takes integers or NUMERIC,
    and a double's NUMERIC cast keeps only 15 digits). ``q = floor(|a| / |b|)`` may be one off;
    ``q * |b|`` is split exactly into ``p + e`` (Dekker's product), so ``(|a| - p) - e`` is the
    true remainder (each step is exact: Sterbenz, and the result is representable), then moved
    into ``[0, |b|)``. Valid while ``q < 2**52`` (beyond it the result is NULL, and the compiled
    query's header says so) and for magnitudes far from overflow and underflow (about
    2**-960 < |b|, and |a|, |b| < 2**996), where Dekker's product is exact. ``b`` zero or NULL
    gives NULL, as in the caller.

    Written as a scalar subquery of one step per derived table, so ``a`` and ``b`` appear once
    and the text grows linearly (inlined, each step repeats the ones before it).
    """

    def c(name: str) -> exp.Expr:
        return exp.column(f"fmod__{name}")

    def sub(m: exp.Expr, n: exp.Expr) -> exp.Expr:
        return exp.paren(exp.Sub(this=m, expression=exp.paren(n)))  # sqlglot adds no parentheses

    def mul(m: exp.Expr, n: exp.Expr) -> exp.Expr:
        return exp.Mul(this=m, expression=n)

    def add(m: exp.Expr, n: exp.Expr) -> exp.Expr:
        return exp.paren(exp.Add(this=m, expression=n))

    steps: list[list[tuple[str, exp.Expr]]] = [
        [("a", _d(exp.paren(a))), ("x", exp.Abs(this=_d(exp.paren(a.copy())))),
         ("y", exp.Abs(this=_d(exp.paren(b))))],
        [("q", exp.Floor(this=exp.Div(this=c("x"), expression=c("y"))))],
        [("cq", mul(_d(_num(_SPLIT)), c("q"))), ("cy", mul(_d(_num(_SPLIT)), c("y")))],
        [("qh", sub(c("cq"), sub(c("cq"), c("q")))), ("yh", sub(c("cy"), sub(c("cy"), c("y"))))],
        [("ql", sub(c("q"), c("qh"))), ("yl", sub(c("y"), c("yh"))), ("p", mul(c("q"), c("y")))],
        [("e0", sub(mul(c("qh"), c("yh")), c("p")))],
        [("e1", add(c("e0"), mul(c("qh"), c("yl"))))],
        [("e", add(add(c("e1"), mul(c("ql"), c("yh"))), mul(c("ql"), c("yl"))))],
        [("r", sub(sub(c("x"), c("p")), c("e")))],
        [("m", exp.Case(ifs=[exp.If(this=exp.LT(this=c("r"), expression=_num(0)),
                                    true=exp.Add(this=c("r"), expression=c("y"))),
                             exp.If(this=exp.GTE(this=c("r"), expression=c("y")),
                                    true=exp.Sub(this=c("r"), expression=c("y")))],
                        default=c("r")))],
    ]
    query: exp.Select | None = None
    for i, columns in enumerate(steps):
        select = exp.select(*(exp.alias_(e, f"fmod__{n}") for n, e in columns))
        if query is not None:
            select = exp.select(exp.Star(), *select.expressions).from_(query.subquery(f"fmod__s{i}"))
        query = select
    assert query is not None
    result = exp.Case(
        ifs=[exp.If(this=exp.GTE(this=c("q"), expression=_d(_num(FMOD_QUOTIENT_LIMIT))), true=_d(exp.null())),
             exp.If(this=exp.LT(this=c("a"), expression=_num(0)), true=exp.Neg(this=c("m")))],
        default=c("m"),
    )
    return exp.Subquery(this=exp.select(result).from_(query.subquery("fmod__s")))
