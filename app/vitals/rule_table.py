"""The alarm rules of product-spec §4 as data. Pure: no I/O, no clock, no database.

* ``RULES``: which measurement is compared how with which threshold (a field of
  ``app.vitals.thresholds.Thresholds``), at which priority, for whom;
* ``COMPARISONS``: what each way of comparing means, and how it is said;
* ``SYMPTOM_CLASSES``: the organ system and Brown grade of every checklist symptom (here, not in
  grading.py, because the alarm priority of a symptom follows its grade).

``app.vitals.rules.evaluate`` applies them to a vitals set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Priority = Literal["HIGH", "MEDIUM"]
PRIORITIES: Final[tuple[Priority, ...]] = ("HIGH", "MEDIUM")  # most urgent first


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
#   "sbp_band"  children: the age-specific low systolic pressure of ages.CHILD_SBP_BANDS;
#   "rate_band" children: above the upper limit of ages.CHILD_RATE_BANDS for the age, unless a
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
