"""A :class:`CompiledPlaybook` → one SQL query (a sqlglot tree) giving ``Decision.to_row()`` per lead.

The query mirrors ``engine.evaluate.decide`` stage by stage, one CTE per stage
(facts → personas → targets → scores → surge → exclusions and stage → recycle →
handoff), each adding columns to the previous one, so a rule's SQL sits next to
its comment and reads in the order the Python path evaluates. Events are
deduplicated by ``event_id`` (earliest kept) and only those at or before ``as_of``
are read (see ``_events``), as :class:`engine.history.History` does; every
catalogue function is one aggregate column per lead. Sticky stages are the stage
pipeline evaluated again per (lead, earlier event instant) "frame" (see
``_Builder.sticky_floor``): quadratic in a lead's events, and only built when a
playbook has a sticky stage.

Inputs: ``leads(lead_id, <lead.fields>)`` and ``events(lead_id, event_id,
occurred_at, type, seq, <event fields>)``; ``seq`` is the input position, used
only to order events that share time, type and id (as ``Event.seq`` does).
Timestamps come out as TIMESTAMPTZ (``as_of``, ``recycle_until``, ``due``); the
backend renders them in the playbook's zone.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlglot import exp

from engine.accounts import uses_accounts
from engine.compile import CompiledPlaybook, FitPoints
from engine.due import plans
from engine.expr import CompiledExpression
from engine.functions import FUNCTIONS
from engine.pipeline import (
    EXCLUSIONS,
    FIT,
    HANDOFFS,
    PERSONAS,
    RECYCLE,
    STAGES,
    SURGE,
    TARGETS,
    Section,
    walk,
)
from engine.sql import accounts as account_sql
from engine.sql import content as content_sql
from engine.sql.aggregates import US, age_us, aggregate_sql, cmp_seconds, col, epoch_us
from engine.sql.due import DueColumns
from engine.sql.expressions import (
    Environment,
    NoSqlForm,
    Translator,
    lit,
    not_null,
    two_valued,
)
from engine.sql.life import life_layers
from engine.sql.numeric import computed_points, from_micro, micro_sum, micro_units, naive_sum, round2_steps
from engine.sql.output import output_select

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: ``build_query``'s ``as_of`` for a query rendered once and bound per run: placeholder
#: ``$as_of`` where the instant's literal goes, ``$as_of_us`` where its epoch microseconds go.
AS_OF_SLOTS = "slots"

LEAD_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "bool": "BOOLEAN", "datetime": "TIMESTAMPTZ"}


def _double(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DOUBLE")


@dataclass
class Layer:
    """One CTE: the columns it adds, each with the comment naming its rule."""

    name: str
    columns: list[tuple[str, exp.Expr, str | None]] = field(default_factory=list)

    def add(self, alias: str, expression: exp.Expr, comment: str | None = None) -> None:
        self.columns.append((alias, expression, comment))


@dataclass
class SqlQuery:
    """The compiled query and what it reads: lead columns (with SQL types) and event columns."""

    tree: exp.Select
    lead_columns: dict[str, str]
    event_columns: list[str]
    notes: list[str]


class _Builder:
    def __init__(self, cp: CompiledPlaybook, as_of: datetime | str | None, frame: bool = False) -> None:
        self.cp = cp
        self.pb = cp.playbook
        # Frame mode evaluates stages at each earlier event instant (sticky stages):
        # rows are (lead_id, frame_at) and "as of" is the frame's instant.
        self.frame = frame
        self.prefix = "frame_" if frame else ""
        self.keys = ["lead_id", "frame_at"] if frame else ["lead_id"]
        if frame:
            self.as_of: exp.Expr = col("frame_at")
            self.as_of_us = epoch_us(col("frame_at"))
        elif not isinstance(as_of, datetime):  # None, or AS_OF_SLOTS
            self.as_of = exp.cast(exp.Placeholder(this="as_of"), "TIMESTAMPTZ")
            self.as_of_us = (exp.Placeholder(this="as_of_us") if as_of == AS_OF_SLOTS
                             else epoch_us(self.as_of.copy()))
        else:
            if as_of.tzinfo is None:
                as_of = as_of.replace(tzinfo=cp.tz)
            self.as_of = exp.cast(lit(as_of.isoformat()), "TIMESTAMPTZ")
            # as_of in epoch microseconds, computed here exactly (integer timedelta division)
            self.as_of_us = lit((as_of - _EPOCH) // timedelta(microseconds=1))
        self.aggregates: dict[str, tuple[str, exp.Expr, exp.Expr]] = {}
        self.recycle_aggregates: dict[str, tuple[str, exp.Expr, exp.Expr]] = {}
        self.event_columns: set[str] = set()
        for etype in self.pb.events.values():
            self.event_columns.update(etype.fields)
        self.notes: list[str] = []
        self.sticky = False  # whether a sticky stage's floor follows the stage (set by _layers)
        self.fit_total: exp.Expr = _double(lit(0))  # the fit rules' capped sum (set by _fit)
        self.due = DueColumns(plans(cp), self.event_columns)
        # A due time is an anchor plus an SLA: with no SLA anywhere (as engine.kernel.source
        # reads it) every due is NULL, so no anchor is computed — no last/first activity,
        # no due-time events (issue #17: a tenth of the 1M run on the reference workload).
        self.timed = bool(cp.sources) or any(h.sla_seconds is not None for h in cp.handoffs)
        self.lead_fields = dict(self.pb.lead.fields)
        self.names: dict[str, str] = {
            "target_account": "target_account",
            "target_lead": "target_lead",
            "recent": "recent",
            "prior": "prior",
            "fit": "fit",
            "engagement": "engagement",
            "surge": "surge",
            "stage": "stage_index",
            "engagement_since_recycle": "engagement_since_recycle",
            "events_since_recycle": "events_since_recycle",
        }
        # Accounts (engine.sql.accounts): window layers; never in frame mode, where decide
        # re-decides without the account (its sticky floor), so the frame has none either.
        self.accounts = uses_accounts(cp) and not frame
        if self.accounts:
            self.names.update(account_sql.ACCOUNT_COLUMNS)
        self.env = Environment(
            vocabulary=cp.vocabulary,
            lists=cp.lists,
            name=self._name,
            lead=self._lead,
            persona=self._persona,
            aggregate=self._aggregate,
        )

    # -- environment ---------------------------------------------------------------

    def _name(self, name: str) -> exp.Expr:
        if name not in self.names:
            raise NoSqlForm(f"the name `{name}` has no SQL form in this backend")
        return col(self.names[name])

    def _lead(self, name: str) -> exp.Expr:
        if not self.pb.lead.fields:
            raise NoSqlForm(f"`lead.{name}`: the SQL backend needs the playbook to declare lead.fields")
        return col(f"lead__{name}")

    def _persona(self, persona_id: str) -> exp.Expr:
        return col(f"persona__{list(self.pb.personas).index(persona_id)}")

    def _aggregate(self, fn: str, call: ast.Call, where: str) -> exp.Expr:
        key = f"{fn}:{ast.dump(call)}"
        after_recycle = FUNCTIONS[fn].after_recycle  # over the events after the trigger
        pool = self.recycle_aggregates if after_recycle else self.aggregates
        if key not in pool:
            prefix = "since__" if after_recycle else "agg__"
            name = f"{prefix}{len(pool)}"
            pool[key] = (name, *aggregate_sql(fn, call, self.event_columns))
        return col(pool[key][0])

    # -- expressions -----------------------------------------------------------------

    def test(self, expr: CompiledExpression | None, where: str) -> exp.Expr:
        if expr is None:
            return exp.true()
        return Translator(self.env, where).condition(expr.tree)

    def value(self, expr: CompiledExpression, where: str) -> exp.Expr:
        return Translator(self.env, where).value(expr.tree)

    def _points(self, points: FitPoints, cap: float | None, where: str) -> exp.Expr:
        """What a fit branch that held adds: decide's ``_points``."""
        if not isinstance(points, CompiledExpression):
            return _double(lit(points if cap is None or points <= cap else cap))
        value = computed_points(self.value(points, where))
        if cap is None:
            return value
        limit = _double(lit(cap))
        return exp.Case(ifs=[exp.If(this=exp.GT(this=value.copy(), expression=limit),
                                    true=limit.copy())], default=value)

    # -- the query -------------------------------------------------------------------

    def build(self) -> SqlQuery:
        sticky = [i for i, stage in enumerate(self.cp.stages) if stage.sticky]
        frame_ctes: list[tuple[str, exp.Expr]] = []
        if sticky:
            frames = _Builder(self.cp, None, frame=True)
            frame_ctes = frames.sticky_floor(sticky, self.as_of)
            self.event_columns |= frames.event_columns
        layers = self._layers(sticky=bool(sticky))
        facts = self._facts(sticky=bool(sticky))
        ctes: list[tuple[str, exp.Expr]] = [*self._events(), *frame_ctes, *facts]
        ctes += self._chain(layers, "lead_facts")
        final = (
            output_select(self.cp, self.as_of)
            .from_(ctes[-1][0], copy=False)
            .order_by(col("lead_id"), copy=False)
        )
        for name, body in ctes:
            final = final.with_(name, as_=body, copy=False)
        lead_columns = {name: LEAD_TYPES[t] for name, t in self.lead_fields.items()}
        return SqlQuery(final, lead_columns, sorted(self.event_columns), self.notes)

    def _chain(self, layers: list[Layer], start: str) -> list[tuple[str, exp.Expr]]:
        """Each layer a CTE selecting everything of the previous one plus its columns."""
        ctes: list[tuple[str, exp.Expr]] = []
        previous = self.prefix + start
        for layer in layers:
            select = exp.select(exp.Star()).from_(previous, copy=False)
            for alias, expression, comment in layer.columns:
                aliased = exp.alias_(expression, alias)
                if comment:
                    aliased.add_comments([f" {comment} "])
                select = select.select(aliased, copy=False)
            previous = self.prefix + layer.name
            ctes.append((previous, select))
        return ctes

    def sticky_floor(self, sticky: list[int], as_of: exp.Expr) -> list[tuple[str, exp.Expr]]:
        """CTEs ending in ``sticky_floor(lead_id, sticky_floor)``: the highest sticky stage
        reached at an earlier event instant.

        ``decide`` re-decides at every distinct event time before t and keeps the
        highest sticky stage found; that equals the highest stage index whose entry
        held at some earlier instant and is sticky, which is what this computes, with
        every aggregate taken as of the instant (events at or before it).
        """
        layers = self._layers()
        fields = sorted(self.event_columns | {"content"})
        frames = (
            exp.select("lead_id", exp.alias_(col("at"), "frame_at"))
            .distinct()
            .from_("history", copy=False)
            .where(exp.LT(this=col("at"), expression=as_of.copy()), copy=False)
        )
        age = age_us(epoch_us(col("frame_at", "f")), col("at", "h"))
        history = (
            exp.select(
                col("lead_id", "h"),
                col("frame_at", "f"),
                *[col(c, "h") for c in ("event_id", "at", "type", "seq", *fields, "weight", "content_stage")],
                exp.alias_(age, "age_us"),
            )
            .from_(exp.alias_(exp.to_table("history"), "h"), copy=False)
            .join(
                exp.alias_(exp.to_table("frames"), "f"),
                on=exp.and_(
                    exp.EQ(this=col("lead_id", "f"), expression=col("lead_id", "h")),
                    exp.LTE(this=col("at", "h"), expression=col("frame_at", "f")),
                ),
                copy=False,
            )
        )
        ctes: list[tuple[str, exp.Expr]] = [("frames", frames), ("frame_history", history)]
        ctes += self._facts()
        ctes += self._chain(layers, "lead_facts")
        floor = (
            exp.select("lead_id", exp.alias_(exp.Max(this=col("stage_index")), "sticky_floor"))
            .from_(ctes[-1][0], copy=False)
            .where(exp.In(this=col("stage_index"), expressions=[lit(i) for i in sticky]), copy=False)
            .group_by(col("lead_id"), copy=False)
        )
        floor.selects[1].add_comments(
            [" sticky stages: the highest reached at an earlier event instant holds the lead there "]
        )
        return [*ctes, ("sticky_floor", floor)]

    def _events(self) -> list[tuple[str, exp.Expr]]:
        """Events deduplicated by id (earliest kept), with weight and age.

        Only events that have an id are ranked (a window sort), so exports without
        ids pay nothing for deduplication. Events after as_of stay in ``history`` with a
        negative ``age_us``, and every reader keeps only ``_live()`` rows: a ``WHERE`` cut
        here would be pushed below the input's timestamp cast, which then runs twice per
        event (filter, then projection), ~10% of the query. Deduplicating before the cut
        keeps the same events: the earliest copy is at or before as_of exactly when some
        copy is.
        """
        cp = self.cp
        self.event_columns.add("content")
        if any(r.on == "disposition" for r in cp.recycle):
            self.event_columns.add("reason")
        fields = sorted(self.event_columns)
        base = ["lead_id", "event_id", "at", "type", "seq", *fields]
        every = exp.select(
            "lead_id", "event_id", exp.alias_(col("occurred_at"), "at"), "type", "seq", *fields
        ).from_("events", copy=False)
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[col("lead_id"), col("event_id")],
            order=exp.Order(expressions=[exp.Ordered(this=col(c)) for c in ("at", "type", "seq")]),
        )
        ranked = (
            exp.select(*base, exp.alias_(rank, "copy_rank"))
            .from_("all_events", copy=False)
            .where(not_null(col("event_id")), copy=False)
        )
        first_copies = (
            exp.select(*base)
            .from_(ranked.subquery("ranked"), copy=False)
            .where(exp.EQ(this=col("copy_rank"), expression=lit(1)), copy=False)
        )
        without_id = (
            exp.select(*base)
            .from_("all_events", copy=False)
            .where(exp.Is(this=col("event_id"), expression=exp.null()), copy=False)
        )
        unique = exp.union(without_id, first_copies, distinct=False)
        age = age_us(self.as_of_us.copy(), col("at"))
        weight = _double(content_sql.weight(self.pb, col("type"), col("content")))
        kept = exp.select(
            *base,
            exp.alias_(age, "age_us"),
            exp.alias_(weight, "weight"),
            exp.alias_(content_sql.content_stage(self.pb, col("content")), "content_stage"),
            *([exp.alias_(content_sql.cap_bucket(self.pb, col("type"), col("content")), "cap_bucket")]
              if self.cp.content_caps else []),
        ).from_(unique.subquery("unique_events"), copy=False)
        return [(EVENT_CTES[0], every), (EVENT_CTES[1], kept)]

    def _decayed(self) -> exp.Expr:
        """Engagement before the cap: decayed points in whole 2**-32 units, summed exactly.

        The Python path adds ``floor(points * 2**32 + 0.5)`` per event as integers, so a
        plain ``SUM`` (any order, any dialect) gives the same total to the bit. Python
        skips events worth 0 points; here they add ``floor(0 * factor * 2**32 + 0.5) = 0``
        (the factor is finite: ages are never negative), so no per-row test is needed.
        """
        cp = self.cp
        points: exp.Expr = _double(col("weight"))
        if cp.half_life_seconds:
            seconds = exp.Div(this=_double(col("age_us")), expression=_double(lit(US)))
            halvings = exp.Div(this=seconds, expression=_double(lit(cp.half_life_seconds)))
            factor: exp.Expr = exp.Pow(this=_double(exp.Literal.number("0.5")), expression=halvings)
            # Past 200 half-lives a term is floor(x * 2**-168 + 0.5) = 0 in Python whatever it
            # weighs; computing it would underflow, which Postgres raises as an error.
            factor = exp.Case(
                ifs=[exp.If(this=exp.GT(this=halvings.copy(), expression=_double(lit(200))),
                            true=_double(lit(0)))],
                default=factor,
            )
            points = exp.Mul(this=points, expression=factor)
        where = None
        if cp.engagement_window_seconds is not None:
            where = cmp_seconds("age_us", cp.engagement_window_seconds)
        if not cp.capped_types:
            return micro_sum(points, where)

        def units(*tests: exp.Expr) -> exp.Expr:
            return micro_units(points.copy(), exp.and_(*(t.copy() for t in (where, *tests) if t is not None)))

        # Capped types' units are summed apart and capped before the total (decide's _capped_units).
        capped = [lit(t) for t in cp.capped_types]
        total: exp.Expr = units(exp.Not(this=exp.In(this=col("type"), expressions=capped)))
        for event_type in cp.capped_types:
            of_type = exp.EQ(this=col("type"), expression=lit(event_type))
            globs = cp.content_caps.get(event_type, {})
            if not globs:
                typed = units(of_type)
            else:
                typed = units(of_type, exp.EQ(this=col("cap_bucket"), expression=_double(lit(0))))
                for index, cap in enumerate(globs.values(), 1):
                    found = units(of_type, exp.EQ(this=col("cap_bucket"), expression=_double(lit(index))))
                    typed = exp.Add(this=typed, expression=exp.Least(this=found, expressions=[lit(cap)]))
            if event_type in cp.type_caps:
                typed = exp.Least(this=typed, expressions=[lit(cp.type_caps[event_type])])
            total = exp.Add(this=total, expression=typed)
        return from_micro(total)

    def _capped(self, column: exp.Expr) -> exp.Expr:
        total = exp.Coalesce(this=column, expressions=[_double(lit(0))])
        if self.cp.engagement_cap is None:
            return total
        cap = _double(lit(self.cp.engagement_cap))
        return exp.Case(
            ifs=[exp.If(this=exp.GT(this=total.copy(), expression=cap), true=cap.copy())], default=total
        )

    def _facts(self, sticky: bool = False) -> list[tuple[str, exp.Expr]]:
        """Per-lead aggregates, the latest recycle trigger, and what happened since it."""
        cp = self.cp
        window = cp.surge_window_seconds
        surge_filter: exp.Expr = exp.true()
        if cp.surge_events is not None:
            surge_filter = exp.In(this=col("type"), expressions=[lit(t) for t in sorted(cp.surge_events)])
        recent = exp.and_(surge_filter.copy(), cmp_seconds("age_us", window))
        prior = exp.and_(
            surge_filter.copy(),
            exp.GTE(this=col("age_us"), expression=lit(window * US)),
            cmp_seconds("age_us", 2 * window),
        )
        agg_columns: list[exp.Expr] = [
            *[col(k) for k in self.keys],
            exp.alias_(self._decayed(), "engagement_total"),
            exp.alias_(
                exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=recent)), "recent"
            ),
            exp.alias_(
                exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=prior)), "prior"
            ),
        ]
        if self.timed:
            agg_columns.append(exp.alias_(exp.Max(this=col("at")), "last_at"))
        first_at = self.timed and not self.frame and self.due.first_needed()  # held since the first activity
        if first_at:
            agg_columns.append(exp.alias_(exp.Min(this=col("at")), "first_at"))
        agg_columns += [exp.alias_(e, n) for n, e, _ in self.aggregates.values()]
        if not self.frame:  # frame_history is already cut at each frame's instant
            agg_columns = [_live_only(c) for c in agg_columns]
        ctes: list[tuple[str, exp.Expr]] = [
            (
                self.prefix + "per_lead",
                exp.select(*agg_columns)
                .from_(self.prefix + "history", copy=False)
                .group_by(*[col(k) for k in self.keys], copy=False),
            )
        ]
        joins = [(self.prefix + "per_lead", "a")]
        facts: list[exp.Expr] = [
            *[col(k, "f" if k == "frame_at" else "l") for k in self.keys],
            *[exp.alias_(col(f, "l"), f"lead__{f}") for f in self.lead_fields],
            exp.alias_(self._capped(col("engagement_total", "a")), "engagement_total"),
            exp.alias_(exp.Coalesce(this=col("recent", "a"), expressions=[lit(0)]), "recent"),
            exp.alias_(exp.Coalesce(this=col("prior", "a"), expressions=[lit(0)]), "prior"),
            *([col("last_at", "a")] if self.timed else []),
            *([col("first_at", "a")] if first_at else []),
            *[
                exp.alias_(
                    exp.Coalesce(this=col(n, "a"), expressions=[empty])
                    if empty is not None and not isinstance(empty, exp.Null)
                    else col(n, "a"),
                    n,
                )
                for n, _, empty in self.aggregates.values()
            ],
        ]
        if sticky:
            joins.append(("sticky_floor", "s"))
            facts.append(col("sticky_floor", "s"))
        if self.timed and not self.frame and self.due.terms:  # when each handoff's condition first held
            ctes += self.due.ctes(_live())
            joins.append(("due_anchor", "d"))
            facts += self.due.facts()
        if cp.recycle and not self.frame:
            ctes += self._recycle_ctes()
            joins += [("recycle_trigger", "t"), ("since_recycle", "r")]
            facts += [
                col("recycle_rule", "t"),
                col("recycled_at", "t"),
                exp.alias_(self._capped(col("engagement_since_total", "r")), "engagement_since_total"),
                exp.alias_(
                    exp.Coalesce(this=col("events_since_recycle", "r"), expressions=[lit(0)]),
                    "events_since_recycle",
                ),
                *[
                    exp.alias_(exp.Coalesce(this=col(n, "r"), expressions=[lit(0)]), n)
                    for n, _, _ in self.recycle_aggregates.values()
                ],
            ]
        select = exp.select(*facts).from_(exp.alias_(exp.to_table("leads"), "l"), copy=False)
        if self.frame:
            select = select.join(
                exp.alias_(exp.to_table("frames"), "f"),
                on=exp.EQ(this=col("lead_id", "f"), expression=col("lead_id", "l")),
                copy=False,
            )
        for table, alias in joins:
            on = [exp.EQ(this=col("lead_id", alias), expression=col("lead_id", "l"))]
            if self.frame and alias == "a":
                on.append(exp.EQ(this=col("frame_at", alias), expression=col("frame_at", "f")))
            select = select.join(
                exp.alias_(exp.to_table(table), alias), on=exp.and_(*on), join_type="LEFT", copy=False
            )
        ctes.append((self.prefix + "lead_facts", select))
        return ctes

    def _recycle_ctes(self) -> list[tuple[str, exp.Expr]]:
        cp = self.cp
        ifs = []
        for index, rule in enumerate(cp.recycle):
            cond: exp.Expr = exp.EQ(this=col("type"), expression=lit(rule.on))
            if rule.on == "disposition":
                cond = exp.and_(cond, exp.EQ(this=col("reason"), expression=lit(rule.rule.id)))
            rejected = cp.life.rejected  # a rejected handoff recycles with its reason
            if rejected is not None and rejected != rule.on:
                cond = exp.or_(cond, exp.and_(exp.EQ(this=col("type"), expression=lit(rejected)),
                                              exp.EQ(this=col("reason"), expression=lit(rule.rule.id))))
            elif rejected is not None and rule.on != "disposition":
                cond = exp.and_(cond, exp.EQ(this=col("reason"), expression=lit(rule.rule.id)))
            ifs.append(exp.If(this=cond, true=lit(index)))
        latest = exp.Window(
            this=exp.RowNumber(),
            partition_by=[col("lead_id")],
            order=exp.Order(
                expressions=[
                    exp.Ordered(this=e, desc=True)
                    for e in (
                        col("at"),
                        col("type"),
                        exp.Coalesce(this=col("event_id"), expressions=[lit("")]),
                        col("seq"),
                    )
                ]
            ),
        )
        triggers = (
            exp.select(
                "lead_id",
                exp.alias_(exp.Case(ifs=ifs), "recycle_rule"),
                exp.alias_(col("at"), "recycled_at"),
                exp.alias_(latest, "latest"),
            )
            .from_("history", copy=False)
            .where(exp.and_(_live(), exp.or_(*[i.args["this"].copy() for i in ifs])), copy=False)
        )
        trigger = (
            exp.select("lead_id", "recycle_rule", "recycled_at")
            .from_(triggers.subquery("x"), copy=False)
            .where(exp.EQ(this=col("latest"), expression=lit(1)), copy=False)
        )
        since = [
            col("lead_id", "h"),
            exp.alias_(self._decayed(), "engagement_since_total"),
            exp.alias_(exp.Count(this=exp.Star()), "events_since_recycle"),
            *[exp.alias_(e, n) for n, e, _ in self.recycle_aggregates.values()],
        ]
        after = (
            exp.select(*since)
            .from_(exp.alias_(exp.to_table("history"), "h"), copy=False)
            .join(
                exp.alias_(exp.to_table("recycle_trigger"), "t"),
                on=exp.EQ(this=col("lead_id", "t"), expression=col("lead_id", "h")),
                copy=False,
            )
            .where(
                exp.and_(_live("h"), exp.GT(this=col("at", "h"), expression=col("recycled_at", "t"))),
                copy=False,
            )
            .group_by(col("lead_id", "h"), copy=False)
        )
        return [("recycle_trigger", trigger), ("since_recycle", after)]

    def _layers(self, sticky: bool = False) -> list[Layer]:
        """Translate every rule (registering the aggregates it needs) into CTE columns: each
        section of ``engine.pipeline.PIPELINE`` by its method in :data:`_SECTIONS`, in
        decision order (the aggregates are numbered in that order)."""
        self.sticky = sticky
        layers: list[Layer] = []
        for section, emitter in walk(_SECTIONS, "the SQL query (engine/sql/query.py)"):
            emitter(self, section, layers)
        if not self.frame:  # a handoff's life: accepted, overdue, nurture (engine.sql.life)
            life = life_layers(self.cp, self.aggregates, self.as_of)
            layers += [Layer(name, columns) for name, columns in life]
        return layers

    def _personas(self, section: Section, layers: list[Layer]) -> None:
        personas = Layer(section.key)  # each CTE named for its section
        for index, rule in enumerate(self.cp.personas):
            personas.add(
                f"persona__{index}",
                self.test(rule.expr, f"{section.key}.{rule.id}"),
                f"{section.label} {rule.id} (line {rule.line}): {_src(rule.expr)}",
            )
        layers.append(personas)

    def _targets(self, section: Section, layers: list[Layer]) -> None:
        """The lead's own target status; with accounts, the account's right after it."""
        cp = self.cp
        targets = Layer(section.key)
        own = "own_target_account" if self.accounts else "target_account"
        for name, target in ((own, cp.target_accounts), ("target_lead", cp.target_leads)):
            where = f"{section.key}.{target.id}" if target is not None else ""
            value = self.test(target.expr, where) if target is not None else exp.false()
            targets.add(
                name,
                value,
                f"{where} (line {target.line}): {_src(target.expr)}"
                if target is not None
                else None,
            )
        layers.append(targets)
        if self.accounts:
            targets.add("account_key", account_sql.key(cp), "the lead's account ('' for none)")
            account_targets = Layer("account_targets")
            account_targets.add("target_account", account_sql.target(col(own)),
                                "an account is a target if any of its leads is")
            layers.append(account_targets)

    def _fit(self, section: Section, layers: list[Layer]) -> None:
        """One column per fit rule; their total is the surge CTE's (it reads these aliases)."""
        cp = self.cp
        scores = Layer("scores")
        terms: list[exp.Expr] = []
        for fit_rule in cp.fit_rules:
            where = f"{section.key}.{fit_rule.id}"
            branches = [
                exp.If(this=self.test(e, where), true=self._points(points, fit_rule.cap, f"{where}.points"))
                for e, points in fit_rule.branches
            ]
            alias = f"fit_rule__{len(terms)}"
            text = " | ".join(f"{e.source} -> {_points_text(p)}" for e, p in fit_rule.branches)
            if fit_rule.cap is not None:
                text += f" (cap {fit_rule.cap:g})"
            scores.add(
                alias,
                exp.Case(ifs=branches, default=_double(lit(0))) if branches else _double(lit(0)),
                f"{section.name} {fit_rule.id} (line {fit_rule.line}): {text}",
            )
            terms.append(col(alias))
        fit_total = naive_sum(terms)
        if cp.fit_cap is not None:
            cap = _double(lit(cp.fit_cap))
            fit_total = exp.Case(
                ifs=[exp.If(this=exp.GT(this=fit_total.copy(), expression=cap), true=cap.copy())],
                default=fit_total,
            )
        self.fit_total = fit_total
        layers.append(scores)

    def _surge(self, section: Section, layers: list[Layer]) -> None:
        """The surge, beside the fit total; then fit and engagement rounded (the scores are
        complete before exclusions, as in decide)."""
        cp = self.cp
        surge = Layer("surge")
        surge.add("fit_total", self.fit_total, "fit: the sum of the rules that held, capped")
        surge.add(
            "surge",
            self.test(cp.surge.expr, section.key) if cp.surge else exp.false(),
            f"surge: {_src(cp.surge.expr)}" if cp.surge else None,
        )
        rounded = [("fit", "fit_total"), ("engagement", "engagement_total")]
        if cp.recycle and not self.frame:
            rounded.append(("engagement_since_recycle", "engagement_since_total"))
        layers += [surge, *_rounding("scores_rounded", rounded)]

    def _exclusions(self, section: Section, layers: list[Layer]) -> None:
        """The first exclusion that holds, in the ``stages`` CTE; with accounts, the
        account's values right after it (the stages may read them)."""
        cp = self.cp
        decide = Layer("stages")
        exclusions = [
            exp.If(this=self.test(r.expr, f"{section.key}.{r.id}"), true=lit(r.id)) for r in cp.exclusions
        ]
        decide.add(
            "excluded",
            exp.Case(ifs=exclusions) if exclusions else exp.null(),
            "exclusions, first match: " + "; ".join(f"{r.id}: {_src(r.expr)}" for r in cp.exclusions),
        )
        layers.append(decide)
        if self.accounts:
            account = Layer("account")
            for name, value, note in account_sql.values(cp, latest=self.timed):
                account.add(name, value, note)
            layers += [account, Layer("account_stages")]

    def _stages(self, section: Section, layers: list[Layer]) -> None:
        """The stage, in the last CTE (the exclusions', or the one after the account's
        values); in frame mode only it; with sticky stages, the floor's CTE after it."""
        cp = self.cp
        stages = [
            exp.If(this=self.test(s.rule.expr, f"{section.key}.{s.rule.id}"), true=lit(i))
            for i, s in reversed(list(enumerate(cp.stages)))
            if i > 0
        ]
        decide = layers[-1]
        decide.add(
            "raw_stage_index" if self.sticky and not self.frame else "stage_index",
            exp.Case(ifs=stages, default=lit(0)) if stages else lit(0),
            "stage, the highest whose entry holds: "
            + "; ".join(f"{s.rule.id}: {_src(s.rule.expr)}" for s in cp.stages[1:]),
        )
        if self.frame:
            decide.columns = [c for c in decide.columns if c[0] == "stage_index"]
        elif self.sticky:
            floor = Layer("sticky_stage")
            held = exp.GT(
                this=exp.Coalesce(this=col("sticky_floor"), expressions=[lit(0)]),
                expression=col("raw_stage_index"),
            )
            floor.add(
                "stage_index",
                exp.Case(ifs=[exp.If(this=held, true=col("sticky_floor"))], default=col("raw_stage_index")),
                "the stage, or a higher sticky stage reached at an earlier event",
            )
            layers.append(floor)

    def _recycle(self, section: Section, layers: list[Layer]) -> None:
        if not self.frame:  # frames decide the stage only
            layers += self._recycle_layers(section)

    def _recycle_layers(self, section: Section) -> list[Layer]:
        cp = self.cp
        layer = Layer("recycled")
        if not cp.recycle:
            layer.add("recycle_active", exp.false())
            layer.add("recycle_until", exp.cast(exp.null(), "TIMESTAMPTZ"))
            layer.add("recycle_reason", exp.cast(exp.null(), "VARCHAR"))
            return [layer]
        until = exp.Case(
            this=col("recycle_rule"),
            ifs=[
                exp.If(
                    this=lit(i),
                    true=exp.TimestampAdd(
                        this=col("recycled_at"), expression=lit(r.cooldown_seconds), unit=exp.var("SECOND")
                    ),
                )
                for i, r in enumerate(cp.recycle)
            ],
        )
        reenter = exp.Case(
            this=col("recycle_rule"),
            ifs=[
                exp.If(this=lit(i), true=self.test(r.reenter, f"{section.key}.{r.rule.id}.reenter_when"))
                for i, r in enumerate(cp.recycle)
                if r.reenter is not None
            ],
            default=exp.false(),
        )
        first = Layer("recycle_window")
        first.add(
            "recycle_until",
            until,
            "recycle: the latest trigger + its cooldown; "
            + "; ".join(f"{r.rule.id}: {r.on} {r.cooldown_seconds}s" for r in cp.recycle),
        )
        first.add(
            "reentered",
            reenter if len(reenter.args.get("ifs") or []) else exp.false(),
            "reenter_when: "
            + "; ".join(f"{r.rule.id}: {r.reenter.source}" for r in cp.recycle if r.reenter is not None),
        )
        active = exp.and_(
            not_null(col("recycled_at")),
            exp.LT(this=self.as_of.copy(), expression=col("recycle_until")),
            exp.not_(col("reentered")),
        )
        layer.add("recycle_active", two_valued(active))
        layer.add(
            "recycle_reason",
            exp.Case(
                this=col("recycle_rule"),
                ifs=[exp.If(this=lit(i), true=lit(r.rule.id)) for i, r in enumerate(cp.recycle)],
            ),
        )
        return [first, layer]

    def _handoffs(self, section: Section, layers: list[Layer]) -> None:
        if not self.frame:  # frames decide the stage only
            layers += self._handoff_layers(section)

    def _handoff_layers(self, section: Section) -> list[Layer]:
        cp = self.cp
        pre = "pre_" if self.accounts else ""  # an account-level fold gives the final columns
        choose = Layer("handoff")
        blocked = exp.or_(not_null(col("excluded")), col("recycle_active"))
        ifs = [exp.If(this=blocked, true=exp.cast(exp.null(), "INTEGER"))]
        ifs += [
            exp.If(this=self.test(h.rule.expr, f"{section.key}.{h.rule.id}"), true=lit(i))
            for i, h in enumerate(cp.handoffs)
        ]
        choose.add(
            pre + "handoff_index",
            exp.Case(ifs=ifs),
            "handoffs, first match (none when excluded or "
            "held): " + "; ".join(f"{h.rule.id}: {_src(h.rule.expr)}" for h in cp.handoffs),
        )
        details = Layer("handed_off")
        priorities = [
            exp.If(this=lit(i), true=_double(self.value(h.priority, f"{section.key}.{h.rule.id}.priority")))
            for i, h in enumerate(cp.handoffs)
            if h.priority is not None
        ]
        details.add(
            "priority_raw",
            exp.Case(this=col(pre + "handoff_index"), ifs=priorities) if priorities else _double(exp.null()),
        )
        source = self._source_sla()
        slas = []
        for i, h in enumerate(cp.handoffs):
            if h.sla_seconds is None:
                sla = source.copy()
            else:
                sla = exp.Case(
                    ifs=[
                        exp.If(
                            this=exp.and_(
                                not_null(source), exp.LT(this=source.copy(), expression=lit(h.sla_seconds))
                            ),
                            true=source.copy(),
                        )
                    ],
                    default=lit(h.sla_seconds),
                )
            slas.append(exp.If(this=lit(i), true=sla))
        no_sla = exp.cast(exp.null(), "BIGINT")  # typed: Postgres cannot multiply an interval by text
        sla_seconds = exp.Case(this=col(pre + "handoff_index"), ifs=slas) if slas else no_sla
        if not self.timed:  # no SLA: no due time (see __init__)
            details.add(pre + "due", exp.cast(exp.null(), "TIMESTAMPTZ"), "due: none, no handoff has an SLA")
            details.add("handoff_sla", no_sla, "the SLA that set due: none")
            return self._handoff_rest(details, choose)
        anchor: exp.Expr = exp.Coalesce(this=col("last_at"), expressions=[self.as_of.copy()])
        latest_anchor = anchor
        if self.due.needed():  # engine.due: each handoff's own anchor
            anchor = exp.Case(this=col(pre + "handoff_index"), ifs=[
                exp.If(this=lit(i), true=self.due.anchor(i, self.as_of)) for i in range(len(cp.handoffs))])
        per_account = [lit(i) for i, h in enumerate(cp.handoffs) if h.per_account]
        if self.accounts and per_account:  # an account handoff counts from the account's activity
            account_anchor = exp.Coalesce(this=col("account_latest"), expressions=[latest_anchor.copy()])
            anchor = exp.Case(
                ifs=[exp.If(this=two_valued(exp.In(this=col(pre + "handoff_index"), expressions=per_account)),
                            true=account_anchor)],
                default=anchor)
        if cp.recycle:
            # A cooldown that ran out (no early re-entry) after the last activity: count from its end.
            released = exp.and_(
                not_null(col("recycled_at")), exp.not_(col("recycle_active")), exp.not_(col("reentered"))
            )
            later = exp.and_(released, exp.GT(this=col("recycle_until"), expression=anchor.copy()))
            anchor = exp.Case(ifs=[exp.If(this=later, true=col("recycle_until"))], default=anchor)
        details.add(
            pre + "due",
            exp.TimestampAdd(this=anchor, expression=sla_seconds, unit=exp.var("SECOND")),
            "due: when the handoff's condition first held (engine.due; or a later end of "
            "cooldown) + the shorter of the handoff's SLA and the source's",
        )
        details.add("handoff_sla", sla_seconds.copy(), "the SLA that set due (overdue counts from due - it)")
        return self._handoff_rest(details, choose)

    def _handoff_rest(self, details: Layer, choose: Layer) -> list[Layer]:
        """The score, the rounded priority and the account fold, after due."""
        cp, pre = self.cp, "pre_" if self.accounts else ""
        details.add("score_raw", exp.Add(this=col("fit"), expression=col("engagement")),
                    "score before rounding: fit + engagement (engine.evaluate.rank_score)")
        rounded = [(pre + "priority", "priority_raw"), ("score_base", "score_raw")]
        layers = [choose, details, *_rounding("priority_rounded", rounded)]
        if self.accounts:
            for index, columns in enumerate(account_sql.fold(cp, self.prefix + "account_handoff_2"), start=1):
                fold = Layer(f"account_handoff_{index}")
                for alias, expression in columns:
                    fold.add(alias, expression, "per: account handoffs: one per account" if index == 1
                             and alias == "per_account" else None)
                layers.append(fold)
        return layers

    def _source_sla(self) -> exp.Expr:
        source_field = self.pb.lead.source
        if source_field is None or not self.cp.sources:
            return exp.cast(exp.null(), "BIGINT")  # typed: Postgres cannot multiply an interval by text
        if source_field not in self.lead_fields:
            raise NoSqlForm(f"lead.source `{source_field}` must be a declared lead field for SQL")
        value = exp.cast(col(f"lead__{source_field}"), "VARCHAR")
        return exp.Case(
            this=value, ifs=[exp.If(this=lit(k), true=lit(v)) for k, v in self.cp.sources.items()]
        )

    # -- output ------------------------------------------------------------------------


