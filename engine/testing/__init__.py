"""Fixture testing: replay fixtures, compare with snapshots, measure rule coverage."""
