"""Measurement: what a playbook's decisions are worth against outcomes, and over time.

Measurement consumes decisions, it never re-decides how a lead is decided: every figure here
is computed from the rows ``engine evaluate`` writes (any backend) or from the same decision
function at each week's end (:mod:`engine.measure.weeks`, on one read of the export), and
from outcomes read apart from the leads, which nothing in a playbook's expression scope can
reach. Backtest measures; learn fits the playbook's points to outcomes; funnel, capacity and
plan look at weeks and targets.
"""
