"""Is this vitals set worrying? The alarm rules of product-spec §4. Pure: no I/O, no clock, no
database; exact ``Decimal`` arithmetic.

``evaluate(reading, baseline, thresholds, age_years=...)`` compares one possible vitals set
(``app.vitals.validation.VitalsReading``) with the absolute limits and with the patient's own
baseline, and lists each finding with its priority, the value that triggered it, the limit in
force and a one-line message. Everything rule-like is data:

* ``Thresholds``: every number, with its default, the range a physician may set it to, its unit
  and where it comes from (a physician overrides them per session with ``with_overrides``);
* ``RULES``: which measurement is compared how with which threshold, at which priority;
* ``CHILD_SBP_BANDS``: the age-specific low systolic pressure of children (clinical reference
  §c.4, anaphylaxis criteria);
* ``SYMPTOM_CLASSES``: the organ system and Brown grade of every checklist symptom (here, not in
  grading.py, because the alarm priority of a symptom follows its grade; grading re-exports it).

Boundaries are exactly as worded: "below 90 mmHg" does not include 90, "at or below 92 %" does;
"more than 30 % below baseline" does not include 30 %, "20 % or more below baseline" does.
A value that was not measured (unable to obtain, refused, not recorded) gives no finding, and a
fall is only computed when the baseline has that value measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final, Literal

from app.vitals import news2
from app.vitals.catalogue import VITAL_SIGNS
from app.vitals.news2 import PARAMETER_NAMES, News2
from app.vitals.validation import MEASURED_FIELDS, SYMPTOMS, VitalsReading

Priority = Literal["HIGH", "MEDIUM"]
PRIORITIES: Final[tuple[Priority, ...]] = ("HIGH", "MEDIUM")  # most urgent first

_D = Decimal


# --- thresholds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Every alarm threshold in force for one session; defaults from product-spec §4. What each
    may be set to, its unit and its source are in ``THRESHOLD_SPECS``."""

    # HIGH
    sbp_low_mmhg: Decimal = Decimal("90")
    sbp_fall_percent: Decimal = Decimal("30")
    spo2_low_percent: Decimal = Decimal("92")
    fev1_fall_high_percent: Decimal = Decimal("20")
    pef_fall_high_percent: Decimal = Decimal("20")
    # MEDIUM
    sbp_fall_mmhg: Decimal = Decimal("20")
    spo2_fall_points: Decimal = Decimal("3")
    fev1_fall_medium_percent: Decimal = Decimal("15")
    pef_fall_medium_percent: Decimal = Decimal("15")
    # MEDIUM, general deterioration (adult defaults from NEWS2, RCP 2017; children's heart and
    # respiratory rates follow CHILD_RATE_BANDS unless a physician sets these)
    hr_high_per_min: Decimal = Decimal("111")
    hr_rise_per_min: Decimal = Decimal("30")
    rr_high_per_min: Decimal = Decimal("21")
    temperature_high_c: Decimal = Decimal("38.0")
    sbp_high_mmhg: Decimal = Decimal("180")
    dbp_high_mmhg: Decimal = Decimal("110")
    # NEWS2 aggregate (adults): MEDIUM "urgent review" from here, HIGH "emergency" from here
    news2_medium_score: Decimal = Decimal("5")
    news2_high_score: Decimal = Decimal("7")
    # Not an alarm: a value this far from the baseline needs a second tap ("is 214 right?")
    suspicious_change_percent: Decimal = Decimal("40")
    # Children (under 18 years): the age-specific low systolic pressure replaces sbp_low_mmhg.
    child_sbp_low_infant_mmhg: Decimal = Decimal("70")
    child_sbp_low_base_mmhg: Decimal = Decimal("70")
    child_sbp_low_per_year_mmhg: Decimal = Decimal("2")
    child_sbp_low_adolescent_mmhg: Decimal = Decimal("90")

    def __post_init__(self) -> None:
        problems: list[str] = []
        for spec in dataclasses.fields(self):
            value = _threshold_value(spec.name, getattr(self, spec.name))
            if isinstance(value, str):
                problems.append(value)
            else:
                object.__setattr__(self, spec.name, value)
        if not problems:
            for milder, graver in ORDERED_THRESHOLDS:
                if getattr(self, milder) >= getattr(self, graver):
                    unit = _unit(milder)
                    problems.append(
                        f"{milder} {_num(getattr(self, milder))} {unit} must be below {graver} "
                        f"{_num(getattr(self, graver))} {unit}"
                    )
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in dataclasses.fields(cls))

    def with_overrides(self, overrides: Mapping[str, object]) -> Thresholds:
        """A new ``Thresholds`` with the physician's values; unknown names, values that are not
        numbers and values outside the allowed range are refused with one ValueError naming
        every problem."""
        if not isinstance(overrides, Mapping):
            raise ValueError("threshold overrides must be a mapping of names to numbers")
        known = self.names()
        problems: list[str] = []
        values: dict[str, Decimal] = {}
        for name, raw in overrides.items():
            if name not in known:
                problems.append(f"unknown threshold {name!r}; known: {', '.join(known)}")
                continue
            value = _threshold_value(name, raw)
            if isinstance(value, str):
                problems.append(value)
            else:
                values[name] = value
        if problems:
            raise ValueError("; ".join(problems))
        return dataclasses.replace(self, **values)

    def overrides(self) -> dict[str, Decimal]:
        """The thresholds that differ from their defaults, by name."""
        return {
            spec.name: getattr(self, spec.name)
            for spec in dataclasses.fields(self)
            if getattr(self, spec.name) != spec.default
        }

    def sbp_low_for(self, age_years: Decimal | int | None) -> tuple[Decimal, str]:
        """The low systolic limit for a patient of this age, and the words that say which limit
        it is ("" for adults and when the age is not known)."""
        age = _age(age_years)
        band = _child_band(age)
        if age is None or band is None:
            return self.sbp_low_mmhg, ""
        limit = getattr(self, band.base)
        if band.per_year is None:
            return limit, band.note
        years = (_months(age) / 12).to_integral_value(rounding=ROUND_FLOOR)
        per_year = getattr(self, band.per_year)
        return limit + per_year * years, (
            f"{band.note}: {_num(limit)} + {_num(per_year)} × {_num(years)} "
            f"year{'' if years == 1 else 's'}"
        )

    def rate_high_for(
        self, threshold: str, age_years: Decimal | int | None
    ) -> tuple[Decimal, str, str]:
        """The high heart or respiratory rate limit for this age: (limit, comparison, note).
        Adults (and an unknown age): the session's threshold, at or above. Children: above the
        upper limit of their CHILD_RATE_BANDS band, unless a physician set the threshold."""
        band = _rate_band(_age(age_years))
        moved = getattr(self, threshold) != self.__dataclass_fields__[threshold].default
        if band is None or moved:
            return getattr(self, threshold), "at_or_above", ""
        vital = RATE_THRESHOLD_VITALS[threshold]
        upper = band.heart_rate_max if vital == "heart_rate" else band.respiratory_rate_max
        return upper, "above", f"APLS upper limit at {band.words}"

    def describe(self, *, age_years: Decimal | int | None = None) -> tuple[str, ...]:
        """Every threshold in force, one human line each, most urgent first. With an age, the
        limits for that age; without, the adult limits and each child's band. A value a
        physician changed says so, with its default."""
        lines: list[str] = []
        age = _age(age_years)
        child = age is not None and age < ADULT_YEARS
        for priority in PRIORITIES:
            for rule in RULES:
                if rule.priority != priority:
                    continue
                if rule.ages == "sbp_band":
                    lines.extend(self._describe_sbp_low(age_years))
                    continue
                if rule.ages == "adults" and child:
                    continue
                label = VITAL_SIGNS[rule.vital].label
                if rule.ages == "rate_band":
                    lines.extend(self._describe_rate(rule, label, age_years))
                    continue
                words = COMPARISONS[rule.comparison].describe.format(
                    limit=_num(getattr(self, rule.threshold)), unit=_unit(rule.threshold)
                )
                adults = ""
                if rule.ages == "adults":
                    adults = " (adults, 18 years and over)" if age is None else " (adults)"
                lines.append(f"{priority}: {label} {words}{adults}{self._changed(rule.threshold)}")
            lines.extend(f"{priority}: {text}" for text in SYMPTOM_RULE_TEXT[priority])
            if news2.applies_to(age):
                score = self.news2_high_score if priority == "HIGH" else self.news2_medium_score
                name = "news2_high_score" if priority == "HIGH" else "news2_medium_score"
                single = ", or any single parameter scoring 3" if priority == "MEDIUM" else ""
                adults = " (adults, 16 years and over)" if age is None else ""
                lines.append(
                    f"{priority}: NEWS2 {_num(score)} or more{single}{adults}{self._changed(name)}"
                )
        lines.append(
            f"CONFIRM: any value more than {_num(self.suspicious_change_percent)} % from "
            f"baseline needs a second tap{self._changed('suspicious_change_percent')}"
        )
        return tuple(lines)

    def _describe_rate(self, rule: Rule, label: str, age_years: Decimal | int | None) -> list[str]:
        unit = _unit(rule.threshold)
        if age_years is not None:
            limit, comparison, note = self.rate_high_for(rule.threshold, age_years)
            words = COMPARISONS[comparison].describe.format(limit=_num(limit), unit=unit)
            return [
                f"{rule.priority}: {label} {words} ({note or 'adults'})"
                f"{self._changed(rule.threshold)}"
            ]
        adult = COMPARISONS[rule.comparison].describe.format(
            limit=_num(getattr(self, rule.threshold)), unit=unit
        )
        moved = self._changed(rule.threshold)
        if moved:
            return [f"{rule.priority}: {label} {adult}, at any age{moved}"]
        lines = [f"{rule.priority}: {label} {adult} (adults, 18 years and over)"]
        vital = RATE_THRESHOLD_VITALS[rule.threshold]
        for band in CHILD_RATE_BANDS:
            upper = band.heart_rate_max if vital == "heart_rate" else band.respiratory_rate_max
            lines.append(f"{rule.priority}: {label} above {upper} {unit} at {band.words} (APLS)")
        return lines

    def _changed(self, *names: str | None) -> str:
        fields = self.__dataclass_fields__
        moved = [n for n in names if n is not None and getattr(self, n) != fields[n].default]
        if not moved:
            return ""
        was = ", ".join(f"{_num(fields[n].default)} {_unit(n)}" for n in moved)
        return f" (physician override; default {was})"

    def _describe_sbp_low(self, age_years: Decimal | int | None) -> list[str]:
        if age_years is not None:
            limit, note = self.sbp_low_for(age_years)
            band = _child_band(_age(age_years))
            names = (band.base, band.per_year) if band else ("sbp_low_mmhg", None)
            return [
                f"HIGH: systolic below {_num(limit)} mmHg ({note or 'adults'})"
                f"{self._changed(*names)}"
            ]
        lines = [
            f"HIGH: systolic below {_num(self.sbp_low_mmhg)} mmHg (adults, 18 years and over)"
            f"{self._changed('sbp_low_mmhg')}"
        ]
        for band in CHILD_SBP_BANDS:
            if band.describe is None:
                continue
            limit_text = _num(getattr(self, band.base))
            if band.per_year is not None:
                per_year = _num(getattr(self, band.per_year))
                limit_text = f"({limit_text} + {per_year} × age in years)"
            lines.append(
                f"HIGH: systolic below {limit_text} mmHg {band.describe}"
                f"{self._changed(band.base, band.per_year)}"
            )
        return lines


