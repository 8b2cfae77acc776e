"""``python -m bench [--smoke] [--only NAME[,NAME]] [--out DIR]``: measure both builds of the
extension, then write ``latest.json`` and ``latest.md`` (default ``bench/results/``).

A complete full run also writes ``bench/RESULTS.md`` (the file the README links to).
Exit status 1 when a figure could not be measured (the harness is broken); a missed
goal is a finding, reported in the tables, not a failure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from .context import REPO, ensure_layers
from .figure import NAMES
from .report import to_markdown, write
from .runner import run

DEFAULT_OUT = REPO / "bench" / "results"
RESULTS_MD = REPO / "bench" / "RESULTS.md"


def _default_extension_python() -> str:
    # What the launcher falls back to outside Lambda: `python3` on PATH, asked for its own
    # executable: a pyenv shim on PATH is a bash script that would add ~50 ms to every start.
    found = shutil.which("python3")
    if not found:
        return sys.executable
    real = subprocess.run(
        [found, "-I", "-S", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
    ).stdout.strip()
    return str(Path(real or found).resolve())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: proves every figure's harness works")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these figures (repeatable or comma-separated): {', '.join(NAMES)}",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--python", default=None, help="interpreter the Python build runs on (default: python3)")
    args = p.parse_args(argv)

    names = [n.strip() for chunk in args.only for n in chunk.split(",") if n.strip()] or list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        p.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")

    cmd = "python -m bench" + (" --smoke" if args.smoke else "")
    if args.only:
        cmd += " --only " + ",".join(names)
    builds = ensure_layers()
    doc = run(
        names,
        smoke=args.smoke,
        extension_python=args.python or _default_extension_python(),
        builds=builds,
        command=cmd,
        repo=REPO,
    )
    json_path, md_path = write(doc, args.out)
    print(to_markdown(doc))
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    if not args.smoke and not args.only and args.out == DEFAULT_OUT:
        # A complete full run is the one the docs quote: keep it in git next to the code.
        RESULTS_MD.write_text(md_path.read_text())
        print(f"wrote {RESULTS_MD} (commit it with the code it measured)", file=sys.stderr)
    return 1 if any(f["status"] != "ok" for f in doc["figures"]) else 0


if __name__ == "__main__":
    sys.exit(main())
