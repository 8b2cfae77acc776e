"""Prove the end-to-end tests can fail: break the extension on purpose, one way at a
time, and check that the tests meant to catch each break do fail.

    python -m tests.e2e.mutation_check            # every mutant (a few minutes)
    python -m tests.e2e.mutation_check no-split   # just one

Each mutant copies ``extension/`` to a temp dir, makes one textual change there (the
real tree is never touched) and runs the named tests against the copy through
``E2E_LAYER_DIR``. "KILLED" means the tests failed, as they must. A mutant whose target
text no longer exists (the extension changed) is reported as "STALE", not hidden.
Not collected by pytest (no ``test_`` prefix): it runs pytest itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    file: str  # under extension/loki_telemetry_extension/
    old: str
    new: str
    tests: tuple[str, ...]  # under tests/e2e/


#: Every converted delivery passes here (Dispatcher.accept), whatever fast paths records.py has.
_ACCEPT = "        with self._cond:\n            if conv.entries:\n"

MUTANTS: dict[str, Mutant] = {
    # Loses 1 line in 300 (deterministically by content).
    "lose-1-in-300": Mutant(
        "dispatcher.py",
        _ACCEPT,
        "        conv.entries[:] = [e for e in conv.entries\n"
        "                           if __import__('zlib').crc32(e[2].encode()) % 300 != 7]\n" + _ACCEPT,
        ("test_e2e_burst.py", "test_e2e_shutdown.py::test_shutdown_at_random_point_loses_nothing"),
    ),
    "no-shutdown-drain": Mutant(
        "lifecycle.py",
        "    def on_shutdown(self, event: dict[str, Any]) -> None:\n        if not self.subscribed:\n",
        "    def on_shutdown(self, event: dict[str, Any]) -> None:\n        if True:\n",
        ("test_e2e_shutdown.py", "test_e2e_formats.py::test_text_format_every_record_stored_once"),
    ),
    "no-ship-before-freeze": Mutant(
        "lifecycle.py",
        "        if self.cfg.ship_before_freeze:\n",
        "        if False:\n",
        ("test_e2e_flush_modes.py::test_ship_before_freeze_lines_stored_when_invoke_returns",),
    ),
    "batch-mode-blocks-function": Mutant(
        "lifecycle.py",
        "        if self.cfg.ship_before_freeze:\n",
        "        if True:\n",
        (
            "test_e2e_flush_modes.py::test_batch_mode_adds_nothing_to_invokes_with_small_batches",
            "test_e2e_loki_faults.py::test_slow_loki_does_not_slow_the_function",
        ),
    ),
    "no-age-trigger": Mutant(
        "dispatcher.py",
        "        return max(0.0, oldest + self._interval - now)\n",
        "        return None\n",
        ("test_e2e_flush_modes.py::test_batch_mode_ships_previous_invokes_lines_during_next_invoke",),
    ),
    "no-size-trigger": Mutant(
        "dispatcher.py",
        "        if n >= self._batch_size:\n            return 0.0\n",
        "",
        ("test_e2e_flush_modes.py::test_batch_mode_ships_full_batch_while_thawed",),
    ),
    "no-loki2-fallback": Mutant(
        "dispatcher.py",
        "    if resp.status != 400:\n        return False\n",
        "    if True:\n        return False\n",
        ("test_e2e_loki2.py",),
    ),
    "no-tenant-header": Mutant(
        "lifecycle.py",
        '            headers["X-Scope-OrgID"] = cfg.tenant_id\n',
        "            pass\n",
        ("test_e2e_auth.py::test_tenant_header_is_sent",),
    ),
    "no-auth-header": Mutant(
        "lifecycle.py",
        "        if not (cfg.basic_auth_secret_arn or cfg.bearer_token_secret_arn):\n",
        "        if True:\n",
        (
            "test_e2e_auth.py::test_basic_auth_from_secrets_manager",
            "test_e2e_auth.py::test_bearer_token_from_ssm_securestring",
        ),
    ),
    "ignore-retry-after": Mutant(
        "retry.py",
        '    raw = resp.headers.get("retry-after")\n',
        "    raw = None\n",
        ("test_e2e_loki_faults.py::test_429_storm_honours_retry_after_without_loss",),
    ),
    "uncounted-shutdown-loss": Mutant(
        "dispatcher.py",
        "            self.stats.dropped_shutdown += n\n",
        "            pass\n",
        (
            "test_e2e_misconfig.py::test_unreachable_loki_reports_every_dropped_line",
            "test_e2e_shutdown.py::test_shutdown_with_loki_down_reports_exactly_what_it_dropped",
        ),
    ),
    "listener-dies-on-garbage": Mutant(
        "listener.py",
        "conn.sendall(BAD_RESPONSE)\n",
        '__import__("os")._exit(3)\n',
        ("test_e2e_fuzz.py",),
    ),
    "uncounted-lambda-drops": Mutant(
        "dispatcher.py",
        "            self.stats.lambda_dropped_records += conv.lambda_dropped_records\n",
        "            pass\n",
        ("test_e2e_burst.py::test_lambda_side_drops_are_counted_and_reported",),
    ),
    "no-split": Mutant(
        "records.py",
        "        limit = self.max_line_bytes\n",
        "        limit = 1 << 40\n",
        ("test_e2e_huge_lines.py",),
    ),
    "ascii-only": Mutant(
        "dispatcher.py",
        _ACCEPT,
        "        conv.entries[:] = [(s, t, x.encode('ascii', 'replace').decode(), m)\n"
        "                           for s, t, x, m in conv.entries]\n" + _ACCEPT,
        ("test_e2e_formats.py::test_text_format_every_record_stored_once",),
    ),
    "no-request-id-metadata": Mutant(
        "records.py",
        '                meta["request_id"] = rid\n',
        "                pass\n",
        ("test_e2e_formats.py::test_json_format_request_id_and_level_in_structured_metadata",),
    ),
    "timestamp-is-arrival-time": Mutant(
        "records.py",
        '        ts = iso_to_ns(item.get("time"))\n',
        "        ts = time.time_ns()\n",
        ("test_e2e_burst.py",),
    ),
    "ship-own-diagnostics": Mutant(
        "records.py",
        "                if stream == STREAM_EXTENSION and line.lstrip().startswith(MARKER):\n",
        "                if False:\n",
        ("test_e2e_formats.py::test_extension_logs_never_loop_back_the_extensions_own_diagnostics",),
    ),
    "no-start-line": Mutant(
        "records.py",
        '        return f"START RequestId: {rid}{v}"\n',
        '        return f"BEGIN {rid}{v}"\n',
        ("test_e2e_formats.py::test_platform_events_ship_as_readable_lines",),
    ),
}


def run(name: str, mutant: Mutant, workdir: Path) -> str:
    layer = workdir / name / "extension"
    shutil.copytree(REPO / "extension" / "python", layer, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    target = layer / "loki_telemetry_extension" / mutant.file
    src = target.read_text()
    if src.count(mutant.old) != 1:
        return "STALE (target text not found once; update the mutant)"
    target.write_text(src.replace(mutant.old, mutant.new))
    env = {**os.environ, "E2E_LAYER_DIR": str(layer)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    cmd += [f"tests/e2e/{t}" for t in mutant.tests]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    lines = proc.stdout.strip().splitlines()
    tail = lines[-1] if lines else proc.stderr.strip()[-200:]
    # Show why it failed, so a failure for an unrelated reason (an import error...) is visible.
    why = next((ln.strip() for ln in lines if ln.startswith("E ")), "")
    verdict = "KILLED" if proc.returncode == 1 else f"SURVIVED (pytest exit {proc.returncode})"
    return f"{verdict}: {tail}  {why[:120]}"


def main(argv: list[str]) -> int:
    names = argv or list(MUTANTS)
    unknown = [n for n in names if n not in MUTANTS]
    if unknown:
        print(f"unknown mutants {unknown}; known: {', '.join(MUTANTS)}")
        return 2
    survived = 0
    with tempfile.TemporaryDirectory(prefix="e2e-mutants-") as tmp:
        for name in names:
            verdict = run(name, MUTANTS[name], Path(tmp))
            survived += not verdict.startswith("KILLED")
            print(f"{name:28s} {verdict}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