# Pairs (MEDIUM, HIGH) of the same measurement: the milder threshold must stay below the graver.
ORDERED_THRESHOLDS: Final = (
    ("fev1_fall_medium_percent", "fev1_fall_high_percent"),
    ("pef_fall_medium_percent", "pef_fall_high_percent"),
    ("news2_medium_score", "news2_high_score"),
)


@dataclass(frozen=True)
class ThresholdSpec:
    low: Decimal  # the range a physician may choose, inclusive: wide on purpose, it only
    high: Decimal  # catches typing errors
    unit: str
    source: str  # where the default comes from (clinical reference §c.4, §d)


# Every field of Thresholds.
THRESHOLD_SPECS: Final[Mapping[str, ThresholdSpec]] = MappingProxyType(
    {
        "sbp_low_mmhg": ThresholdSpec(_D(60), _D(120), "mmHg", "Brown grade 3; WAO/NIAID"),
        "sbp_fall_percent": ThresholdSpec(_D(5), _D(60), "%", "WAO/NIAID hypotension"),
        "spo2_low_percent": ThresholdSpec(_D(80), _D(98), "%", "Brown grade 3 hypoxia"),
        "fev1_fall_high_percent": ThresholdSpec(_D(5), _D(60), "%", "product-spec §4"),
        "pef_fall_high_percent": ThresholdSpec(_D(5), _D(60), "%", "product-spec §4"),
        "sbp_fall_mmhg": ThresholdSpec(_D(5), _D(80), "mmHg", "early nursing trigger"),
        "spo2_fall_points": ThresholdSpec(_D(1), _D(15), "points", "product-spec §4"),
        "fev1_fall_medium_percent": ThresholdSpec(_D(5), _D(60), "%", "aspirin challenge"),
        "pef_fall_medium_percent": ThresholdSpec(_D(5), _D(60), "%", "aspirin challenge"),
        "hr_high_per_min": ThresholdSpec(_D(80), _D(200), "/min", "NEWS2 pulse scores 2"),
        "hr_rise_per_min": ThresholdSpec(_D(10), _D(80), "/min", "product-spec §4"),
        "rr_high_per_min": ThresholdSpec(_D(12), _D(60), "/min", "NEWS2 respiration scores 2"),
        "temperature_high_c": ThresholdSpec(_D("37.5"), _D("41"), "°C", "fever"),
        "sbp_high_mmhg": ThresholdSpec(_D(140), _D(260), "mmHg", "product-spec §4"),
        "dbp_high_mmhg": ThresholdSpec(_D(80), _D(160), "mmHg", "product-spec §4"),
        "news2_medium_score": ThresholdSpec(_D(1), _D(19), "points", "NEWS2 urgent response"),
        "news2_high_score": ThresholdSpec(_D(2), _D(20), "points", "NEWS2 emergency response"),
        "suspicious_change_percent": ThresholdSpec(
            _D(10), _D(200), "%", "product-spec §4: a second tap"
        ),
        "child_sbp_low_infant_mmhg": ThresholdSpec(
            _D(40), _D(100), "mmHg", "age-specific low SBP, 1 month–1 year"
        ),
        "child_sbp_low_base_mmhg": ThresholdSpec(
            _D(40), _D(100), "mmHg", "age-specific low SBP, 1–10 years"
        ),
        "child_sbp_low_per_year_mmhg": ThresholdSpec(
            _D(0), _D(5), "mmHg", "age-specific low SBP, 1–10 years, per year of age"
        ),
        "child_sbp_low_adolescent_mmhg": ThresholdSpec(
            _D(60), _D(120), "mmHg", "age-specific low SBP, 11–17 years"
        ),
    }
)


