"""Measurement: what a playbook's decisions are worth against outcomes, and how to improve them.

Measurement consumes decisions, it never re-decides how a lead is decided: every figure here
is computed from the rows ``engine evaluate`` writes (any backend) and the outcomes read apart
from the leads, which nothing in a playbook's expression scope can reach. Backtest measures;
learn fits the playbook's points to outcomes; funnel and plan look at weeks and targets.
"""
