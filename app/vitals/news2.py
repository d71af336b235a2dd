"""The National Early Warning Score 2 (Royal College of Physicians, 2017) of one vitals set.
Pure: no I/O, no clock, no database.

NEWS2 is for adults (16 years and over; RCP: not in pregnancy, which Stepwise does not record).
Each of seven parameters scores 0–3 (clinical-reference §d, the RCP chart); the aggregate and
the highest single score decide the clinical response:

* aggregate 0–4, no single 3: low;
* any single parameter scoring 3: urgent ward-based review ("low-medium");
* aggregate 5–6: urgent response (the key threshold, "medium");
* aggregate 7 or more: emergency response ("high").

A parameter that was not recorded (or was unable to be obtained) scores nothing and is named in
``missing``: the aggregate of such a set is a lower bound, never a guess. Only SpO2 scale 1 is
scored: scale 2 (target 88–92 % in hypercapnic respiratory failure) is a clinician's choice the
set does not carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

ADULT_FROM_YEARS: Final = Decimal(16)

Response = Literal["low", "low-medium", "medium", "high"]
RESPONSE_WORDS: Final[Mapping[str, str]] = {
    "low": "low",
    "low-medium": "urgent ward-based review (a single parameter scores 3)",
    "medium": "urgent response",
    "high": "emergency response",
}

_D = Decimal
# (highest value of the band, inclusive; None for the open top band) -> points, lowest first.
Bands = tuple[tuple[Decimal | None, int], ...]
BANDS: Final[Mapping[str, tuple[str, Bands]]] = {
    "respiratory_rate": (
        "respiration rate",
        ((_D(8), 3), (_D(11), 1), (_D(20), 0), (_D(24), 2), (None, 3)),
    ),
    "spo2": ("SpO2", ((_D(91), 3), (_D(93), 2), (_D(95), 1), (None, 0))),
    "systolic_bp": (
        "systolic BP",
        ((_D(90), 3), (_D(100), 2), (_D(110), 1), (_D(219), 0), (None, 3)),
    ),
    "heart_rate": (
        "pulse",
        ((_D(40), 3), (_D(50), 1), (_D(90), 0), (_D(110), 1), (_D(130), 2), (None, 3)),
    ),
    "temperature_c": (
        "temperature",
        ((_D("35.0"), 3), (_D("36.0"), 1), (_D("38.0"), 0), (_D("39.0"), 1), (None, 2)),
    ),
}
OXYGEN_POINTS: Final = 2  # any supplemental oxygen
NOT_ALERT_POINTS: Final = 3  # new confusion, voice, pain or unresponsive
ACVPU: Final[Mapping[str, str]] = {
    "A": "alert",
    "C": "new confusion",
    "V": "responds to voice",
    "P": "responds to pain",
    "U": "unresponsive",
}
PARAMETERS: Final = (
    "respiratory_rate",
    "spo2",
    "supplemental_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature_c",
)
PARAMETER_NAMES: Final[Mapping[str, str]] = {
    **{name: label for name, (label, _bands) in BANDS.items()},
    "supplemental_oxygen": "air or oxygen",
    "consciousness": "consciousness",
}


@dataclass(frozen=True)
class ParameterScore:
    parameter: str  # a name of PARAMETERS
    shown: str  # the value as scored: "124", "oxygen", "new confusion"
    points: int


@dataclass(frozen=True)
class News2:
    scores: tuple[ParameterScore, ...]  # the parameters that were recorded, in chart order
    missing: tuple[str, ...]  # the parameters that were not: the total is a lower bound

    @property
    def total(self) -> int:
        return sum(s.points for s in self.scores)

    @property
    def highest_single(self) -> int:
        return max((s.points for s in self.scores), default=0)

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def response(self) -> Response:
        if self.total >= 7:
            return "high"
        if self.total >= 5:
            return "medium"
        if self.highest_single >= 3:
            return "low-medium"
        return "low"

    def text(self) -> str:
        """ "NEWS2 6: urgent response", or "NEWS2 at least 3 (not recorded: consciousness)"."""
        total = f"at least {self.total}" if self.partial else str(self.total)
        words = f"NEWS2 {total}"
        if self.response != "low":
            words += f": {RESPONSE_WORDS[self.response]}"
        if self.partial:
            words += f" (not recorded: {', '.join(PARAMETER_NAMES[m] for m in self.missing)})"
        return words


def applies_to(age_years: Decimal | int | None) -> bool:
    """NEWS2 is validated for adults; an unknown age is taken as an adult's, as the alarm
    rules do."""
    return age_years is None or _D(age_years) >= ADULT_FROM_YEARS


def band_points(name: str, value: Decimal) -> int:
    _label, bands = BANDS[name]
    for top, points in bands:
        if top is None or value <= top:
            return points
    raise AssertionError("the last band is open")  # pragma: no cover


def _number(text: str) -> str:
    return format(_D(text).normalize(), "f") if _D(text) != 0 else "0"


def score(values: Mapping[str, object]) -> News2:
    """Score one vitals set given as plain values: a measured number (Decimal, int or numeric
    text) or None for each of BANDS, ``supplemental_oxygen`` True/False/None and
    ``consciousness`` one of ACVPU or None."""
    scores: list[ParameterScore] = []
    missing: list[str] = []
    for parameter in PARAMETERS:
        raw = values.get(parameter)
        if raw is None:
            missing.append(parameter)
            continue
        if parameter == "supplemental_oxygen":
            oxygen = bool(raw)
            scores.append(
                ParameterScore(parameter, "oxygen" if oxygen else "air", OXYGEN_POINTS * oxygen)
            )
        elif parameter == "consciousness":
            level = str(raw)
            if level not in ACVPU:
                raise ValueError(f"consciousness must be one of {', '.join(ACVPU)}, got {raw!r}")
            points = 0 if level == "A" else NOT_ALERT_POINTS
            scores.append(ParameterScore(parameter, ACVPU[level], points))
        else:
            value = raw if isinstance(raw, Decimal) else _D(str(raw))
            scores.append(
                ParameterScore(parameter, _number(str(value)), band_points(parameter, value))
            )
    return News2(tuple(scores), tuple(missing))


def values_of_stored(stored: Mapping[str, object]) -> dict[str, object]:
    """The plain values of a stored vitals set (``VitalsReading.as_dict`` as JSON): measured
    numbers only; a value unable to be obtained or refused is missing."""
    out: dict[str, object] = {}
    for name in BANDS:
        entry = stored.get(name)
        if isinstance(entry, Mapping) and entry.get("status") == "measured":
            out[name] = _D(str(entry["value"]))
    out["supplemental_oxygen"] = stored.get("supplemental_oxygen")
    out["consciousness"] = stored.get("consciousness")
    return out