# What each threshold is called on screen.
THRESHOLD_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sbp_low_mmhg": "HIGH: systolic below",
        "sbp_fall_percent": "HIGH: systolic fall from baseline, more than",
        "spo2_low_percent": "HIGH: SpO2 at or below",
        "fev1_fall_high_percent": "HIGH: FEV1 fall from baseline, at least",
        "pef_fall_high_percent": "HIGH: peak-flow fall from baseline, at least",
        "sbp_fall_mmhg": "MEDIUM: systolic fall from baseline, more than",
        "spo2_fall_points": "MEDIUM: SpO2 fall from baseline, at least",
        "fev1_fall_medium_percent": "MEDIUM: FEV1 fall from baseline, at least",
        "pef_fall_medium_percent": "MEDIUM: peak-flow fall from baseline, at least",
        "hr_high_per_min": "MEDIUM: heart rate at or above (any age once set)",
        "hr_rise_per_min": "MEDIUM: heart-rate rise over baseline, at least",
        "rr_high_per_min": "MEDIUM: respiratory rate at or above (any age once set)",
        "temperature_high_c": "MEDIUM: temperature at or above",
        "sbp_high_mmhg": "MEDIUM: systolic at or above (adults)",
        "dbp_high_mmhg": "MEDIUM: diastolic at or above (adults)",
        "news2_medium_score": "MEDIUM: NEWS2 at or above",
        "news2_high_score": "HIGH: NEWS2 at or above",
        "suspicious_change_percent": "Second tap: a value this far from baseline",
        "child_sbp_low_infant_mmhg": "HIGH: systolic below, 1 month–1 year",
        "child_sbp_low_base_mmhg": "HIGH: systolic below, 1–10 years, base",
        "child_sbp_low_per_year_mmhg": "HIGH: systolic, 1–10 years, plus per year of age",
        "child_sbp_low_adolescent_mmhg": "HIGH: systolic below, 11–17 years",
    }
)


