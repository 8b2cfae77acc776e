"""The snapshot check really fails on drift (``make integ-snapshot`` itself proves the clean case).

Drift is made without touching any file: the sample reads ``LOKI_URL`` from the environment
at synth time, so passing one to integ-runner changes the Python function's template.
"""

from __future__ import annotations

import subprocess

import pytest
from loki_telemetry_extension import envvars

from integ.check_snapshot import clean_env, integ_runner_command
from sample_app.toolchain import REPO_ROOT

pytestmark = pytest.mark.slow


def test_integ_runner_reports_a_changed_template_and_fails() -> None:
    env = clean_env()
    env[envvars.LOKI_URL] = "https://drift.example/loki/api/v1/push"
    proc = subprocess.run(
        integ_runner_command(), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "CHANGED" in output, output
    assert "https://drift.example/loki/api/v1/push" in output, output
