"""``python -m bench [--smoke] [--only NAME[,NAME]] [--out DIR]``: measure, then write
``latest.json`` and ``latest.md`` (default ``bench/results/``).

Exit status 1 when a figure could not be measured (the harness is broken);
a missed goal is a finding, reported in the tables, not a failure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .context import REPO
from .report import results_block, splice, to_markdown, write
from .runner import FIGURES, run

DEFAULT_OUT = REPO / "bench" / "results"
RESULTS_MD = REPO / "bench" / "RESULTS.md"
README_MD = REPO / "README.md"


def _default_extension_python() -> str:
    # What the launcher falls back to outside Lambda: `python3` on PATH, resolved so the
    # machine description names the real interpreter.
    found = shutil.which("python3")
    return str(Path(found).resolve()) if found else sys.executable


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: proves the harness works (CI)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these figures (repeatable or comma-separated): {', '.join(FIGURES)}",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--python", default=None, help="interpreter the extension runs on (default: python3)")
    args = p.parse_args(argv)

    names = [n.strip() for chunk in args.only for n in chunk.split(",") if n.strip()] or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        p.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")

    cmd = "python -m bench" + (" --smoke" if args.smoke else "")
    if args.only:
        cmd += " --only " + ",".join(names)
    doc = run(
        names,
        smoke=args.smoke,
        extension_python=args.python or _default_extension_python(),
        command=cmd,
        repo=REPO,
    )
    json_path, md_path = write(doc, args.out)
    print(to_markdown(doc))
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    if not args.smoke and not args.only and args.out == DEFAULT_OUT:
        # A complete full run is the one the docs quote: keep it in git next to the code.
        RESULTS_MD.write_text(md_path.read_text())
        if README_MD.exists():
            README_MD.write_text(splice(README_MD.read_text(), results_block(doc)))
        print(f"wrote {RESULTS_MD} and the tables in {README_MD} (commit them with the code "
              "they measured)", file=sys.stderr)
    return 1 if any(f["status"] != "ok" for f in doc["figures"]) else 0


if __name__ == "__main__":
    sys.exit(main())
