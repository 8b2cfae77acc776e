"""The result schema every figure module returns; the JSON and Markdown come from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .stats import Summary, ratio

SCHEMA = "loki-telemetry-bench/1"

Compare = Literal["ratio", "median", "p50", "p99", "p50_added"]


@dataclass(frozen=True)
class Goal:
    """A target a metric is held to: ``<compare> <= threshold`` (all our goals are upper bounds)."""

    text: str
    compare: Compare
    threshold: float

    def met_by(self, metric: Metric) -> bool | None:
        if self.compare == "ratio":
            value = metric.ratio
        elif self.compare == "median":
            value = metric.value.median
        elif self.compare == "p50":
            value = metric.value.p50
        elif self.compare == "p50_added":  # what the extension adds on top of the baseline
            value = None if metric.baseline is None else metric.value.p50 - metric.baseline.p50
        else:
            value = metric.value.p99
        if value is None:
            return None
        return value <= self.threshold


@dataclass(frozen=True)
class Metric:
    """One measured quantity, its baseline from the same run, and its goal."""

    key: str
    label: str
    unit: str
    value: Summary
    baseline: Summary | None = None
    baseline_label: str = ""
    goal: Goal | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        return ratio(self.value.median, self.baseline.median)

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met_by(self)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "value": self.value.as_dict(),
            "baseline": None if self.baseline is None else self.baseline.as_dict(),
            "baseline_label": self.baseline_label,
            "ratio": self.ratio,
            "goal": None
            if self.goal is None
            else {"text": self.goal.text, "compare": self.goal.compare, "threshold": self.goal.threshold},
            "met": self.met,
            "note": self.note,
        }


@dataclass(frozen=True)
class FaultRow:
    """What one fault scenario did to the lines: every emitted line must be stored or reported dropped."""

    scenario: str
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
            "emitted": self.emitted,
            "stored": self.stored,
            "reported_dropped": self.reported_dropped,
            "unaccounted": self.unaccounted,
            "invokes": self.invokes,
            "note": self.note,
        }


@dataclass
class FigureResult:
    """Everything one figure module measured."""

    name: str
    title: str
    status: Literal["ok", "error"] = "ok"
    error: str = ""
    metrics: list[Metric] = field(default_factory=list)
    faults: list[FaultRow] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "duration_s": self.duration_s,
            "params": self.params,
            "metrics": [m.as_dict() for m in self.metrics],
            "faults": [f.as_dict() for f in self.faults],
            "notes": self.notes,
        }
