"""The alarm thresholds in force for one session: every number of product-spec §4 with its
default, the range a physician may set it to, its unit, its source and its words. Pure: no I/O,
no clock, no database; exact ``Decimal`` arithmetic.

A physician overrides them per session with ``Thresholds.with_overrides``; children's limits
follow their age (``app.vitals.ages``) unless a physician set them; ``Thresholds.describe``
lists every threshold in force in words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from app.vitals import news2
from app.vitals.ages import (
    ADULT_YEARS,
    CHILD_RATE_BANDS,
    CHILD_SBP_BANDS,
    checked_age,
    completed_months,
    rate_band_for,
    sbp_band_for,
)
from app.vitals.catalogue import VITAL_SIGNS
from app.vitals.rule_table import COMPARISONS, PRIORITIES, RULES, SYMPTOM_RULE_TEXT, Rule

_D = Decimal


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
                        f"{milder} {plain_number(getattr(self, milder))} {unit} must be below "
                        f"{graver} {plain_number(getattr(self, graver))} {unit}"
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
        age = checked_age(age_years)
        band = sbp_band_for(age)
        if age is None or band is None:
            return self.sbp_low_mmhg, ""
        limit = getattr(self, band.base)
        if band.per_year is None:
            return limit, band.note
        years = (completed_months(age) / 12).to_integral_value(rounding=ROUND_FLOOR)
        per_year = getattr(self, band.per_year)
        return limit + per_year * years, (
            f"{band.note}: {plain_number(limit)} + {plain_number(per_year)} × "
            f"{plain_number(years)} year{'' if years == 1 else 's'}"
        )

    def rate_high_for(
        self, threshold: str, age_years: Decimal | int | None
    ) -> tuple[Decimal, str, str]:
        """The high heart or respiratory rate limit for this age: (limit, comparison, note).
        Adults (and an unknown age): the session's threshold, at or above. Children: above the
        upper limit of their CHILD_RATE_BANDS band, unless a physician set the threshold."""
        band = rate_band_for(checked_age(age_years))
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
        age = checked_age(age_years)
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
                    limit=plain_number(getattr(self, rule.threshold)), unit=_unit(rule.threshold)
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
                    f"{priority}: NEWS2 {plain_number(score)} or more{single}{adults}"
                    f"{self._changed(name)}"
                )
        lines.append(
            f"CONFIRM: any value more than {plain_number(self.suspicious_change_percent)} % from "
            f"baseline needs a second tap{self._changed('suspicious_change_percent')}"
        )
        return tuple(lines)

    def _describe_rate(self, rule: Rule, label: str, age_years: Decimal | int | None) -> list[str]:
        unit = _unit(rule.threshold)
        if age_years is not None:
            limit, comparison, note = self.rate_high_for(rule.threshold, age_years)
            words = COMPARISONS[comparison].describe.format(limit=plain_number(limit), unit=unit)
            return [
                f"{rule.priority}: {label} {words} ({note or 'adults'})"
                f"{self._changed(rule.threshold)}"
            ]
        adult = COMPARISONS[rule.comparison].describe.format(
            limit=plain_number(getattr(self, rule.threshold)), unit=unit
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
        was = ", ".join(f"{plain_number(_default(n))} {_unit(n)}" for n in moved)
        return f" (physician override; default {was})"

    def _describe_sbp_low(self, age_years: Decimal | int | None) -> list[str]:
        if age_years is not None:
            limit, note = self.sbp_low_for(age_years)
            band = sbp_band_for(checked_age(age_years))
            names = (band.base, band.per_year) if band else ("sbp_low_mmhg", None)
            return [
                f"HIGH: systolic below {plain_number(limit)} mmHg ({note or 'adults'})"
                f"{self._changed(*names)}"
            ]
        lines = [
            f"HIGH: systolic below {plain_number(self.sbp_low_mmhg)} mmHg "
            f"(adults, 18 years and over){self._changed('sbp_low_mmhg')}"
        ]
        for band in CHILD_SBP_BANDS:
            if band.describe is None:
                continue
            limit_text = plain_number(getattr(self, band.base))
            if band.per_year is not None:
                per_year = plain_number(getattr(self, band.per_year))
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
# The thresholds that a child's rate band replaces, and the vital sign each one limits.
RATE_THRESHOLD_VITALS: Final[Mapping[str, str]] = MappingProxyType(
    {"hr_high_per_min": "heart_rate", "rr_high_per_min": "respiratory_rate"}
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


def _default(name: str) -> Decimal:
    default = Thresholds.__dataclass_fields__[name].default
    assert isinstance(default, Decimal)  # every threshold has a Decimal default
    return default


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
            f"threshold {name} {plain_number(value)} {unit} is outside the allowed range "
            f"{plain_number(low)}–{plain_number(high)} {unit}"
        )
    return value


def plain_number(value: Decimal) -> str:
    """A Decimal as plain digits without trailing zeros: 90, 2.5, 33.3."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")
