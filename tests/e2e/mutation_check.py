"""Prove the end-to-end tests can fail: break the extension on purpose, one way at a
time, in each build, and check that the tests meant to catch each break do fail.

    python -m tests.e2e.mutation_check                    # every mutant of both builds
    python -m tests.e2e.mutation_check --build native     # one build's
    python -m tests.e2e.mutation_check no-split           # one mutant (in each build that has it)

Python build: copy ``extension/python`` to a temp dir, make one textual change there (the
real tree is never touched) and run the named tests against the copy (``E2E_LAYER_DIR``,
``E2E_BUILDS=python``). Native build: copy ``extension/native``, change one Go source,
rebuild it with its ``build.py`` (x86_64) and run the tests against that binary
(``E2E_NATIVE_DIR``, ``E2E_BUILDS=native``). "KILLED" means the tests failed, as they
must. A mutant whose target text no longer exists (the extension changed), or whose Go
no longer compiles, is reported as "STALE", not hidden.
Not collected by pytest (no ``test_`` prefix): it runs pytest itself. Slow (minutes per
build): it is not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = {"python": REPO / "extension" / "python", "native": REPO / "extension" / "native"}


@dataclass(frozen=True)
class Mutant:
    file: str  # python: under extension/python/loki_telemetry_extension/; native: under extension/native/
    old: str
    new: str
    tests: tuple[str, ...]  # under tests/e2e/


#: Every converted delivery passes here (Dispatcher.accept), whatever fast paths records.py has.
_ACCEPT = "        with self._cond:\n            if conv.entries:\n"

PYTHON_MUTANTS: dict[str, Mutant] = {
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
        '            before_freeze = mode == "end_of_invoke"\n',
        "            before_freeze = False\n",
        ("test_e2e_flush_modes.py::test_ship_before_freeze_lines_stored_when_invoke_returns",),
    ),
    "batch-mode-blocks-function": Mutant(
        "lifecycle.py",
        '            before_freeze = mode == "end_of_invoke"\n',
        "            before_freeze = True\n",
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
        "        if n >= self._batch_size or self._urgent:\n",
        "        if self._urgent:\n",
        ("test_e2e_flush_modes.py::test_batch_mode_ships_full_batch_while_thawed",),
    ),
    "no-loki2-fallback": Mutant(
        "dispatcher.py",
        "    if resp.status != 400:\n        return None\n",
        "    if True:\n        return None\n",
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
        "                m[METADATA_REQUEST_ID] = rid\n",
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


_GO_ACCEPT = "\td.mu.Lock()\n\tif len(conv.Entries) > 0 {\n"
_GO = "internal/ext/"

NATIVE_MUTANTS: dict[str, Mutant] = {
    # Loses 1 line in 300 (deterministically by content), where every delivery is queued.
    "lose-1-in-300": Mutant(
        _GO + "dispatcher.go",
        _GO_ACCEPT,
        "\t{\n\t\tkept := conv.Entries[:0]\n\t\tfor _, e := range conv.Entries {\n"
        "\t\t\th := 0\n\t\t\tfor i := 0; i < len(e.Line); i++ {\n"
        "\t\t\t\th = (h*31 + int(e.Line[i])) % 1000003\n\t\t\t}\n"
        "\t\t\tif h%300 != 7 {\n\t\t\t\tkept = append(kept, e)\n\t\t\t}\n\t\t}\n"
        "\t\tconv.Entries = kept\n\t}\n" + _GO_ACCEPT,
        (
            "test_e2e_burst.py::test_burst_100k_lines_over_1000_frozen_invokes",
            "test_e2e_runtimes.py",
        ),
    ),
    "no-shutdown-drain": Mutant(
        _GO + "lifecycle.go",
        "func (s *Shipper) OnShutdown(e *Event) {\n\tif !s.Subscribed {\n",
        "func (s *Shipper) OnShutdown(e *Event) {\n\tif true {\n",
        ("test_e2e_shutdown.py", "test_e2e_formats.py::test_text_format_every_record_stored_once"),
    ),
    "no-ship-before-freeze": Mutant(
        _GO + "lifecycle.go",
        "\tbeforeFreeze := s.cfg.Flush == FlushEndOfInvoke\n",
        "\tbeforeFreeze := false\n",
        ("test_e2e_flush_modes.py::test_ship_before_freeze_lines_stored_when_invoke_returns",),
    ),
    "no-age-trigger": Mutant(
        _GO + "dispatcher.go",
        "\treturn max(0, time.Duration(oldest)+d.interval-time.Duration(now))\n",
        "\treturn max(0, time.Duration(oldest)+time.Hour-time.Duration(now))\n",
        ("test_e2e_flush_modes.py::test_batch_mode_ships_previous_invokes_lines_during_next_invoke",),
    ),
    "no-size-trigger": Mutant(
        _GO + "dispatcher.go",
        "\tif n >= d.batch || d.forcePush {\n",
        "\tif d.forcePush {\n",
        ("test_e2e_flush_modes.py::test_batch_mode_ships_full_batch_while_thawed",),
    ),
    "no-loki2-fallback": Mutant(
        _GO + "dispatcher.go",
        "\tif resp == nil || resp.Status != 400 {\n",
        "\tif true {\n",
        ("test_e2e_loki2.py",),
    ),
    "no-tenant-header": Mutant(
        _GO + "lifecycle.go",
        '\t\t\t\theaders["X-Scope-OrgID"] = s.cfg.TenantID\n',
        "\t\t\t\t_ = s.cfg.TenantID\n",
        ("test_e2e_auth.py::test_tenant_header_is_sent",),
    ),
    "no-auth-header": Mutant(
        _GO + "lifecycle.go",
        '\th["Authorization"] = header\n',
        "\t_ = header\n",
        (
            "test_e2e_auth.py::test_basic_auth_from_secrets_manager",
            "test_e2e_auth.py::test_bearer_token_from_ssm_securestring",
        ),
    ),
    "ignore-retry-after": Mutant(
        _GO + "retry.go",
        '\traw, ok := resp.Headers["retry-after"]\n',
        '\traw, ok := resp.Headers["x-ignored"]\n',
        ("test_e2e_loki_faults.py::test_429_storm_honours_retry_after_without_loss",),
    ),
    "uncounted-shutdown-loss": Mutant(
        _GO + "dispatcher.go",
        "\td.stats.Drops[2] += n\n",
        "\t_ = n\n",
        (
            "test_e2e_misconfig.py::test_unreachable_loki_reports_every_dropped_line",
            "test_e2e_shutdown.py::test_shutdown_with_loki_down_reports_exactly_what_it_dropped",
        ),
    ),
    "uncounted-lambda-drops": Mutant(
        _GO + "dispatcher.go",
        "\td.stats.Drops[3] += conv.LambdaDroppedRecords\n",
        "\t_ = conv.LambdaDroppedRecords\n",
        ("test_e2e_burst.py::test_lambda_side_drops_are_counted_and_reported",),
    ),
    "no-split": Mutant(
        _GO + "records.go",
        "\tif len(line) <= limit {\n",
        "\tif true {\n",
        ("test_e2e_huge_lines.py",),
    ),
    "no-request-id-metadata": Mutant(
        _GO + "records.go",
        '\tif m.RequestID != "" {\n',
        "\tif false {\n",
        ("test_e2e_formats.py::test_json_format_request_id_and_level_in_structured_metadata",),
    ),
    "timestamp-is-arrival-time": Mutant(
        _GO + "records.go",
        "\tif v, ok := c.iso.isoToNs(it.time); ok && it.hasTime {\n\t\tts = v\n",
        "\tif _, ok := c.iso.isoToNs(it.time); ok && it.hasTime {\n\t\tts = time.Now().UnixNano()\n",
        ("test_e2e_burst.py::test_burst_100k_lines_over_1000_frozen_invokes",),
    ),
    "ship-own-diagnostics": Mutant(
        _GO + "records.go",
        "\t\t\tif stream == StreamExtension && "
        'strings.HasPrefix(strings.TrimLeft(line, " \\t\\r\\n\\v\\f"), Marker) {\n',
        "\t\t\tif false {\n",
        ("test_e2e_formats.py::test_extension_logs_never_loop_back_the_extensions_own_diagnostics",),
    ),
    "no-start-line": Mutant(
        _GO + "records.go",
        '\t\treturn "START RequestId: " + rid + v\n',
        '\t\treturn "BEGIN " + rid + v\n',
        ("test_e2e_formats.py::test_platform_events_ship_as_readable_lines",),
    ),
}

MUTANTS = {"python": PYTHON_MUTANTS, "native": NATIVE_MUTANTS}


def _pytest(mutant: Mutant, env: dict[str, str]) -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    cmd += [f"tests/e2e/{t}" for t in mutant.tests]
    proc = subprocess.run(
        cmd, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=900
    )
    lines = proc.stdout.strip().splitlines()
    tail = lines[-1] if lines else proc.stderr.strip()[-200:]
    # Show why it failed, so a failure for an unrelated reason (an import error...) is visible.
    why = next((ln.strip() for ln in lines if ln.startswith("E ")), "")
    verdict = "KILLED" if proc.returncode == 1 else f"SURVIVED (pytest exit {proc.returncode})"
    return f"{verdict}: {tail}  {why[:120]}"


def _mutate(root: Path, mutant: Mutant) -> bool:
    target = root / mutant.file
    src = target.read_text()
    if src.count(mutant.old) != 1:
        return False
    target.write_text(src.replace(mutant.old, mutant.new))
    return True


def run(build: str, name: str, mutant: Mutant, workdir: Path) -> str:
    copy = workdir / build / name / "src"
    ignore = shutil.ignore_patterns("__pycache__", "build", ".cache")
    shutil.copytree(SOURCES[build], copy, symlinks=True, ignore=ignore)
    if build == "python":
        if not _mutate(copy / "loki_telemetry_extension", mutant):
            return "STALE (target text not found once; update the mutant)"
        return _pytest(mutant, {"E2E_LAYER_DIR": str(copy), "E2E_BUILDS": "python"})
    if not _mutate(copy, mutant):
        return "STALE (target text not found once; update the mutant)"
    out = workdir / build / name / "out"
    proc = subprocess.run(
        [sys.executable, str(copy / "build.py"), "--out", str(out), "--arch", "x86_64"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        return f"STALE (does not compile; update the mutant): {(proc.stderr or proc.stdout)[-300:]}"
    return _pytest(mutant, {"E2E_NATIVE_DIR": str(out), "E2E_BUILDS": "native"})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.mutation_check")
    parser.add_argument("--build", choices=["python", "native", "both"], default="both")
    parser.add_argument(
        "--source", type=Path, default=REPO, help="a checkout whose extension/ to mutate (default: this one)"
    )
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    for build in SOURCES:
        SOURCES[build] = args.source / "extension" / build
    builds = ["python", "native"] if args.build == "both" else [args.build]
    known = {n for b in builds for n in MUTANTS[b]}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"unknown mutants {unknown}; known: {', '.join(sorted(known))}")
        return 2
    survived = total = 0
    with tempfile.TemporaryDirectory(prefix="e2e-mutants-") as tmp:
        for build in builds:
            for name, mutant in MUTANTS[build].items():
                if args.names and name not in args.names:
                    continue
                verdict = run(build, name, mutant, Path(tmp))
                total += 1
                survived += not verdict.startswith("KILLED")
                print(f"{build:6s} {name:28s} {verdict}", flush=True)
    print(f"{total - survived}/{total} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
