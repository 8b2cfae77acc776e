"""Run an integ test app for integ-runner, then make its cloud assembly readable by integ-runner.

``python3 run_integ_app.py --schema-major N <integ_file.py>`` (integ-runner's ``--app``).

Why: integ-runner 2.197.10, the newest on npm, bundles a toolkit that reads cloud-assembly
schema 53 at most, while aws-cdk-lib 2.275 writes schema 55, so integ-runner rejects every
assembly (``AssemblyVersionMismatch``) before comparing anything. After the app has
synthesized, this lowers the ``version`` stamp of the assembly's manifests (assembly, integ
and asset manifests) to ``N`` when it is higher. Only the stamp changes: the templates
integ-runner compares are untouched. Drop it (``integ/check_snapshot.py``:
``SCHEMA_MAJOR = None``) once integ-runner reads schema 55.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from pathlib import Path

#: Every file of an assembly that carries the schema version stamp.
MANIFEST_GLOBS = ("manifest.json", "integ.json", "*.assets.json")


def lower_schema_version(out_dir: Path, major: int) -> list[str]:
    """Rewrite ``version`` in the assembly's manifests to ``<major>.0.0`` where it is higher."""
    changed: list[str] = []
    for path in sorted({p for pattern in MANIFEST_GLOBS for p in out_dir.glob(pattern)}):
        name = path.name
        doc = json.loads(path.read_text())
        version = str(doc.get("version", "0"))
        if int(version.split(".")[0]) > major:
            doc["version"] = f"{major}.0.0"
            doc.pop("minimumCliVersion", None)
            path.write_text(json.dumps(doc, indent=2))
            changed.append(f"{name}: {version} -> {doc['version']}")
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schema-major", type=int, required=True)
    parser.add_argument("app_file", type=Path)
    args = parser.parse_args(argv)
    app_file = args.app_file.resolve()
    sys.argv = [str(app_file)]
    sys.path.insert(0, str(app_file.parent))
    runpy.run_path(str(app_file), run_name="__main__")
    # The CDK toolkit tells the app where to write through CDK_OUTDIR.
    out_dir = os.environ.get("CDK_OUTDIR")
    if out_dir:
        for change in lower_schema_version(Path(out_dir), args.schema_major):
            print(
                f"run_integ_app: {change} (integ-runner reads schema {args.schema_major} at most)",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
