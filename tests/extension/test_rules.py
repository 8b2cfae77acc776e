"""The extension package imports nothing but the standard library and itself."""

from __future__ import annotations

import ast
import sys

from ext_process import EXTENSION_ROOT

PACKAGE = EXTENSION_ROOT / "loki_telemetry_extension"


def _imported_top_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_standard_library_only() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        foreign = _imported_top_level_names(path.read_text()) - set(sys.stdlib_module_names)
        assert not foreign, f"{path.name} imports {sorted(foreign)}: the extension is stdlib-only"


def test_the_checker_sees_a_foreign_import() -> None:
    assert _imported_top_level_names("import requests\nfrom boto3 import client\nfrom . import x\n") == {
        "requests", "boto3"}