def _unit(name: str) -> str:
    return THRESHOLD_SPECS[name].unit


def _threshold_value(name: str, raw: object) -> Decimal | str:
    """The threshold as a Decimal, or the one-line reason it cannot be one."""
    spec = THRESHOLD_SPECS[name]
    low, high, unit = spec.low, spec.high, spec.unit
    value: Decimal | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = _D(raw)
    elif isinstance(raw, float):
        value = _D(repr(raw))
    elif isinstance(raw, str) and len(raw.strip()) <= 32:
        try:
            value = _D(raw.strip())
        except InvalidOperation:
            value = None
    if value is None or not value.is_finite():
        if isinstance(raw, str):
            shown = repr(raw[:24])
        elif raw is None or isinstance(raw, int | float | Decimal):
            shown = repr(raw)
        else:
            shown = type(raw).__name__
        return f"threshold {name} must be a number in {unit}, got {shown}"
    if not low <= value <= high:
        return (
            f"threshold {name} {_num(value)} {unit} is outside the allowed range "
            f"{_num(low)}–{_num(high)} {unit}"
        )
    return value


# --- children's low systolic pressure -------------------------------------------------------------


@dataclass(frozen=True)
class ChildBand:
    """Ages from ``from_months`` (inclusive) to ``to_months`` (exclusive): the low systolic limit
    is the threshold ``base``, plus ``per_year`` times the completed years of age when given."""

    from_months: int
    to_months: int
    base: str
    per_year: str | None
    note: str  # said in each finding's message
    describe: str | None  # the line of Thresholds.describe(); None: said by another band


# Clinical reference §c.4 (anaphylaxis criteria): < 70 mmHg at 1 month–1 year, < 70 + 2 × age
# (years) at 1–10 years, < 90 mmHg at 11–17 years. No limit is published under 1 month: the
# 1 month–1 year limit is used, and the finding says so. "1–10 years" counts completed years, so
# the limit rises by 2 mmHg on each birthday and reaches 90 mmHg at 10.
CHILD_SBP_BANDS: Final[tuple[ChildBand, ...]] = (
    ChildBand(
        0,
        1,
        "child_sbp_low_infant_mmhg",
        None,
        "under 1 month: no published limit, the 1 month–1 year limit is used",
        None,
    ),
    ChildBand(
        1,
        12,
        "child_sbp_low_infant_mmhg",
        None,
        "age-specific limit at 1 month–1 year",
        "under 1 year (1 month–1 year; also used under 1 month, where none is published)",
    ),
    ChildBand(
        12,
        132,
        "child_sbp_low_base_mmhg",
        "child_sbp_low_per_year_mmhg",
        "age-specific limit at 1–10 years",
        "at 1–10 years (completed years)",
    ),
    ChildBand(
        132,
        216,  # 18 years: adults
        "child_sbp_low_adolescent_mmhg",
        None,
        "age-specific limit at 11–17 years",
        "at 11–17 years",
    ),
)


def _child_band(age: Decimal | None) -> ChildBand | None:
    """The band of a child's age; None for adults and an unknown age."""
    if age is None:
        return None
    months = _months(age)
    return next((b for b in CHILD_SBP_BANDS if b.from_months <= months < b.to_months), None)


def _age(age_years: object) -> Decimal | None:
    if age_years is None:
        return None
    if isinstance(age_years, bool) or not isinstance(age_years, int | Decimal):
        raise TypeError(f"age_years must be a Decimal, an int or None, got {age_years!r}")
    age = _D(age_years)
    if not age.is_finite() or age < 0:
        raise ValueError(f"age_years must be a finite number of years, 0 or more, got {age}")
    return age


# --- children's heart and respiratory rates -------------------------------------------------------

ADULT_YEARS: Final = Decimal(18)


@dataclass(frozen=True)
class ChildRateBand:
    """Ages from ``from_months`` (inclusive) to ``to_months`` (exclusive) and the upper limits
    of the normal heart and respiratory rates at that age: a rate above them is a finding."""

    from_months: int
    to_months: int
    heart_rate_max: Decimal
    respiratory_rate_max: Decimal
    words: str


# The Advanced Paediatric Life Support (APLS) normal ranges, as tabulated beside other published
# ranges in Fleming et al., Lancet 2011;377:1011-8, web appendix box 1 (heart rate 110–160 under 1
# year, 100–150 at 1–2, 95–140 at 2–5, 80–120 at 5–12, 60–100 at 12–18; respiratory rate 30–40,
# 25–35, 25–30, 20–25, 15–20). UNCONFIRMED at the primary source: the APLS manual itself was not
# read, and Fleming shows these limits often lie beyond the 99th centile of healthy children.
# They are settings: a physician's threshold for the session replaces them.
CHILD_RATE_BANDS: Final[tuple[ChildRateBand, ...]] = (
    ChildRateBand(0, 12, _D(160), _D(40), "under 1 year"),
    ChildRateBand(12, 24, _D(150), _D(35), "1–2 years"),
    ChildRateBand(24, 60, _D(140), _D(30), "2–5 years"),
    ChildRateBand(60, 144, _D(120), _D(25), "5–12 years"),
    ChildRateBand(144, 216, _D(100), _D(20), "12–17 years"),
)
RATE_THRESHOLD_VITALS: Final[Mapping[str, str]] = MappingProxyType(
    {"hr_high_per_min": "heart_rate", "rr_high_per_min": "respiratory_rate"}
)