#: Each section's CTE columns (``engine.pipeline.walk`` fails for a section without one).
_SECTIONS: dict[Section, Callable[[_Builder, Section, list[Layer]], None]] = {
    PERSONAS: _Builder._personas,
    TARGETS: _Builder._targets,
    FIT: _Builder._fit,
    SURGE: _Builder._surge,
    EXCLUSIONS: _Builder._exclusions,
    STAGES: _Builder._stages,
    RECYCLE: _Builder._recycle,
    HANDOFFS: _Builder._handoffs,
}


def _live(table: str | None = None) -> exp.Expr:
    """The event is at or before as_of (``history`` keeps later ones; see ``_events``)."""
    return exp.GTE(this=col("age_us", table), expression=lit(0))


def _live_only(column: exp.Expr) -> exp.Expr:
    """An aggregate column over ``history`` restricted to live events (at or before as_of).

    A filtered COUNT gets the condition in its FILTER; other aggregates read NULL for
    later events (which SUM, MAX, MIN and COUNT(x) skip); a bare COUNT(*) gets a FILTER.
    """

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Filter):
            where = node.expression
            cond = where.this if isinstance(where, exp.Where) else where
            return exp.Filter(this=node.this, expression=exp.Where(this=exp.and_(_live(), cond.copy())))
        if not isinstance(node, exp.AggFunc) or isinstance(node.parent, exp.Filter):
            return node
        if isinstance(node.this, exp.Star):
            return exp.Filter(this=node, expression=exp.Where(this=_live()))
        node.set("this", exp.Case(ifs=[exp.If(this=_live(), true=node.this)]))
        return node

    if isinstance(column, exp.Column):
        return column
    return column.transform(fix, copy=True)


