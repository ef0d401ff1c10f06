"""Plain `pytest` also replays the playbook fixtures under fixtures/ (see engine.testing.plugin)."""

pytest_plugins = ["engine.testing.plugin"]
