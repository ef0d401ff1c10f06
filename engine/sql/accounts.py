"""Accounts in SQL: :mod:`engine.accounts` as window functions over the lead rows.

Every account value is an aggregate ``OVER`` the account: partitioned by the account key,
and by the lead id where the key is empty (such a lead is its own account). The layers sit
where ``engine.evaluate.decide`` computes them: the account's target status after targets,
its values after exclusions, and the account-level handoff fold after the handoff's
priority is rounded. Each value is the Python path's to the bit (engagement added in whole
hundredths, ties broken by lead id in code-point order, which is VARCHAR's byte order).
"""

from __future__ import annotations

from sqlglot import exp

from engine.compile import CompiledPlaybook
from engine.sql.aggregates import col
from engine.sql.expressions import lit, two_valued

#: ``account.<field>`` → its column (``account.target`` is the account's target status).
ACCOUNT_COLUMNS = {"account.fit": "account_fit", "account.engagement": "account_engagement",
                   "account.contacts": "account_contacts_n", "account.target": "target_account"}


def key(cp: CompiledPlaybook) -> exp.Expr:
    """The account key of a lead row ('' for none), as ``engine.accounts.account_key``."""
    spec = cp.playbook.lead.account
    if spec is None:
        return lit("")
    if isinstance(spec, str):
        return exp.Coalesce(this=exp.cast(col(f"lead__{spec}"), "VARCHAR"), expressions=[lit("")])
    email = col(f"lead__{spec.domain_of}")
    # after the last '@', in functions every dialect has (Postgres has no REGEXP_EXTRACT)
    last_at = exp.StrPosition(this=exp.func("REVERSE", email.copy()), substr=lit("@"))
    start = exp.Sub(this=exp.Add(this=exp.Length(this=email.copy()), expression=lit(2)), expression=last_at)
    domain = exp.Substring(this=email, start=start)
    lowered = exp.Lower(this=exp.Replace(this=domain, expression=lit("\u0130"), replacement=lit("i\u0307")))
    has_at: exp.Expr = exp.GT(this=exp.StrPosition(this=email.copy(), substr=lit("@")), expression=lit(0))
    freemail = sorted(cp.lists.get(spec.unless_in, ())) if spec.unless_in is not None else []
    if freemail:  # a freemail domain is no company: its leads are their own accounts
        listed = exp.In(this=lowered.copy(), expressions=[lit(d) for d in freemail])
        has_at = exp.and_(has_at, exp.not_(listed))
    return exp.Case(ifs=[exp.If(this=two_valued(has_at), true=lowered)], default=lit(""))


def over(aggregate: exp.Expr, order: list[exp.Expr] | None = None) -> exp.Window:
    """``aggregate OVER`` the lead's account."""
    alone = exp.Case(ifs=[exp.If(this=exp.EQ(this=col("account_key"), expression=lit("")),
                                 true=col("lead_id"))])
    return exp.Window(this=aggregate, partition_by=[col("account_key"), alone],
                      order=exp.Order(expressions=order) if order else None)


def _live(value: exp.Expr) -> exp.Expr:
    """``value`` for a non-excluded lead, else NULL (which the aggregates skip)."""
    return exp.Case(ifs=[exp.If(this=exp.Is(this=col("excluded"), expression=exp.null()), true=value)])


def target(own: exp.Expr) -> exp.Expr:
    """Step 1: the account is a target if any of its leads is."""
    flag = exp.Case(ifs=[exp.If(this=two_valued(own), true=lit(1))], default=lit(0))
    return exp.EQ(this=over(exp.Max(this=flag)), expression=lit(1))


