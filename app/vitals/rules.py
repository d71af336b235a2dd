"""Is this vitals set worrying? The alarm rules of product-spec §4 applied to one vitals set,
and what they find said in words. Pure: no I/O, no clock, no database; exact ``Decimal``
arithmetic.

``evaluate(reading, baseline, thresholds, age_years=...)`` compares one possible vitals set
(``app.vitals.validation.VitalsReading``) with the absolute limits and with the patient's own
baseline, and lists each finding with its priority, the value that triggered it, the limit in
force and a one-line message. Everything rule-like is data, in its own module:

* ``app.vitals.thresholds``: every number (``Thresholds``), with its default, the range a
  physician may set it to, its unit and where it comes from (a physician overrides them per
  session with ``with_overrides``);
* ``app.vitals.rule_table``: which measurement is compared how with which threshold, at which
  priority (``RULES``), and the organ system and Brown grade of every checklist symptom
  (``SYMPTOM_CLASSES``);
* ``app.vitals.ages``: the age-specific limits of children (clinical reference §c.4,
  anaphylaxis criteria; APLS heart and respiratory rates);
* ``app.vitals.catalogue``: each vital sign's label and unit.

Boundaries are exactly as worded: "below 90 mmHg" does not include 90, "at or below 92 %" does;
"more than 30 % below baseline" does not include 30 %, "20 % or more below baseline" does.
A value that was not measured (unable to obtain, refused, not recorded) gives no finding, and a
fall is only computed when the baseline has that value measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from types import MappingProxyType
from typing import Final

from app.vitals import news2
from app.vitals.ages import ADULT_YEARS, checked_age
from app.vitals.catalogue import VITAL_SIGNS
from app.vitals.news2 import PARAMETER_NAMES, News2
from app.vitals.rule_table import (
    COMPARISONS,
    NEWS2_HIGH,
    NEWS2_MEDIUM,
    PRIORITIES,
    RULES,
    SYMPTOM_CLASSES,
    Priority,
    Rule,
)
from app.vitals.thresholds import THRESHOLD_LABELS, THRESHOLD_SPECS, Thresholds, plain_number
from app.vitals.validation import MEASURED_FIELDS, SYMPTOMS, VitalsReading

# The thresholds come with the rules that use them, for the threshold settings form.
__all__ = [
    "CONDITION_WORDS",
    "THRESHOLD_LABELS",
    "THRESHOLD_SPECS",
    "Evaluation",
    "Finding",
    "Suspicion",
    "Thresholds",
    "clinical_words",
    "evaluate",
    "news2_values",
    "symptom_words",
]

_D = Decimal


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
    out: list[str] = []
    for field_name, group in by_field.items():
        if field_name == "news2":
            out.extend(f.words for f in group)
            continue
        head = group[0]
        assert head.measured is not None
        label = VITAL_SIGNS[field_name].label
        unit = VITAL_SIGNS[field_name].unit
        changes = list(dict.fromkeys(f.words for f in group if f.baseline is not None))
        out.append(", ".join([f"{label} {plain_number(head.measured)} {unit}", *changes]))
    return tuple(out)


def _fall_text(fall: Decimal, limit: Decimal, strict: bool) -> str:
    """A computed change, cut to one decimal (or the limit's own places), never shown equal to a
    limit it exceeds: 30.04 % is "30.04", not "30", when the rule is "more than 30 %"."""
    exponent = limit.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # a finite limit
    places = max(1, -exponent)
    while True:
        shown = fall.quantize(_D(1).scaleb(-places), rounding=ROUND_DOWN)
        if not (strict and shown <= limit) or places >= 12:
            return plain_number(shown)
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
        age = checked_age(age_years)
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
    limit_unit = THRESHOLD_SPECS[rule.threshold].unit
    suffix, aside = (f" ({note})", f", {note}") if note else ("", "")

    shown = f"{label} {plain_number(value)} {unit}"
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
            message=f"{shown} is {comparison.words} {plain_number(limit)} {unit}{suffix}",
            summary=f"{shown} ({comparison.symbol} {plain_number(limit)} {unit}{aside})",
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
    relation = f"{amount_shown} {limit_unit} {side} baseline {plain_number(base)} {unit}"
    return Finding(
        priority=rule.priority,
        condition=rule.condition,
        field=rule.vital,
        value=amount,
        limit=limit,
        unit=limit_unit,
        message=(
            f"{shown} is {relation} (limit: {comparison.words} {plain_number(limit)} {limit_unit})"
        ),
        summary=f"{shown}, {relation} ({comparison.symbol} {plain_number(limit)} {limit_unit})",
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
        why = f"at or above {plain_number(limit)}: emergency response"
    elif total >= thresholds.news2_medium_score:
        priority, condition, limit = "MEDIUM", NEWS2_MEDIUM, thresholds.news2_medium_score
        why = f"at or above {plain_number(limit)}: urgent review"
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
                    f"is {label} {plain_number(value)} {unit} right? "
                    f"It is {plain_number(amount)} % {side} "
                    f"the baseline {plain_number(base)} {unit}"
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
