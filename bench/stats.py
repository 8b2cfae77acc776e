"""Small, dependency-free statistics for benchmark samples.

Percentiles use linear interpolation between closest ranks (numpy's default),
so p50 equals the median and tiny samples still give a sensible p99.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``samples`` by linear interpolation."""
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50.0)


@dataclass(frozen=True)
class Summary:
    """Distribution of one measured quantity."""

    n: int
    median: float
    p50: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        return cls(
            n=len(samples),
            median=median(samples),
            p50=percentile(samples, 50.0),
            p99=percentile(samples, 99.0),
            min=float(min(samples)),
            max=float(max(samples)),
        )

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": self.median,
            "p50": self.p50,
            "p99": self.p99,
            "min": self.min,
            "max": self.max,
        }


def ratio(value: float, baseline: float) -> float | None:
    """value / baseline, or None when the baseline is zero (no meaningful ratio)."""
    if baseline == 0:
        return None
    return value / baseline


def repeat(fn: Callable[[], float], times: int) -> list[float]:
    """Call ``fn`` ``times`` times and collect what each call measured."""
    if times < 1:
        raise ValueError(f"repeat times must be >= 1, got {times}")
    return [fn() for _ in range(times)]


def interleave(fns: Sequence[Callable[[], float]], times: int) -> list[list[float]]:
    """Run the measurements round-robin (A B A B ...) so drift in machine load
    (other jobs on a shared 2-core box) hits every variant alike."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(times):
        for i, fn in enumerate(fns):
            out[i].append(fn())
    return out