def _months(age: Decimal) -> Decimal:
    """Completed months of an age in years; 7/12 of a year (computed as 0.58333…) is 7 months,
    not 6: a hair is added before cutting, far below a day."""
    return (age * 12 + _MONTH_EPSILON).to_integral_value(rounding=ROUND_FLOOR)


_MONTH_EPSILON: Final = Decimal("1e-9")


def _rate_band(age: Decimal | None) -> ChildRateBand | None:
    if age is None:
        return None
    months = _months(age)
    return next((b for b in CHILD_RATE_BANDS if b.from_months <= months < b.to_months), None)


# --- the rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """How a measurement is compared with its threshold. ``direction``: "low" alarms at or
    below, "high" at or above. ``relative``: None compares the value itself; "units" its change
    from baseline in the threshold's unit; "percent" the change as a percentage of the
    baseline. ``inclusive``: the limit itself alarms."""

    direction: Literal["low", "high"]
    relative: Literal["units", "percent"] | None
    inclusive: bool
    words: str  # message: "is {words} {limit} {unit}" or "(limit: {words} ...)"
    symbol: str  # compact form in grading reasons
    describe: str  # Thresholds.describe, after the measurement's label


COMPARISONS: Final[Mapping[str, Comparison]] = MappingProxyType(
    {
        "below": Comparison("low", None, False, "below", "<", "below {limit} {unit}"),
        "at_or_below": Comparison(
            "low", None, True, "at or below", "≤", "at or below {limit} {unit}"
        ),
        "above": Comparison("high", None, False, "above", ">", "above {limit} {unit}"),
        "at_or_above": Comparison(
            "high", None, True, "at or above", "≥", "at or above {limit} {unit}"
        ),
        "fall_more_than": Comparison(
            "low", "units", False, "more than", ">", "more than {limit} {unit} below baseline"
        ),
        "fall_at_least": Comparison(
            "low", "units", True, "at least", "≥", "{limit} {unit} or more below baseline"
        ),
        "fall_percent_more_than": Comparison(
            "low", "percent", False, "more than", ">", "more than {limit} {unit} below baseline"
        ),
        "fall_percent_at_least": Comparison(
            "low", "percent", True, "at least", "≥", "{limit} {unit} or more below baseline"
        ),
        "rise_at_least": Comparison(
            "high", "units", True, "at least", "≥", "{limit} {unit} or more above baseline"
        ),
    }
)

# Whom a rule applies to, and how a child's limit differs:
#   "all"       every age, the same threshold;
#   "sbp_band"  children: the age-specific low systolic pressure of CHILD_SBP_BANDS;
#   "rate_band" children: above the upper limit of CHILD_RATE_BANDS for the age, unless a
#               physician has set the threshold for this session (then it applies at any age);
#   "adults"    18 years and over (and an unknown age) only.
Ages = Literal["all", "sbp_band", "rate_band", "adults"]


@dataclass(frozen=True)
class Rule:
    condition: str
    priority: Priority
    vital: str  # a measured field of VitalsReading
    comparison: str  # a key of COMPARISONS
    threshold: str  # a field of Thresholds
    ages: Ages = "all"


# Product-spec §4, in the order findings are listed (HIGH first). A MEDIUM finding is left out
# when the same measurement already has a HIGH finding: "FEV1 fell 25 %" is said once, as HIGH.
RULES: Final[tuple[Rule, ...]] = (
    Rule("sbp_low_absolute", "HIGH", "systolic_bp", "below", "sbp_low_mmhg", ages="sbp_band"),
    Rule("sbp_fall_percent", "HIGH", "systolic_bp", "fall_percent_more_than", "sbp_fall_percent"),
    Rule("spo2_low", "HIGH", "spo2", "at_or_below", "spo2_low_percent"),
    Rule("fev1_fall_high", "HIGH", "fev1_l", "fall_percent_at_least", "fev1_fall_high_percent"),
    Rule(
        "pef_fall_high",
        "HIGH",
        "peak_flow_l_min",
        "fall_percent_at_least",
        "pef_fall_high_percent",
    ),
    Rule("sbp_fall_mmhg", "MEDIUM", "systolic_bp", "fall_more_than", "sbp_fall_mmhg"),
    Rule("spo2_fall", "MEDIUM", "spo2", "fall_at_least", "spo2_fall_points"),
    Rule(
        "fev1_fall_medium", "MEDIUM", "fev1_l", "fall_percent_at_least", "fev1_fall_medium_percent"
    ),
    Rule(
        "pef_fall_medium",
        "MEDIUM",
        "peak_flow_l_min",
        "fall_percent_at_least",
        "pef_fall_medium_percent",
    ),
    Rule("hr_high", "MEDIUM", "heart_rate", "at_or_above", "hr_high_per_min", ages="rate_band"),
    Rule("hr_rise", "MEDIUM", "heart_rate", "rise_at_least", "hr_rise_per_min"),
    Rule(
        "rr_high",
        "MEDIUM",
        "respiratory_rate",
        "at_or_above",
        "rr_high_per_min",
        ages="rate_band",
    ),
    Rule("temperature_high", "MEDIUM", "temperature_c", "at_or_above", "temperature_high_c"),
    Rule("sbp_high", "MEDIUM", "systolic_bp", "at_or_above", "sbp_high_mmhg", ages="adults"),
    Rule("dbp_high", "MEDIUM", "diastolic_bp", "at_or_above", "dbp_high_mmhg", ages="adults"),
)

NEWS2_MEDIUM: Final = "news2_urgent_review"
NEWS2_HIGH: Final = "news2_emergency"


# --- symptoms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymptomClass:
    system: str
    brown_grade: int  # 1–3, Brown 2004 as tabulated in clinical reference §c.4

    @property
    def condition(self) -> str:
        if self.brown_grade >= 2:
            return "symptom_brown_2_3"
        return "symptom_skin" if self.system == SKIN else "symptom_mild_other"

    @property
    def priority(self) -> Priority:
        return "HIGH" if self.brown_grade >= 2 else "MEDIUM"


SKIN: Final = "skin and mucosa"
_S = SymptomClass
# Every checklist symptom (validation.SYMPTOMS) by organ system and Brown grade. Grade 1 is skin
# and subcutaneous tissue only; nose and eyes (sneezing, rhinorrhoea, red watery eyes) are counted
# with it as mucosa. Grade 2 is respiratory, cardiovascular or gastrointestinal involvement;
# grade 3 hypotension, collapse or neurological compromise. Not in Brown's table, our choice:
# cough and diarrhoea (grade 2, as respiratory and GI involvement), sense of impending doom
# (grade 2), back pain (grade 1, the taxane adaptation's "single mild system") and fever, chills or
# rigors (grade 1: cytokine-release type, not anaphylaxis). Cyanosis, confusion and incontinence
# are Brown's own grade-3 signs (hypoxia, neurological compromise).
SYMPTOM_CLASSES: Final[Mapping[str, SymptomClass]] = MappingProxyType(
    {
        "flushing": _S(SKIN, 1),
        "pruritus": _S(SKIN, 1),
        "urticaria": _S(SKIN, 1),
        "angioedema": _S(SKIN, 1),
        "sneezing": _S(SKIN, 1),
        "rhinorrhoea": _S(SKIN, 1),
        "red_watery_eyes": _S(SKIN, 1),
        "throat_tightness": _S("respiratory", 2),
        "wheeze": _S("respiratory", 2),
        "cough": _S("respiratory", 2),
        "dyspnoea": _S("respiratory", 2),
        "chest_tightness": _S("respiratory", 2),
        "back_pain": _S("musculoskeletal", 1),
        "abdominal_pain": _S("gastrointestinal", 2),
        "nausea": _S("gastrointestinal", 2),
        "vomiting": _S("gastrointestinal", 2),
        "diarrhoea": _S("gastrointestinal", 2),
        "dizziness": _S("cardiovascular", 2),
        "diaphoresis": _S("cardiovascular", 2),
        "hypotension_collapse": _S("cardiovascular", 3),
        "loss_of_consciousness": _S("neurological", 3),
        "cyanosis": _S("respiratory", 3),
        "confusion": _S("neurological", 3),
        "incontinence": _S("neurological", 3),
        "sense_of_doom": _S("neurological", 2),
        "fever_chills": _S("constitutional", 1),
    }
)

SYMPTOM_RULE_TEXT: Final[Mapping[Priority, tuple[str, ...]]] = MappingProxyType(
    {
        "HIGH": (
            "any symptom of Brown grade 2–3 (respiratory, cardiovascular, gastrointestinal, "
            "neurological)",
        ),
        "MEDIUM": (
            "skin or mucosal symptoms only (Brown grade 1)",
            "back pain, or fever, chills or rigors (Brown grade 1)",
        ),
    }
)


# --- findings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One rule met. ``value`` is what was compared with ``limit``, in ``unit``: the measurement
    for an absolute limit, its change from baseline for a baseline rule, the NEWS2 score, the
    symptom code (and no limit) for a symptom. ``message`` is one line for the screen;
    ``summary`` the compact form used in grading reasons, e.g. "SpO2 91 % (≤ 92 %)"; ``words``
    the clinical finding alone, e.g. "SpO2 91 %" or "systolic 85 mmHg, 31.4 % below baseline"."""

    priority: Priority
    condition: str
    field: str  # the vitals field, "news2" or "symptoms"
    value: Decimal | str
    limit: Decimal | None
    unit: str
    message: str
    summary: str
    measured: Decimal | None = None
    baseline: Decimal | None = None
    words: str = ""

    @property
    def is_symptom(self) -> bool:
        return self.field == "symptoms"


