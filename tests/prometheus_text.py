"""A strict reader of the Prometheus text exposition format (version 0.0.4), written from the
format's description, so the tests check what /metrics writes by reading it back: every line a
comment or a sample, every sample after its family's HELP and TYPE, label values unescaped,
histograms cumulative and ending at +Inf with their count."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    help: str | None = None
    type: str | None = None
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def value(self, sample: str | None = None, **labels: str) -> float:
        """The value of the sample of that name (default: the family's) with exactly these
        labels; KeyError when there is none."""
        want = tuple(sorted(labels.items()))
        for name, have, value in self.samples:
            if name == (sample or self.name) and tuple(sorted(have)) == want:
                return value
        raise KeyError(f"{sample or self.name}{labels}")

    def series(self, sample: str | None = None) -> dict[Labels, float]:
        return {labels: v for name, labels, v in self.samples if name == (sample or self.name)}


def _number(text: str) -> float:
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def _labels(text: str, line: str) -> tuple[Labels, int]:
    """Label pairs from just after "{" to the closing "}"; the pairs and where "}" is."""
    pairs: list[tuple[str, str]] = []
    at = 0
    while True:
        if text[at] == "}":
            return tuple(pairs), at
        name = _LABEL.match(text, at)
        if name is None or text[name.end() : name.end() + 2] != '="':
            raise ValueError(f"bad label at {text[at:]!r} in {line!r}")
        at = name.end() + 2
        value = []
        while text[at] != '"':
            if text[at] == "\\":
                escaped = text[at + 1]
                if escaped not in _UNESCAPE:
                    raise ValueError(f"bad escape \\{escaped} in {line!r}")
                value.append(_UNESCAPE[escaped])
                at += 2
            elif text[at] == "\n":
                raise ValueError(f"raw newline in a label value: {line!r}")
            else:
                value.append(text[at])
                at += 1
        if any(n == name.group() for n, _ in pairs):
            raise ValueError(f"label {name.group()} twice in {line!r}")
        pairs.append((name.group(), "".join(value)))
        at += 1
        if text[at] == ",":
            at += 1
        elif text[at] != "}":
            raise ValueError(f"expected , or }} in {line!r}")


def _family_of(sample: str, families: dict[str, Family]) -> Family:
    if sample in families:
        return families[sample]
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and families.get(base) and families[base].type == "histogram":
            return families[base]
    raise ValueError(f"sample {sample} before its family's HELP and TYPE")


def parse(text: str) -> dict[str, Family]:
    """Every family of a scrape, by name; ValueError at the first line out of format."""
    if text and not text.endswith("\n"):
        raise ValueError("the last line does not end with a newline")
    families: dict[str, Family] = {}
    finished: set[str] = set()  # a family's samples come together, never later again
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _NAME.fullmatch(name) or name in finished:
                    raise ValueError(f"bad or repeated family in {line!r}")
                family = families.setdefault(name, Family(name))
                if current not in (None, name):
                    finished.add(current)
                current = name
                rest = parts[3] if len(parts) == 4 else ""
                if parts[1] == "HELP":
                    if family.help is not None:
                        raise ValueError(f"second HELP for {name}")
                    family.help = re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m[1], m[0]), rest)
                else:
                    if family.type is not None or family.samples:
                        raise ValueError(f"TYPE for {name} repeated or after its samples")
                    if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ValueError(f"unknown type in {line!r}")
                    family.type = rest
            continue  # any other comment is allowed
        if not line:
            raise ValueError("an empty line")
        name = _NAME.match(line)
        if name is None:
            raise ValueError(f"no metric name in {line!r}")
        at = name.end()
        labels: Labels = ()
        if line[at : at + 1] == "{":
            try:
                labels, closing = _labels(line[at + 1 :], line)
            except IndexError:
                raise ValueError(f"unclosed labels in {line!r}") from None
            at += closing + 2
        value_text = line[at:]
        if not value_text.startswith(" "):
            raise ValueError(f"no space before the value in {line!r}")
        value_text = value_text.strip()
        if " " in value_text:
            raise ValueError(f"timestamps are not written here: {line!r}")
        family = _family_of(name.group(), families)
        if family.name != current or family.help is None or family.type is None:
            raise ValueError(f"{line!r} is not under its own HELP and TYPE")
        family.samples.append((name.group(), labels, _number(value_text)))
    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family: Family) -> None:
    """Per series: bounds rising to +Inf, counts cumulative, +Inf equal to _count."""
    buckets: dict[Labels, list[tuple[float, float]]] = {}
    for name, labels, value in family.samples:
        if name == f"{family.name}_bucket":
            le = dict(labels).get("le")
            if le is None:
                raise ValueError(f"{family.name}: a bucket without le")
            rest = tuple(p for p in labels if p[0] != "le")
            buckets.setdefault(rest, []).append((_number(le), value))
    for labels, rows in buckets.items():
        bounds = [b for b, _ in rows]
        counts = [c for _, c in rows]
        if bounds != sorted(set(bounds)) or bounds[-1] != math.inf:
            raise ValueError(f"{family.name}{labels}: buckets {bounds}")
        if counts != sorted(counts):
            raise ValueError(f"{family.name}{labels}: counts not cumulative {counts}")
        if counts[-1] != family.value(f"{family.name}_count", **dict(labels)):
            raise ValueError(f"{family.name}{labels}: +Inf is not the count")
        family.value(f"{family.name}_sum", **dict(labels))  # present
