"""Metrics in the Prometheus text exposition format, version 0.0.4, written by hand: counters,
gauges, histograms with fixed buckets, and families whose values are read when scraped. Pure:
no web framework, no database.

Requests and timers update them on the event loop, while the collector and the aiosqlite
thread run beside it: each metric guards its series with a lock held only for the arithmetic,
and a scrape renders a copy taken under it, so a histogram's buckets, sum and count always
agree with each other."""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Literal, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelValues = tuple[str, ...]
F = TypeVar("F", bound="_Family")
# A family read at scrape time: its value for each combination of label values.
Reader = Callable[[], Mapping[LabelValues, float]]


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_number(value: float) -> str:
    """A sample value as the format spells it: whole numbers without a point (as counts read
    best), the infinities as +Inf and -Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _sample(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    pairs = ",".join(f'{label}="{escape_label_value(text)}"' for label, text in labels)
    return (
        f"{name}{{{pairs}}} {format_number(value)}" if pairs else f"{name} {format_number(value)}"
    )


class _Family:
    """One metric name, its help text and label names, and its series."""

    kind: str = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        for label in labels:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"{name}: {label!r} is not a label name")
        if len(set(labels)) != len(labels):
            raise ValueError(f"{name}: a label name is given twice in {tuple(labels)}")
        if not help.strip():
            raise ValueError(f"{name}: the help text is empty")
        self.name = name
        self.help = help
        self.labels = tuple(labels)
        self._lock = threading.Lock()

    def names(self) -> tuple[str, ...]:
        """The sample names this family writes (a histogram writes three)."""
        return (self.name,)

    def _key(self, labels: Mapping[str, str]) -> LabelValues:
        if set(labels) != set(self.labels):
            raise ValueError(
                f"{self.name} takes the labels {self.labels}, not {tuple(sorted(labels))}"
            )
        for label, value in labels.items():
            if not isinstance(value, str):
                raise TypeError(f"{self.name}: label {label} must be text, not {value!r}")
        return tuple(labels[label] for label in self.labels)

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {escape_help(self.help)}",
            f"# TYPE {self.name} {self.kind}",
            *self._samples(),
        ]

    def _samples(self) -> list[str]:
        raise NotImplementedError


class _Scalar(_Family):
    """A counter or gauge kept here: one number per combination of label values."""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self._values: dict[LabelValues, float] = {}
        if not self.labels:
            self._values[()] = 0.0  # a metric without labels exists from the start

    def value(self, **labels: str) -> float:
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0.0)

    def _samples(self) -> list[str]:
        with self._lock:
            values = sorted(self._values.items())
        return [_sample(self.name, zip(self.labels, key, strict=True), v) for key, v in values]


class Counter(_Scalar):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add `amount` (0 makes the series appear at zero); a counter never goes down."""
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"{self.name}: a counter only goes up; cannot add {amount!r}")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Scalar):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        if math.isnan(value):
            raise ValueError(f"{self.name}: cannot set NaN")
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Family):
    """Observations counted into fixed buckets (upper bounds, ascending; +Inf is added), with
    their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        if "le" in labels:
            raise ValueError(f"{name}: 'le' is the histogram's own label")
        super().__init__(name, help, labels)
        bounds = [float(b) for b in buckets]
        if not bounds or any(not math.isfinite(b) for b in bounds):
            raise ValueError(f"{name}: buckets must be finite numbers, at least one")
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValueError(f"{name}: buckets must rise strictly: {tuple(buckets)}")
        self.buckets = tuple(bounds)
        # Per series: observations per bucket (the last is +Inf alone), their sum.
        self._series: dict[LabelValues, tuple[list[int], float]] = {}

    def names(self) -> tuple[str, ...]:
        return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")

    def observe(self, value: float, **labels: str) -> None:
        if math.isnan(value):
            raise ValueError(f"{self.name}: cannot observe NaN")
        key = self._key(labels)
        slot = bisect_left(self.buckets, value)  # the first bound >= value (le: at most)
        with self._lock:
            counts, total = self._series.get(key) or ([0] * (len(self.buckets) + 1), 0.0)
            counts[slot] += 1
            self._series[key] = (counts, total + value)

    def count(self, **labels: str) -> int:
        key = self._key(labels)
        with self._lock:
            counts, _ = self._series.get(key, ([], 0.0))
            return sum(counts)

    def _samples(self) -> list[str]:
        with self._lock:
            series = sorted(
                (key, (list(counts), total)) for key, (counts, total) in self._series.items()
            )
        lines = []
        for key, (counts, total) in series:
            labels = list(zip(self.labels, key, strict=True))
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = [*labels, ("le", format_number(bound))]
                lines.append(_sample(f"{self.name}_bucket", le, running))
            lines.append(_sample(f"{self.name}_sum", labels, total))
            lines.append(_sample(f"{self.name}_count", labels, running))
        return lines


class Sampled(_Family):
    """A counter or gauge whose values live elsewhere (the hub's counters, the collector's
    pauses) and are read when scraped."""

    def __init__(
        self,
        name: str,
        help: str,
        kind: Literal["counter", "gauge"],
        read: Reader,
        labels: Sequence[str] = (),
    ) -> None:
        if kind not in ("counter", "gauge"):
            raise ValueError(f"{name}: a sampled metric is a counter or a gauge, not {kind!r}")
        super().__init__(name, help, labels)
        self.kind = kind
        self.read = read

    def _samples(self) -> list[str]:
        values = self.read()
        for key in values:
            if len(key) != len(self.labels):
                raise ValueError(f"{self.name}: read {key}, but the labels are {self.labels}")
        return [
            _sample(self.name, zip(self.labels, key, strict=True), value)
            for key, value in sorted(values.items())
        ]


class Registry:
    """The metrics of one process, rendered in the order they were made."""

    def __init__(self) -> None:
        self._families: list[_Family] = []
        self._taken: set[str] = set()
        self._lock = threading.Lock()

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help, labels))

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labels))

    def histogram(
        self, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        return self._add(Histogram(name, help, buckets, labels))

    def sampled(
        self,
        name: str,
        help: str,
        kind: Literal["counter", "gauge"],
        read: Reader,
        labels: Sequence[str] = (),
    ) -> Sampled:
        return self._add(Sampled(name, help, kind, read, labels))

    def _add(self, family: F) -> F:
        with self._lock:
            clash = self._taken.intersection(family.names())
            if clash:
                raise ValueError(f"{family.name}: the name {sorted(clash)[0]} is taken")
            self._taken.update(family.names())
            self._families.append(family)
        return family

    def render(self) -> str:
        with self._lock:
            families = list(self._families)
        return "".join(line + "\n" for family in families for line in family.render())
