"""Measurement: what a playbook's decisions add up to over time (funnel, capacity, plan).

Measurement consumes decisions; it never re-decides a rule. The weekly decisions come
from :mod:`engine.measure.weeks` (the decision function at each week's end, on one read
of the export); the rest is arithmetic over them.
"""
