"""Prometheus' text exposition format 0.0.4, rendered from plain data (pure).

prometheus_client would cost ~13 MB of RSS and ~60 ms of imports on a router; what the service
exposes is a few dozen series, so it renders them itself. `promtool check metrics`, a real
Prometheus and node_exporter's textfile collector read the result (tests/test_metrics_tools.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

MetricType = Literal["counter", "gauge", "histogram"]
Labels = Mapping[str, str]


@dataclass(frozen=True)
class Sample:
    """One line: the family's name plus `suffix` (histograms: _bucket, _sum, _count)."""

    labels: Labels
    value: float
    suffix: str = ""


@dataclass(frozen=True)
class Family:
    """A metric: its name, type, help text and samples."""

    name: str
    type: MetricType
    help: str
    samples: Sequence[Sample] = field(default_factory=tuple)


class Histogram:
    """Cumulative buckets, sum and count of observed values (seconds, say)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be distinct and increasing")
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)  # per bucket, not cumulative
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect_left(self.buckets, value)  # the first bound >= value; bounds include it
        if index < len(self.buckets):
            self.counts[index] += 1
        self.count += 1
        self.sum += value

    def samples(self, labels: Labels) -> list[Sample]:
        """`_bucket` (cumulative, up to +Inf), `_sum` and `_count`, each with `labels`."""
        out: list[Sample] = []
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=True):
            running += count
            out.append(Sample({**labels, "le": format_value(bound)}, running, "_bucket"))
        out.append(Sample({**labels, "le": "+Inf"}, self.count, "_bucket"))
        out.append(Sample(labels, self.sum, "_sum"))
        out.append(Sample(labels, self.count, "_count"))
        return out


def render(families: Iterable[Family]) -> str:
    """The exposition: `# HELP`, `# TYPE` and the samples of each family, in order."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            lines.append(f"{family.name}{sample.suffix}{_labels(sample.labels)} "
                         f"{format_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def format_value(value: float) -> str:
    """Integers without a point, others as Python's shortest repr; +Inf, -Inf, NaN."""
    if isinstance(value, int) or (math.isfinite(value) and value.is_integer()
                                  and abs(value) < 2**53):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape_label(value)}"' for key, value in labels.items()) + "}"


def escape_label(value: str) -> str:
    """A label value: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
