"""Measurement: outcomes joined to decision rows (backtest; learn builds on it).

Measurement consumes decisions, it never re-decides: every figure here is computed from
the rows ``engine evaluate`` writes (any backend) and the outcomes read apart from the
leads, which nothing in a playbook's expression scope can reach.
"""