def values(cp: CompiledPlaybook, latest: bool = True) -> list[tuple[str, exp.Expr, str]]:
    """Step 2: (column, expression, comment) of the account's values over live contacts;
    the latest activity only when a due time can read it (``latest``)."""
    hundredths = exp.cast(exp.Round(this=exp.Mul(this=col("engagement"), expression=lit(100))), "BIGINT")
    engagement = exp.Div(this=exp.cast(over(exp.Sum(this=_live(hundredths))), "DOUBLE"),
                         expression=exp.cast(lit(100), "DOUBLE"))
    found: list[tuple[str, exp.Expr, str]] = [
        ("account_fit", over(exp.Max(this=_live(col("fit")))), "account.fit: the best contact's fit"),
        ("account_engagement", engagement, "account.engagement: the contacts' engagement, in hundredths"),
        ("account_contacts_n", over(exp.Count(this=_live(lit(1)))), "account.contacts"),
    ]
    if latest:
        found.append(("account_latest", over(exp.Max(this=_live(col("last_at")))),
                      "the account's latest activity: an account handoff's due time counts from it"))
    for index, rule in enumerate(cp.personas):
        flag = exp.Case(ifs=[exp.If(this=two_valued(col(f"persona__{index}")), true=lit(1))])
        found.append((f"account_persona__{index}", over(exp.Count(this=_live(flag))),
                      f"account_persona({rule.id!r})"))
    return found


def fold(cp: CompiledPlaybook, table: str) -> list[list[tuple[str, exp.Expr]]]:
    """Three layers folding ``per: account`` handoffs to one primary contact per account.

    Reads ``pre_handoff_index``, ``pre_due`` and ``pre_priority``; gives ``handoff_index``,
    ``due``, ``priority``, ``account_primary`` and ``account_contacts``. ``table`` is the
    second layer's CTE, which the third reads (the contact list's subquery reads it too).
    """
    indexes = [lit(i) for i, h in enumerate(cp.handoffs) if h.per_account]
    if indexes:
        is_account = two_valued(exp.In(this=col("pre_handoff_index"), expressions=indexes))
    else:
        is_account = exp.false()
    order: list[exp.Expr] = [
        exp.Ordered(this=exp.Case(ifs=[exp.If(this=is_account.copy(), true=lit(0))], default=lit(1))),
        exp.Ordered(this=exp.Is(this=col("pre_priority"), expression=exp.null())),
        exp.Ordered(this=col("pre_priority"), desc=True),
        exp.Ordered(this=col("lead_id")),
    ]
    first: list[tuple[str, exp.Expr]] = [
        ("per_account", is_account),
        ("account_first", over(exp.FirstValue(this=col("lead_id")), order)),
        ("account_has", over(exp.Max(this=exp.Case(ifs=[exp.If(this=is_account.copy(), true=lit(1))],
                                                   default=lit(0))))),
    ]
    primary = exp.and_(col("per_account"), exp.EQ(this=col("account_first"), expression=col("lead_id")))
    listed = exp.and_(exp.EQ(this=col("account_has"), expression=lit(1)), exp.not_(primary.copy()),
                      exp.Is(this=col("excluded"), expression=exp.null()))
    second: list[tuple[str, exp.Expr]] = [("account_primary_flag", primary), ("account_listed", listed)]
    folded = exp.and_(col("account_listed"), col("per_account"))
    third: list[tuple[str, exp.Expr]] = [
        ("handoff_index", exp.Case(ifs=[exp.If(this=folded, true=exp.cast(exp.null(), "INTEGER"))],
                                   default=col("pre_handoff_index"))),
        ("due", exp.Case(ifs=[exp.If(this=folded.copy(), true=exp.cast(exp.null(), "TIMESTAMPTZ"))],
                         default=col("pre_due"))),
        ("priority", exp.Case(ifs=[exp.If(this=folded.copy(), true=exp.cast(exp.null(), "DOUBLE"))],
                              default=col("pre_priority"))),
        ("account_primary", exp.Case(ifs=[exp.If(this=col("account_listed"), true=col("account_first"))],
                                     default=lit(""))),
        ("account_contacts", exp.Case(ifs=[exp.If(this=col("account_primary_flag"), true=exp.Coalesce(
            this=_listed(table), expressions=[lit("")]))], default=lit(""))),
    ]
    return [first, second, third]


def _listed(table: str) -> exp.Expr:
    """The listed contacts of the row's account, sorted, ``;``-joined: a correlated subquery
    (one aggregate per account, never a list copied onto every row of a huge account)."""
    names = exp.ArrayToString(this=exp.ArraySort(this=exp.ArrayAgg(this=col("lead_id", "o"))),
                              expression=lit(";"))
    same = exp.and_(exp.EQ(this=col("account_key", "o"), expression=col("account_key", table)),
                    col("account_listed", "o"))
    return exp.Subquery(this=exp.select(names).from_(exp.alias_(exp.to_table(table), "o"), copy=False)
                        .where(same, copy=False))
