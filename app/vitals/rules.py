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

from app.vitals.validation import POSSIBLE_RANGES, SYMPTOMS, VitalsReading

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
                    problems.append(
                        f"{milder} {_num(getattr(self, milder))} % must be below {graver} "
                        f"{_num(getattr(self, graver))} %"
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
        years = age.to_integral_value(rounding=ROUND_FLOOR)
        per_year = getattr(self, band.per_year)
        return limit + per_year * years, (
            f"{band.note}: {_num(limit)} + {_num(per_year)} × {_num(years)} "
            f"year{'' if years == 1 else 's'}"
        )

    def describe(self, *, age_years: Decimal | int | None = None) -> tuple[str, ...]:
        """Every threshold in force, one human line each, most urgent first. With an age, the one
        low systolic limit for that age; without, the adult limit and each child's band. A value
        a physician changed says so, with its default."""
        lines: list[str] = []
        for priority in PRIORITIES:
            for rule in RULES:
                if rule.priority != priority:
                    continue
                if rule.age_specific:
                    lines.extend(self._describe_sbp_low(age_years))
                    continue
                words = COMPARISONS[rule.comparison].describe.format(
                    limit=_num(getattr(self, rule.threshold)), unit=_unit(rule.threshold)
                )
                label = VITAL_LABELS[rule.vital]
                lines.append(f"{priority}: {label} {words}{self._changed(rule.threshold)}")
            lines.extend(f"{priority}: {text}" for text in SYMPTOM_RULE_TEXT[priority])
        return tuple(lines)

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
    months = age * 12
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


# --- the rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """How a measurement is compared with its threshold. ``fall``: None compares the value
    itself (below the limit); "units" the fall from baseline in the threshold's unit; "percent"
    the fall as a percentage of the baseline. ``inclusive``: the limit itself alarms."""

    fall: Literal["units", "percent"] | None
    inclusive: bool
    words: str  # message: "is {words} {limit} {unit}" or "(limit: {words} ...)"
    symbol: str  # compact form in grading reasons
    describe: str  # Thresholds.describe, after the measurement's label


COMPARISONS: Final[Mapping[str, Comparison]] = MappingProxyType(
    {
        "below": Comparison(None, False, "below", "<", "below {limit} {unit}"),
        "at_or_below": Comparison(None, True, "at or below", "≤", "at or below {limit} {unit}"),
        "fall_more_than": Comparison(
            "units", False, "more than", ">", "more than {limit} {unit} below baseline"
        ),
        "fall_at_least": Comparison(
            "units", True, "at least", "≥", "{limit} {unit} or more below baseline"
        ),
        "fall_percent_more_than": Comparison(
            "percent", False, "more than", ">", "more than {limit} {unit} below baseline"
        ),
        "fall_percent_at_least": Comparison(
            "percent", True, "at least", "≥", "{limit} {unit} or more below baseline"
        ),
    }
)


@dataclass(frozen=True)
class Rule:
    condition: str
    priority: Priority
    vital: str  # a measured field of VitalsReading
    comparison: str  # a key of COMPARISONS
    threshold: str  # a field of Thresholds
    age_specific: bool = False  # children: the limit of CHILD_SBP_BANDS replaces ``threshold``


# Product-spec §4, in the order findings are listed (HIGH first). A MEDIUM finding is left out
# when the same measurement already has a HIGH finding: "FEV1 fell 25 %" is said once, as HIGH.
RULES: Final[tuple[Rule, ...]] = (
    Rule("sbp_low_absolute", "HIGH", "systolic_bp", "below", "sbp_low_mmhg", age_specific=True),
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
)

VITAL_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "systolic_bp": "systolic",
        "diastolic_bp": "diastolic",
        "heart_rate": "heart rate",
        "spo2": "SpO2",
        "respiratory_rate": "respiratory rate",
        "temperature_c": "temperature",
        "fev1_l": "FEV1",
        "peak_flow_l_min": "peak flow",
    }
)


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
# rigors (grade 1: cytokine-release type, not anaphylaxis).
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
    for an absolute limit, its fall from baseline for a baseline rule, the symptom code (and no
    limit) for a symptom. ``message`` is one line for the screen; ``summary`` the compact form
    used in grading reasons, e.g. "SpO2 91 % (≤ 92 %)"."""

    priority: Priority
    condition: str
    field: str  # the vitals field, or "symptoms"
    value: Decimal | str
    limit: Decimal | None
    unit: str
    message: str
    summary: str
    measured: Decimal | None = None
    baseline: Decimal | None = None


@dataclass(frozen=True)
class Evaluation:
    """What one vitals set shows: every finding, and the low systolic limit used for this age."""

    findings: tuple[Finding, ...]  # HIGH first, then in the order of RULES and the checklist
    sbp_low_limit: Decimal  # the low systolic limit used, for this patient's age
    sbp_low_note: str

    @property
    def needs_confirmation(self) -> bool:
        """A value meets an alarm criterion: the nurse confirms the set with a second tap."""
        return bool(self.findings)

    @property
    def highest(self) -> Priority | None:
        return next((p for p in PRIORITIES for f in self.findings if f.priority == p), None)

    @property
    def meets_reaction_criteria(self) -> bool:
        """Any HIGH finding, or any symptom at all: a reaction is opened (product-spec §4)."""
        return any(f.priority == "HIGH" or f.field == "symptoms" for f in self.findings)

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(f.condition for f in self.findings)


def _num(value: Decimal) -> str:
    """A Decimal as plain digits without trailing zeros: 90, 2.5, 33.3."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _fall_text(fall: Decimal, limit: Decimal, strict: bool) -> str:
    """A computed fall, cut to one decimal (or the limit's own places), never shown equal to a
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


def _apply(
    rule: Rule,
    reading: VitalsReading,
    baseline: VitalsReading | None,
    thresholds: Thresholds,
    sbp_low: tuple[Decimal, str],
) -> Finding | None:
    comparison = COMPARISONS[rule.comparison]
    value = _measured(reading, rule.vital)
    if value is None:
        return None
    label = VITAL_LABELS[rule.vital]
    unit = POSSIBLE_RANGES[rule.vital][2]
    if rule.age_specific:
        limit, note = sbp_low
    else:
        limit, note = getattr(thresholds, rule.threshold), ""
    limit_unit = _unit(rule.threshold)
    suffix, aside = (f" ({note})", f", {note}") if note else ("", "")

    shown = f"{label} {_num(value)} {unit}"
    if comparison.fall is None:
        met = value <= limit if comparison.inclusive else value < limit
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
        )

    base = _measured(baseline, rule.vital)
    if base is None or base <= 0:
        return None
    drop = base - value
    if comparison.fall == "percent":
        # Compared without dividing, so that exactly 30 % is exactly 30 %.
        scaled, bound = drop * 100, limit * base
        fall = drop * 100 / base
    else:
        scaled, bound = drop, limit
        fall = drop
    met = scaled >= bound if comparison.inclusive else scaled > bound
    if not met:
        return None
    fall_shown = _fall_text(fall, limit, strict=not comparison.inclusive)
    below = f"{fall_shown} {limit_unit} below baseline {_num(base)} {unit}"
    return Finding(
        priority=rule.priority,
        condition=rule.condition,
        field=rule.vital,
        value=fall,
        limit=limit,
        unit=limit_unit,
        message=f"{shown} is {below} (limit: {comparison.words} {_num(limit)} {limit_unit})",
        summary=f"{shown}, {below} ({comparison.symbol} {_num(limit)} {limit_unit})",
        measured=value,
        baseline=base,
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
    )


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
        if (finding := _apply(rule, reading, baseline, thresholds, sbp_low)) is not None
    ]
    graver = {f.field for f in found if f.priority == "HIGH"}
    found = [f for f in found if f.priority == "HIGH" or f.field not in graver]
    found.extend(_symptom_finding(code) for code in SYMPTOMS if code in reading.symptoms)
    found.sort(key=lambda f: PRIORITIES.index(f.priority))
    return Evaluation(tuple(found), sbp_low_limit=sbp_low[0], sbp_low_note=sbp_low[1])
