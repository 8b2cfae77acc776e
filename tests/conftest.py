"""Plugins shared by every test folder."""

pytest_plugins = ["tests.real_loki_fixtures"]
