"""Render a run's results as JSON and as the Markdown tables the README shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .machine import one_line


def _num(x: float | None, unit: str = "") -> str:
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


def _met(m: dict[str, Any]) -> str:
    if m["met"] is None:
        return "n/a" if m["goal"] is None else "?"
    return "yes" if m["met"] else "**no**"


def performance_table(doc: dict[str, Any]) -> list[str]:
    rows = [
        "| figure | metric | median | p99 | baseline (median) | ratio | goal | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fig in doc["figures"]:
        if fig["status"] != "ok":
            first = (fig["error"].strip().splitlines() or ["unknown"])[0][:160].replace("|", "/")
            rows.append(f"| {fig['title']} | **error**: {first} | | | | | | |")
            continue
        for m in fig["metrics"]:
            v = m["value"]
            base = m["baseline"]
            base_s = "" if base is None else f"{_num(base['median'], m['unit'])} ({m['baseline_label']})"
            ratio = "" if m["ratio"] is None else f"{m['ratio']:.2f}x"
            goal = "" if m["goal"] is None else m["goal"]["text"]
            rows.append(
                f"| {fig['title']} | {m['label']} | {_num(v['median'], m['unit'])} | "
                f"{_num(v['p99'], m['unit'])} | {base_s} | {ratio} | {goal} | {_met(m)} |"
            )
    return rows


def reliability_table(doc: dict[str, Any]) -> list[str]:
    rows = [
        "| scenario | invokes | emitted | stored | reported dropped | unaccounted | note |",
        "|---|---|---|---|---|---|---|",
    ]
    any_rows = False
    for fig in doc["figures"]:
        for f in fig.get("faults", []):
            any_rows = True
            rows.append(
                f"| {f['scenario']} | {f['invokes']:,} | {f['emitted']:,} | {f['stored']:,} | "
                f"{f['reported_dropped']:,} | {f['unaccounted']:,} | {f['note']} |"
            )
    return rows if any_rows else []


def to_markdown(doc: dict[str, Any]) -> str:
    out = [
        f"# Benchmark results ({doc['mode']} run)",
        "",
        f"Run {doc['started_utc']} → {doc['finished_utc']} UTC ({doc['duration_s']:.0f} s), "
        f"command `{doc['command']}`.",
        "",
        f"Machine: {one_line(doc['machine'])}.",
        "",
        "## Performance",
        "",
        *performance_table(doc),
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


def notes_list(doc: dict[str, Any]) -> list[str]:
    """Each figure's method notes and each metric's note, as Markdown bullets."""
    notes = [(fig["title"], n) for fig in doc["figures"] for n in fig["notes"]]
    notes += [(f"{fig['title']}, {m['label']}", m["note"]) for fig in doc["figures"] for m in fig["metrics"]
              if m["note"]]
    return [f"- **{title}**: {n}" for title, n in notes]


def write(doc: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "latest.json"
    md_path = out_dir / "latest.md"
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    md_path.write_text(to_markdown(doc))
    return json_path, md_path


BEGIN_MARK = "<!-- bench:results:begin (written by `make bench`; do not edit by hand) -->"
END_MARK = "<!-- bench:results:end -->"


def results_block(doc: dict[str, Any]) -> str:
    """The run's tables for the README: when, where, and the figures."""
    lines = [
        BEGIN_MARK,
        f"Figures of the run of {doc['started_utc']} UTC (`{doc['command']}`, {doc['duration_s']:.0f} s) on: "
        f"{one_line(doc['machine'])}.",
        "",
        "### Performance",
        "",
        *performance_table(doc),
        "",
        "### Reliability",
        "",
        *(reliability_table(doc) or ["(no fault figures in this run)"]),
        "",
        "### Notes on this run",
        "",
        *notes_list(doc),
        "",
        END_MARK,
    ]
    return "\n".join(lines)


def splice(text: str, block: str) -> str:
    """Replace the marked results block in ``text`` (append it when the markers are missing)."""
    start = text.find(BEGIN_MARK)
    end = text.find(END_MARK)
    if start < 0 or end < start:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    return text[:start] + block + text[end + len(END_MARK) :]