@dataclass(frozen=True)
class Suspicion:
    """A value so far from the baseline that it may be a typing error: saved only after a
    second tap, like an alarm value. Not a finding: it raises nothing."""

    field: str
    value: Decimal
    baseline: Decimal
    change_percent: Decimal
    message: str


@dataclass(frozen=True)
class Evaluation:
    """What one vitals set shows: every finding, the low systolic limit used for this age, the
    values that need a second look and, for adults, the NEWS2 score."""

    findings: tuple[Finding, ...]  # HIGH first, then in the order of RULES and the checklist
    sbp_low_limit: Decimal  # the low systolic limit used, for this patient's age
    sbp_low_note: str
    suspicious: tuple[Suspicion, ...] = ()
    news2: News2 | None = None  # None for children

    @property
    def needs_confirmation(self) -> bool:
        """A value meets an alarm criterion or lies far from baseline: the nurse confirms the
        set with a second tap."""
        return bool(self.findings) or bool(self.suspicious)

    @property
    def highest(self) -> Priority | None:
        return next((p for p in PRIORITIES for f in self.findings if f.priority == p), None)

    @property
    def within_limits(self) -> bool:
        """No MEDIUM or HIGH finding and no symptom: what a resume needs of fresh vitals."""
        return not self.findings

    @property
    def meets_reaction_criteria(self) -> bool:
        """Any HIGH finding, or any symptom at all: a reaction is opened (product-spec §4)."""
        return any(f.priority == "HIGH" or f.is_symptom for f in self.findings)

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(f.condition for f in self.findings)

    def clinical_findings(self, priorities: tuple[Priority, ...] = PRIORITIES) -> tuple[str, ...]:
        """The measured findings in words, one per measurement (its gravest finding first), in
        the order of RULES: "systolic 85 mmHg, 31.4 % below baseline 124 mmHg"; "SpO2 89 %"."""
        return clinical_words(
            [f for f in self.findings if not f.is_symptom and f.priority in priorities]
        )