def _rounding(name: str, targets: list[tuple[str, str]]) -> list[Layer]:
    """Python's round(x, 2) in five steps (see engine.sql.numeric)."""
    layers = []
    for step, columns in enumerate(round2_steps(targets), start=1):
        layer = Layer(f"{name}_{step}")
        for alias, expression in columns:
            comment = (
                f"round({alias}, 2) as Python rounds: the exact side of each midpoint" if step == 5 else None
            )
            layer.add(alias, expression, comment)
        layers.append(layer)
    return layers


def _points_text(points: FitPoints) -> str:
    return f"{points:g}" if not isinstance(points, CompiledExpression) else f"points({_src(points)})"


def _src(expr: CompiledExpression | None) -> str:
    return "always" if expr is None else " ".join(expr.source.split())


#: The CTEs over every event (``_Builder._events``): every row read, then deduplicated and weighed.
EVENT_CTES = ("all_events", "history")


def inline_events(tree: exp.Select) -> exp.Select:
    """``tree`` with the event CTEs ``NOT MATERIALIZED`` (DuckDB and Postgres syntax).

    DuckDB buffers a CTE that more than one part of the query reads: for ``history``
    that is every event with its weight and age, 30M rows at 1M leads, and it spills
    (issue #17: the decisions query took 10.4 s wall; read twice instead, 6.9 s). Only
    for events without ids: with ids, each reader would repeat the deduplicating window.
    """
    inlined = tree.copy()
    for cte in inlined.find_all(exp.CTE):
        if cte.alias in EVENT_CTES:
            cte.set("materialized", False)
    return inlined


def build_query(cp: CompiledPlaybook, as_of: datetime | str | None = None) -> SqlQuery:
    """The playbook as one SELECT over ``leads`` and ``events``.

    ``as_of`` None leaves a ``:as_of`` placeholder; :data:`AS_OF_SLOTS` leaves two, where
    the literal instant and its epoch microseconds go (:mod:`engine.sql.statements` fills
    them in the SQL text). Every dialect gets the same tree:
    engagement is an exact integer sum, so no dialect depends on addition order.
    Raises :class:`NoSqlForm` naming the first construct that cannot be compiled.
    """
    return _Builder(cp, as_of).build()
