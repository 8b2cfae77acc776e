"""Fixtures for the extension's unit tests: stdlib + pytest only (run on Python 3.10-3.13)."""

from __future__ import annotations

from ext_fixtures import fake_lambda, loki

__all__ = ["fake_lambda", "loki"]
