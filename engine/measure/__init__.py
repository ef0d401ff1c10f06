"""Measurement: what a playbook's decisions are worth against outcomes, and how to improve them.

Measurement consumes decisions joined to outcomes; it never changes how a lead is decided.
"""
