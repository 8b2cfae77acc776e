"""The init path's import budget, as a rule that fails when broken.

Everything up to the first ``next`` is paid on every cold start, before the function's own
init may even begin: it runs on ``_socket``/``_thread`` and a few modules the interpreter
has frozen or builds in. Compared as sets of module names (``sys.modules``), not timings,
like Powertools' tests/performance/test_high_level_imports.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ext_fakes import FakeLambda, FakeLoki
from ext_process import EXTENSION_ROOT

#: The package's modules the init path may load (the rest is for the warm-up thread).
INIT_MODULES = {
    "loki_telemetry_extension",
    "loki_telemetry_extension.config",
    "loki_telemetry_extension.diag",
    "loki_telemetry_extension.drop_report",
    "loki_telemetry_extension.envvars",
    "loki_telemetry_extension.extensions_api",
    "loki_telemetry_extension.http11",
    "loki_telemetry_extension.lifecycle",
    "loki_telemetry_extension.listener",
    "loki_telemetry_extension.platform_events",
    "loki_telemetry_extension.telemetry_api",
}
#: Standard-library modules allowed before the first ``next``: C modules and the few pure
#: modules ``os`` needs (frozen in the interpreter since 3.11: no file is read for them).
STDLIB_ALLOWED = {
    "__future__", "_socket", "_thread", "time",
    "os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc",
}

#: Runs the extension with a spy on the first ``next``: writes what was imported until then.
SPY = """
import sys
before = set(sys.modules)
sys.path.append(sys.argv[1])
out = sys.argv[2]
from loki_telemetry_extension import extensions_api, lifecycle
original = extensions_api.ExtensionsAPI.next_event
written = []
def spy(self, after_send=None):
    if not written:
        written.append(True)
        with open(out, "w") as f:
            f.write("\\n".join(sorted(set(sys.modules) - before)))
    return original(self, after_send)
extensions_api.ExtensionsAPI.next_event = spy
sys.argv = [sys.argv[0], "", "loki-telemetry-extension"]
lifecycle.main()
"""


def _imported_before_first_next(tmp_path: Path, fake_lambda: FakeLambda, env: dict[str, str]) -> set[str]:
    script, out = tmp_path / "spy.py", tmp_path / "modules.txt"
    script.write_text(SPY)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(script), str(EXTENSION_ROOT), str(out)],
        env={"AWS_LAMBDA_RUNTIME_API": fake_lambda.runtime_api, "AWS_LAMBDA_FUNCTION_NAME": "f", **env},
    )
    try:
        assert fake_lambda.wait(lambda f: f.next_calls >= 1)
        fake_lambda.shutdown()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return set(out.read_text().split())


def test_init_path_imports_only_the_allowed_modules(
    tmp_path: Path, fake_lambda: FakeLambda, loki: FakeLoki
) -> None:
    modules = _imported_before_first_next(tmp_path, fake_lambda, {"LOKI_URL": loki.url})
    ours = {m for m in modules if m.split(".")[0] == "loki_telemetry_extension"}
    assert ours <= INIT_MODULES, f"init path imports {sorted(ours - INIT_MODULES)}"
    assert modules - ours <= STDLIB_ALLOWED, f"init path imports {sorted(modules - ours - STDLIB_ALLOWED)}"
    assert fake_lambda.subscription is not None  # the init path did subscribe: nothing was skipped


def test_managed_instances_init_path_is_as_lean(
    tmp_path: Path, fake_lambda: FakeLambda, loki: FakeLoki
) -> None:
    env = {"LOKI_URL": loki.url, "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}
    modules = _imported_before_first_next(tmp_path, fake_lambda, env)
    assert {m for m in modules if not m.startswith("loki_telemetry_extension")} <= STDLIB_ALLOWED
