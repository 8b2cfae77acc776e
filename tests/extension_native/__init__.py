"""Tests of the native (Go) build of the extension.

A package, so that its conftest is imported as ``extension_native.conftest`` and never takes the
bare name ``conftest`` from tests/extension's (which its test modules import from).
"""
