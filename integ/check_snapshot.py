"""``make integ-snapshot``: integ-runner against the committed snapshot, no deploy, fails on drift.

    python -m integ.check_snapshot              # CI: synthesize, compare with integ_*.py.snapshot/
    python -m integ.check_snapshot --update     # accept the change: rewrite the snapshot (no deploy)
    python -m integ.check_snapshot --deploy [-- <integ-runner args>]
                                                # real run with AWS credentials (deploy, assert, destroy)

Without ``--update-on-failed``/``--force``, integ-runner only compares a fresh synthesis of
each ``integ_*.py`` with its snapshot (templates with asset hashes normalised) and exits 1
on any difference: no AWS call is made. The Loki settings the sample reads from the
environment are cleared here so that the snapshot never depends on the caller's shell.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence

from sample_app.loki_settings import SYNTH_ENV_VARS
from sample_app.toolchain import NODE_BIN, REPO_ROOT, tool_env

INTEG_DIR = REPO_ROOT / "integ"

#: The cloud-assembly schema major version integ-runner 2.197.10 (the newest on npm) reads;
#: aws-cdk-lib 2.275 writes 55. ``None`` once integ-runner catches up (see run_integ_app.py).
SCHEMA_MAJOR: int | None = 53


def integ_runner_command(extra: Sequence[str] = ()) -> list[str]:
    cmd = [
        str(NODE_BIN / "integ-runner"),
        "--language",
        "python",
        "--directory",
        str(INTEG_DIR.relative_to(REPO_ROOT)),
    ]
    if SCHEMA_MAJOR is not None:
        # {filePath} is relative to the working directory, the repo root: `-m` finds `integ` there.
        cmd += ["--app", f"python3 -m integ.run_integ_app --schema-major {SCHEMA_MAJOR} {{filePath}}"]
    return cmd + list(extra)


def clean_env() -> dict[str, str]:
    env = tool_env()
    for name in SYNTH_ENV_VARS:
        env.pop(name, None)
    return env


def run(extra: Sequence[str], env: dict[str, str]) -> int:
    cmd = integ_runner_command(extra)
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO_ROOT, env=env)


def strip_assets() -> None:
    """Drop staged assets from the snapshots: the comparison ignores asset contents, and the
    assertion provider's 6 MB bundle and the extension's code do not belong in git."""
    for snapshot in INTEG_DIR.glob("*.snapshot"):
        for asset in snapshot.glob("asset.*"):
            if asset.is_dir():
                shutil.rmtree(asset)
            else:
                asset.unlink()


def update() -> int:
    # --update-on-failed re-synthesizes failed (or new) tests into their snapshot; --dry-run: no deploy.
    code = run(["--update-on-failed", "--dry-run"], clean_env())
    strip_assets()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integ.check_snapshot", description=__doc__.splitlines()[0]
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--update", action="store_true", help="rewrite the snapshot without deploying")
    mode.add_argument(
        "--deploy", action="store_true", help="deploy and assert for real (needs AWS credentials)"
    )
    parser.add_argument("runner_args", nargs="*", help="extra integ-runner arguments (after --)")
    args = parser.parse_args(argv)
    if args.update:
        return update()
    if args.deploy:
        # The caller's LOKI_URL / LOKI_QUERY_URL reach the app here: that is how a real Loki is tested.
        code = run(["--force", *args.runner_args], tool_env())
        print("== restoring the snapshot for the default settings (CI compares against it)", flush=True)
        return code or update()
    return run(args.runner_args, clean_env())


if __name__ == "__main__":
    sys.exit(main())
