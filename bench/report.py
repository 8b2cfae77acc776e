"""Render a run's results as JSON and as Markdown: the figures table (both builds side by
side), the reliability table and the method notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .machine import one_line
from .model import ANY


def num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax >= 1000:
        s = f"{x:,.0f}"
    elif ax >= 100:
        s = f"{x:.0f}"
    elif ax >= 10:
        s = f"{x:.1f}"
    elif ax >= 1:
        s = f"{x:.2f}"
    else:
        s = f"{x:.3f}"
    return f"{s} {unit}".strip()


def _met(r: dict[str, Any]) -> str:
    if r["met"] is None:
        return "" if not r["goals"] else "?"
    if r["met"]:
        return "yes"
    return "**no**: " + "; ".join(r["missed"])


def _cell(r: dict[str, Any], build: str) -> str:
    v = r["values"].get(build)
    return "" if v is None else num(v[r["show"]], r["unit"])


def figures_table(doc: dict[str, Any]) -> list[str]:
    rows = [
        "| figure | metric | python | native | native / python (or / baseline) | baseline | goal | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fig in doc["figures"]:
        if fig["status"] != "ok":
            first = (fig["error"].strip().splitlines() or ["unknown"])[0][:160].replace("|", "/")
            rows.append(f"| {fig['title']} | **error**: {first} | | | | | | |")
            continue
        for r in fig["rows"]:
            base = r["baseline"]
            base_s = "" if base is None else f"{num(base[r['show']], r['unit'])} ({r['baseline_label']})"
            if ANY in r["values"]:  # one value whatever the build
                py, nat = _cell(r, ANY), "(same)"
            else:
                py, nat = _cell(r, "python"), _cell(r, "native")
            x = r["ratio"]
            if ANY in r["values"] and base is not None and base["median"]:
                x = r["values"][ANY]["median"] / base["median"]  # with / without
            ratio = "" if x is None else f"{x:.2f}x"
            goal = "; ".join(g["text"] for g in r["goals"])
            rows.append(
                f"| {fig['title']} | {r['label']} | {py} | {nat} | {ratio} | {base_s} | {goal} | {_met(r)} |"
            )
    return rows


def reliability_table(doc: dict[str, Any]) -> list[str]:
    rows = [
        "| scenario | build | invokes | emitted | stored | reported dropped | unaccounted | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    faults = [f for fig in doc["figures"] for f in fig.get("faults", [])]
    for f in faults:
        rows.append(
            f"| {f['scenario']} | {f['build']} | {f['invokes']:,} | {f['emitted']:,} | {f['stored']:,} | "
            f"{f['reported_dropped']:,} | {f['unaccounted']:,} | {f['note']} |"
        )
    return rows if faults else []


def notes_list(doc: dict[str, Any]) -> list[str]:
    """Each figure's method notes and each row's note, as Markdown bullets."""
    notes = [(fig["title"], n) for fig in doc["figures"] for n in fig["notes"]]
    notes += [(f"{fig['title']}, {r['label']}", r["note"]) for fig in doc["figures"] for r in fig["rows"]
              if r["note"]]
    return [f"- **{title}**: {n}" for title, n in notes]


def to_markdown(doc: dict[str, Any]) -> str:
    builds = ", ".join(f"{b['name']} (`{b['layer']}`)" for b in doc.get("builds", []))
    out = [
        f"# Benchmark results ({doc['mode']} run)",
        "",
        f"Run {doc['started_utc']} → {doc['finished_utc']} UTC ({doc['duration_s']:.0f} s), "
        f"command `{doc['command']}`; builds measured side by side: {builds}. "
        "How to read these numbers: [docs/benchmarks.md](../docs/benchmarks.md).",
        "",
        f"Machine: {one_line(doc['machine'])}.",
        "",
        "## Figures",
        "",
        *figures_table(doc),
        "",
    ]
    rel = reliability_table(doc)
    if rel:
        out += [
            "## Reliability",
            "",
            "Every emitted line must be either stored in Loki or reported dropped "
            "(unaccounted = emitted - stored - reported dropped; it must be 0).",
            "",
            *rel,
            "",
        ]
    notes = notes_list(doc)
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out)


def write(doc: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "latest.json"
    md_path = out_dir / "latest.md"
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    md_path.write_text(to_markdown(doc))
    return json_path, md_path
