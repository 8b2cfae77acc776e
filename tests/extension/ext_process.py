"""The real Python build as a subprocess, for the extension's unit tests.

Kept out of ``conftest.py``: test modules import these names, and a bare ``import conftest``
resolves to whichever test folder's conftest pytest loaded last."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXTENSION_ROOT = Path(__file__).resolve().parents[2] / "extension" / "python"
LAUNCHER = EXTENSION_ROOT / "extensions" / "loki-telemetry-extension"


def start_extension(runtime_api: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Run the real extension the way the launcher does (same flags), with this interpreter."""
    full = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "unit-fn",
        **env,
    }
    code = (
        "import sys; sys.path.append(sys.argv[1]); from loki_telemetry_extension.__main__ import main; main()"
    )
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", code, str(EXTENSION_ROOT), "loki-telemetry-extension"],
        env=full,
        stderr=subprocess.PIPE,
        text=True,
    )
