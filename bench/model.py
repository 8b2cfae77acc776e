"""The result schema every figure returns; the JSON and Markdown are rendered from it.

A :class:`Row` holds one measured quantity for each build of the extension (``python``,
``native``) side by side, or one value (key ``any``) when the quantity does not depend on
the build (synthesis time). Its goals say which build they hold to which bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .stats import Summary, ratio

SCHEMA = "loki-telemetry-bench/2"

#: The two builds of the extension, in the order the tables show them.
BUILDS = ("python", "native")
#: The key of a value that does not depend on the build.
ANY = "any"

Stat = Literal["median", "p50", "p99", "max"]
#: What a goal compares: a statistic of each build's value, the native/python ratio of the
#: medians, the value over the baseline (medians), or the p50 added on top of the baseline.
Compare = Literal["median", "p50", "p99", "max", "native_ratio", "vs_baseline", "added_p50"]


@dataclass(frozen=True)
class Goal:
    """A target: ``<compare> <op> threshold`` for each build in ``builds``.

    ``threshold`` may differ per build (memory bounds add each build's own idle RSS)."""

    text: str
    compare: Compare
    threshold: float | Mapping[str, float]
    op: Literal["<=", ">="] = "<="
    builds: tuple[str, ...] = (*BUILDS, ANY)

    def bound(self, build: str) -> float:
        if isinstance(self.threshold, Mapping):
            return float(self.threshold[build])
        return float(self.threshold)

    def _ok(self, value: float | None, bound: float) -> bool | None:
        if value is None:
            return None
        return value <= bound if self.op == "<=" else value >= bound

    def check(self, row: Row) -> dict[str, bool | None]:
        """Per build (or ``ratio``): whether the goal holds; None when it cannot be judged."""
        if self.compare == "native_ratio":
            return {"native/python": self._ok(row.ratio, self.bound("native"))}
        out: dict[str, bool | None] = {}
        for build, value in row.values.items():
            if build not in self.builds:
                continue
            x: float | None
            if self.compare == "vs_baseline":
                x = None if row.baseline is None else ratio(value.median, row.baseline.median)
            elif self.compare == "added_p50":
                x = None if row.baseline is None else value.p50 - row.baseline.p50
            else:
                x = float(getattr(value, self.compare))
            out[build] = self._ok(x, self.bound(build))
        return out


@dataclass(frozen=True)
class Row:
    """One measured quantity per build, its baseline from the same run, and its goals."""

    key: str
    label: str
    unit: str
    values: Mapping[str, Summary]
    #: Which statistic the tables print for this row (the label says which).
    show: Stat = "median"
    baseline: Summary | None = None
    baseline_label: str = ""
    goals: tuple[Goal, ...] = ()
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """native / python of the shown statistic (None unless both builds were measured)."""
        if "python" not in self.values or "native" not in self.values:
            return None
        py = getattr(self.values["python"], self.show)
        nat = getattr(self.values["native"], self.show)
        return ratio(nat, py)

    def checks(self) -> list[tuple[Goal, dict[str, bool | None]]]:
        return [(g, g.check(self)) for g in self.goals]

    @property
    def met(self) -> bool | None:
        """True when every goal holds for every build it names; None when nothing was judged."""
        verdicts = [v for _, c in self.checks() for v in c.values()]
        if not verdicts or all(v is None for v in verdicts):
            return None
        return all(v is not False for v in verdicts)

    def missed(self) -> list[str]:
        """``goal (build)`` for every goal a build misses."""
        return [f"{g.text} ({b})" for g, c in self.checks() for b, v in c.items() if v is False]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "show": self.show,
            "values": {b: s.as_dict() for b, s in self.values.items()},
            "baseline": None if self.baseline is None else self.baseline.as_dict(),
            "baseline_label": self.baseline_label,
            "ratio": self.ratio,
            "goals": [
                {
                    "text": g.text,
                    "compare": g.compare,
                    "op": g.op,
                    "threshold": dict(g.threshold) if isinstance(g.threshold, Mapping) else g.threshold,
                    "met": c,
                }
                for g, c in self.checks()
            ],
            "met": self.met,
            "missed": self.missed(),
            "note": self.note,
        }


@dataclass(frozen=True)
class FaultRow:
    """What one fault scenario did to one build's lines: each must be stored or reported dropped."""

    scenario: str
    build: str
    emitted: int
    stored: int
    reported_dropped: int
    invokes: int = 0
    note: str = ""

    @property
    def unaccounted(self) -> int:
        """Lines neither stored nor reported dropped: silent loss (negative means duplicates)."""
        return self.emitted - self.stored - self.reported_dropped

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "build": self.build,
            "emitted": self.emitted,
            "stored": self.stored,
            "reported_dropped": self.reported_dropped,
            "unaccounted": self.unaccounted,
            "invokes": self.invokes,
            "note": self.note,
        }


@dataclass
class Measured:
    """What a figure's ``measure`` returns: its rows, fault rows, parameters and method notes."""

    rows: list[Row] = field(default_factory=list)
    faults: list[FaultRow] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class FigureResult:
    """One figure of a run: what it measured, or why it could not."""

    name: str
    title: str
    status: Literal["ok", "error"] = "ok"
    error: str = ""
    measured: Measured = field(default_factory=Measured)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "duration_s": self.duration_s,
            "params": self.measured.params,
            "rows": [r.as_dict() for r in self.measured.rows],
            "faults": [f.as_dict() for f in self.measured.faults],
            "notes": self.measured.notes,
        }