def clinical_words(findings: list[Finding]) -> tuple[str, ...]:
    """Findings of one set in words, one line per measurement: the absolute value once, with
    every change from baseline after it."""
    by_field: dict[str, list[Finding]] = {}
    for finding in findings:
        by_field.setdefault(finding.field, []).append(finding)
    out = []
    for field_name, group in by_field.items():
        if field_name == "news2":
            out.extend(f.words for f in group)
            continue
        head = group[0]
        assert head.measured is not None
        label = VITAL_SIGNS[field_name].label
        unit = VITAL_SIGNS[field_name].unit
        changes = list(dict.fromkeys(f.words for f in group if f.baseline is not None))
        out.append(", ".join([f"{label} {_num(head.measured)} {unit}", *changes]))
    return tuple(out)


def _num(value: Decimal) -> str:
    """A Decimal as plain digits without trailing zeros: 90, 2.5, 33.3."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _fall_text(fall: Decimal, limit: Decimal, strict: bool) -> str:
    """A computed change, cut to one decimal (or the limit's own places), never shown equal to a
    limit it exceeds: 30.04 % is "30.04", not "30", when the rule is "more than 30 %"."""
    exponent = limit.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # a finite limit
    places = max(1, -exponent)
    while True:
        shown = fall.quantize(_D(1).scaleb(-places), rounding=ROUND_DOWN)
        if not (strict and shown <= limit) or places >= 12:
            return _num(shown)
        places += 1


def _measured(reading: VitalsReading | None, name: str) -> Decimal | None:
    if reading is None or reading.status_of(name) != "measured":
        return None
    return reading.value(name)


def _limit(
    rule: Rule, thresholds: Thresholds, age_years: Decimal | int | None
) -> tuple[Decimal, str, str] | None:
    """(limit, comparison, note) of a rule for this age; None when it does not apply."""
    if rule.ages == "sbp_band":
        limit, note = thresholds.sbp_low_for(age_years)
        return limit, rule.comparison, note
    if rule.ages == "rate_band":
        return thresholds.rate_high_for(rule.threshold, age_years)
    if rule.ages == "adults":
        age = _age(age_years)
        if age is not None and age < ADULT_YEARS:
            return None
    return getattr(thresholds, rule.threshold), rule.comparison, ""


def _apply(
    rule: Rule,
    reading: VitalsReading,
    baseline: VitalsReading | None,
    thresholds: Thresholds,
    age_years: Decimal | int | None,
) -> Finding | None:
    value = _measured(reading, rule.vital)
    if value is None:
        return None
    applies = _limit(rule, thresholds, age_years)
    if applies is None:
        return None
    limit, comparison_key, note = applies
    comparison = COMPARISONS[comparison_key]
    label = VITAL_SIGNS[rule.vital].label
    unit = VITAL_SIGNS[rule.vital].unit
    limit_unit = _unit(rule.threshold)
    suffix, aside = (f" ({note})", f", {note}") if note else ("", "")

    shown = f"{label} {_num(value)} {unit}"
    if comparison.relative is None:
        if comparison.direction == "low":
            met = value <= limit if comparison.inclusive else value < limit
        else:
            met = value >= limit if comparison.inclusive else value > limit
        if not met:
            return None
        return Finding(
            priority=rule.priority,
            condition=rule.condition,
            field=rule.vital,
            value=value,
            limit=limit,
            unit=unit,
            message=f"{shown} is {comparison.words} {_num(limit)} {unit}{suffix}",
            summary=f"{shown} ({comparison.symbol} {_num(limit)} {unit}{aside})",
            measured=value,
            words=shown,
        )

    base = _measured(baseline, rule.vital)
    if base is None or base <= 0:
        return None
    change = base - value if comparison.direction == "low" else value - base
    if comparison.relative == "percent":
        # Compared without dividing, so that exactly 30 % is exactly 30 %.
        scaled, bound = change * 100, limit * base
        amount = change * 100 / base
    else:
        scaled, bound = change, limit
        amount = change
    met = scaled >= bound if comparison.inclusive else scaled > bound
    if not met:
        return None
    side = "below" if comparison.direction == "low" else "above"
    amount_shown = _fall_text(amount, limit, strict=not comparison.inclusive)
    relation = f"{amount_shown} {limit_unit} {side} baseline {_num(base)} {unit}"
    return Finding(
        priority=rule.priority,
        condition=rule.condition,
        field=rule.vital,
        value=amount,
        limit=limit,
        unit=limit_unit,
        message=f"{shown} is {relation} (limit: {comparison.words} {_num(limit)} {limit_unit})",
        summary=f"{shown}, {relation} ({comparison.symbol} {_num(limit)} {limit_unit})",
        measured=value,
        baseline=base,
        words=relation,
    )


def _symptom_finding(code: str) -> Finding:
    kind = SYMPTOM_CLASSES[code]
    label = SYMPTOMS[code]
    return Finding(
        priority=kind.priority,
        condition=kind.condition,
        field="symptoms",
        value=code,
        limit=None,
        unit="",
        message=f"symptom: {label} ({kind.system}, Brown grade {kind.brown_grade})",
        summary=label,
        words=label,
    )


def _news2_finding(score: News2, thresholds: Thresholds) -> Finding | None:
    """NEWS2 response thresholds (RCP 2017): an aggregate at the HIGH threshold (7) is an
    emergency; at the MEDIUM one (5), or any single parameter scoring 3, urgent review."""
    total = _D(score.total)
    if total >= thresholds.news2_high_score:
        priority: Priority = "HIGH"
        condition, limit = NEWS2_HIGH, thresholds.news2_high_score
        why = f"at or above {_num(limit)}: emergency response"
    elif total >= thresholds.news2_medium_score:
        priority, condition, limit = "MEDIUM", NEWS2_MEDIUM, thresholds.news2_medium_score
        why = f"at or above {_num(limit)}: urgent review"
    elif score.highest_single >= 3:
        priority, condition, limit = "MEDIUM", NEWS2_MEDIUM, thresholds.news2_medium_score
        threes = [PARAMETER_NAMES[s.parameter] for s in score.scores if s.points >= 3]
        why = f"{', '.join(threes)} scores 3: urgent review"
    else:
        return None
    total_text = f"at least {score.total}" if score.partial else str(score.total)
    words = f"NEWS2 {total_text}"
    return Finding(
        priority=priority,
        condition=condition,
        field="news2",
        value=total,
        limit=limit,
        unit="points",
        message=f"{words} ({why})",
        summary=f"{words} ({why})",
        words=words,
    )


def _suspicious(
    reading: VitalsReading, baseline: VitalsReading | None, percent: Decimal
) -> tuple[Suspicion, ...]:
    out = []
    for name in MEASURED_FIELDS:
        value, base = _measured(reading, name), _measured(baseline, name)
        if value is None or base is None or base <= 0:
            continue
        change = abs(value - base)
        if change * 100 <= percent * base:
            continue
        side = "above" if value > base else "below"
        amount = (change * 100 / base).quantize(_D(1), rounding=ROUND_DOWN)
        unit = VITAL_SIGNS[name].unit
        label = VITAL_SIGNS[name].label
        out.append(
            Suspicion(
                field=name,
                value=value,
                baseline=base,
                change_percent=change * 100 / base,
                message=(
                    f"is {label} {_num(value)} {unit} right? It is {_num(amount)} % {side} "
                    f"the baseline {_num(base)} {unit}"
                ),
            )
        )
    return tuple(out)


def evaluate(
    reading: VitalsReading,
    baseline: VitalsReading | None,
    thresholds: Thresholds,
    *,
    age_years: Decimal | int | None,
) -> Evaluation:
    """Every alarm rule met by ``reading``, against the absolute limits for this age and against
    ``baseline`` (None before the baseline exists). ``age_years`` None uses the adult limits."""
    unknown = sorted(reading.symptoms - SYMPTOM_CLASSES.keys())
    if unknown:
        raise ValueError(f"unknown symptom code {unknown[0]!r}")
    sbp_low = thresholds.sbp_low_for(age_years)
    found = [
        finding
        for rule in RULES
        if (finding := _apply(rule, reading, baseline, thresholds, age_years)) is not None
    ]
    graver = {f.field for f in found if f.priority == "HIGH"}
    found = [f for f in found if f.priority == "HIGH" or f.field not in graver]
    score = news2.score(news2_values(reading)) if news2.applies_to(age_years) else None
    if score is not None and (scored := _news2_finding(score, thresholds)) is not None:
        found.append(scored)
    found.extend(_symptom_finding(code) for code in SYMPTOMS if code in reading.symptoms)
    found.sort(key=lambda f: PRIORITIES.index(f.priority))
    return Evaluation(
        tuple(found),
        sbp_low_limit=sbp_low[0],
        sbp_low_note=sbp_low[1],
        suspicious=_suspicious(reading, baseline, thresholds.suspicious_change_percent),
        news2=score,
    )


def news2_values(reading: VitalsReading) -> dict[str, object]:
    """The values NEWS2 scores, from a reading: measured numbers; unmeasured ones missing."""
    values: dict[str, object] = {name: _measured(reading, name) for name in news2.BANDS}
    values["supplemental_oxygen"] = reading.supplemental_oxygen
    values["consciousness"] = reading.consciousness
    return values


# --- codes in words -------------------------------------------------------------------------------

# What each alarm condition means, for a person: reactions recorded before findings were kept in
# words stored these codes among their symptoms, and no code is ever shown as it is.
CONDITION_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sbp_low_absolute": "low systolic pressure",
        "sbp_fall_percent": "systolic pressure fallen more than 30 % from baseline",
        "spo2_low": "low oxygen saturation",
        "fev1_fall_high": "FEV1 fallen from baseline",
        "pef_fall_high": "peak flow fallen from baseline",
        "sbp_fall_mmhg": "systolic pressure fallen from baseline",
        "spo2_fall": "oxygen saturation fallen from baseline",
        "fev1_fall_medium": "FEV1 fallen from baseline",
        "pef_fall_medium": "peak flow fallen from baseline",
        "hr_high": "fast heart rate",
        "hr_rise": "heart rate risen from baseline",
        "rr_high": "fast breathing",
        "temperature_high": "fever",
        "sbp_high": "high systolic pressure",
        "dbp_high": "high diastolic pressure",
        NEWS2_MEDIUM: "NEWS2: urgent review",
        NEWS2_HIGH: "NEWS2: emergency response",
        "symptom_brown_2_3": "symptoms of Brown grade 2–3",
        "symptom_skin": "skin or mucosal symptoms",
        "symptom_mild_other": "mild symptoms",
    }
)


def symptom_words(code: str) -> str:
    """A symptom code (or an alarm condition code kept as one) in words."""
    return SYMPTOMS.get(code) or CONDITION_WORDS.get(code) or code.replace("_", " ")
