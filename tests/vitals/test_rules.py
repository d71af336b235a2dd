"""Alarm rules (product-spec §4): every rule at, just inside and just outside its threshold, for
adults, for each children's age band and with physician overrides; the words of each finding;
and, with Hypothesis, that evaluation never fails and lists HIGH first."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.vitals.rule_table import COMPARISONS, PRIORITIES, RULES, SYMPTOM_CLASSES
from app.vitals.rules import Evaluation, evaluate
from app.vitals.thresholds import THRESHOLD_SPECS, Thresholds
from app.vitals.validation import SYMPTOMS, VitalsReading
from tests.vitals.readings import AGES, REFUSED, UNABLE, reading, readings, thresholds

D = Decimal
PRIORITY_OF = {rule.condition: rule.priority for rule in RULES}


def run(
    now: VitalsReading,
    baseline: VitalsReading | None = None,
    *,
    age: Decimal | int | None = 40,
    overrides: dict[str, Any] | None = None,
) -> Evaluation:
    return evaluate(now, baseline, Thresholds().with_overrides(overrides or {}), age_years=age)


# --- every rule at its edges ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    condition: str
    now: dict[str, Any]
    expected: bool
    baseline: dict[str, Any] | None = None
    age: Decimal | int | None = 40
    overrides: dict[str, Any] = field(default_factory=dict)


def case(id_: str, *args: Any, **kwargs: Any) -> Any:
    return pytest.param(Case(*args, **kwargs), id=id_)


EDGE_CASES = [
    # HIGH: systolic below 90 mmHg (adults); 90 itself is not an alarm.
    case("sbp-adult-inside", "sbp_low_absolute", {"systolic_bp": 89}, True),
    case("sbp-adult-at", "sbp_low_absolute", {"systolic_bp": 90}, False),
    case("sbp-adult-outside", "sbp_low_absolute", {"systolic_bp": 91}, False),
    case("sbp-no-age-inside", "sbp_low_absolute", {"systolic_bp": 89}, True, age=None),
    case("sbp-no-age-at", "sbp_low_absolute", {"systolic_bp": 90}, False, age=None),
    case("sbp-18y-inside", "sbp_low_absolute", {"systolic_bp": 89}, True, age=18),
    case("sbp-18y-at", "sbp_low_absolute", {"systolic_bp": 90}, False, age=18),
    # Under 1 month: 70 mmHg, the 1 month–1 year limit.
    case("sbp-2wk-inside", "sbp_low_absolute", {"systolic_bp": 69}, True, age=D("0.04")),
    case("sbp-2wk-at", "sbp_low_absolute", {"systolic_bp": 70}, False, age=D("0.04")),
    case("sbp-2wk-outside", "sbp_low_absolute", {"systolic_bp": 71}, False, age=D("0.04")),
    case("sbp-newborn-inside", "sbp_low_absolute", {"systolic_bp": 69}, True, age=0),
    case("sbp-newborn-at", "sbp_low_absolute", {"systolic_bp": 70}, False, age=0),
    # 1 month–1 year: below 70 mmHg.
    case("sbp-5wk-inside", "sbp_low_absolute", {"systolic_bp": 69}, True, age=D("0.09")),
    case("sbp-5wk-at", "sbp_low_absolute", {"systolic_bp": 70}, False, age=D("0.09")),
    case("sbp-6mo-inside", "sbp_low_absolute", {"systolic_bp": 69}, True, age=D("0.5")),
    case("sbp-6mo-at", "sbp_low_absolute", {"systolic_bp": 70}, False, age=D("0.5")),
    case("sbp-6mo-outside", "sbp_low_absolute", {"systolic_bp": 71}, False, age=D("0.5")),
    case("sbp-11mo-at", "sbp_low_absolute", {"systolic_bp": 70}, False, age=D("0.99")),
    case("sbp-11mo-outside", "sbp_low_absolute", {"systolic_bp": 71}, False, age=D("0.99")),
    # 1–10 years: below 70 + 2 × completed years.
    case("sbp-1y-inside", "sbp_low_absolute", {"systolic_bp": 71}, True, age=1),
    case("sbp-1y-at", "sbp_low_absolute", {"systolic_bp": 72}, False, age=1),
    case("sbp-1y-outside", "sbp_low_absolute", {"systolic_bp": 73}, False, age=1),
    case("sbp-5y-inside", "sbp_low_absolute", {"systolic_bp": 79}, True, age=5),
    case("sbp-5y-at", "sbp_low_absolute", {"systolic_bp": 80}, False, age=5),
    case("sbp-5y-outside", "sbp_low_absolute", {"systolic_bp": 81}, False, age=5),
    case("sbp-5.9y-inside", "sbp_low_absolute", {"systolic_bp": 79}, True, age=D("5.9")),
    case("sbp-5.9y-at", "sbp_low_absolute", {"systolic_bp": 80}, False, age=D("5.9")),
    case("sbp-10y-inside", "sbp_low_absolute", {"systolic_bp": 89}, True, age=10),
    case("sbp-10y-at", "sbp_low_absolute", {"systolic_bp": 90}, False, age=10),
    case("sbp-10y-outside", "sbp_low_absolute", {"systolic_bp": 91}, False, age=10),
    # 11–17 years: below 90 mmHg.
    case("sbp-11y-inside", "sbp_low_absolute", {"systolic_bp": 89}, True, age=11),
    case("sbp-11y-at", "sbp_low_absolute", {"systolic_bp": 90}, False, age=11),
    case("sbp-11y-outside", "sbp_low_absolute", {"systolic_bp": 91}, False, age=11),
    case("sbp-17y-inside", "sbp_low_absolute", {"systolic_bp": 89}, True, age=D("17.99")),
    case("sbp-17y-at", "sbp_low_absolute", {"systolic_bp": 90}, False, age=D("17.99")),
    # HIGH: systolic more than 30 % below baseline; exactly 30 % is not an alarm.
    case("sbp%-at", "sbp_fall_percent", {"systolic_bp": 140}, False, {"systolic_bp": 200}),
    case("sbp%-inside", "sbp_fall_percent", {"systolic_bp": 139}, True, {"systolic_bp": 200}),
    case("sbp%-outside", "sbp_fall_percent", {"systolic_bp": 141}, False, {"systolic_bp": 200}),
    case("sbp%-child", "sbp_fall_percent", {"systolic_bp": 97}, True, {"systolic_bp": 140}, 6),
    # HIGH: SpO2 at or below 92 %; 92 itself is an alarm.
    case("spo2-at", "spo2_low", {"spo2": 92}, True),
    case("spo2-inside", "spo2_low", {"spo2": 91}, True),
    case("spo2-outside", "spo2_low", {"spo2": 93}, False),
    # HIGH: FEV1 / peak flow 20 % or more below baseline; exactly 20 % is an alarm.
    case("fev1-high-at", "fev1_fall_high", {"fev1_l": "2.0"}, True, {"fev1_l": "2.5"}),
    case("fev1-high-inside", "fev1_fall_high", {"fev1_l": "1.999"}, True, {"fev1_l": "2.5"}),
    case("fev1-high-outside", "fev1_fall_high", {"fev1_l": "2.001"}, False, {"fev1_l": "2.5"}),
    case("pef-high-at", "pef_fall_high", {"peak_flow_l_min": 320}, True, {"peak_flow_l_min": 400}),
    case(
        "pef-high-inside", "pef_fall_high", {"peak_flow_l_min": 319}, True, {"peak_flow_l_min": 400}
    ),
    case(
        "pef-high-outside",
        "pef_fall_high",
        {"peak_flow_l_min": 321},
        False,
        {"peak_flow_l_min": 400},
    ),
    # MEDIUM: systolic more than 20 mmHg below baseline; exactly 20 is not an alarm.
    case("sbp-mmhg-at", "sbp_fall_mmhg", {"systolic_bp": 110}, False, {"systolic_bp": 130}),
    case("sbp-mmhg-inside", "sbp_fall_mmhg", {"systolic_bp": 109}, True, {"systolic_bp": 130}),
    case("sbp-mmhg-outside", "sbp_fall_mmhg", {"systolic_bp": 111}, False, {"systolic_bp": 130}),
    # MEDIUM: SpO2 3 points or more below baseline; exactly 3 is an alarm.
    case("spo2-fall-at", "spo2_fall", {"spo2": 96}, True, {"spo2": 99}),
    case("spo2-fall-inside", "spo2_fall", {"spo2": 95}, True, {"spo2": 99}),
    case("spo2-fall-outside", "spo2_fall", {"spo2": 97}, False, {"spo2": 99}),
    # MEDIUM: FEV1 / peak flow 15 % or more below baseline; exactly 15 % is an alarm.
    case("fev1-med-at", "fev1_fall_medium", {"fev1_l": "1.7"}, True, {"fev1_l": "2.0"}),
    case("fev1-med-inside", "fev1_fall_medium", {"fev1_l": "1.699"}, True, {"fev1_l": "2.0"}),
    case("fev1-med-outside", "fev1_fall_medium", {"fev1_l": "1.701"}, False, {"fev1_l": "2.0"}),
    case("pef-med-at", "pef_fall_medium", {"peak_flow_l_min": 340}, True, {"peak_flow_l_min": 400}),
    case(
        "pef-med-inside",
        "pef_fall_medium",
        {"peak_flow_l_min": 339},
        True,
        {"peak_flow_l_min": 400},
    ),
    case(
        "pef-med-outside",
        "pef_fall_medium",
        {"peak_flow_l_min": 341},
        False,
        {"peak_flow_l_min": 400},
    ),
    # MEDIUM: heart rate at or above 111 /min (adults; NEWS2 scores 2 from there).
    case("hr-adult-outside", "hr_high", {"heart_rate": 110}, False),
    case("hr-adult-at", "hr_high", {"heart_rate": 111}, True),
    case("hr-adult-inside", "hr_high", {"heart_rate": 112}, True),
    case("hr-no-age-at", "hr_high", {"heart_rate": 111}, True, age=None),
    case("hr-18y-at", "hr_high", {"heart_rate": 111}, True, age=18),
    # Children: above the APLS upper limit for the age (the limit itself is no alarm).
    case("hr-6mo-at", "hr_high", {"heart_rate": 160}, False, age=D("0.5")),
    case("hr-6mo-inside", "hr_high", {"heart_rate": 161}, True, age=D("0.5")),
    case("hr-11mo-inside", "hr_high", {"heart_rate": 151}, False, age=D("0.99")),
    case("hr-1y-at", "hr_high", {"heart_rate": 150}, False, age=1),
    case("hr-1y-inside", "hr_high", {"heart_rate": 151}, True, age=1),
    case("hr-2y-at", "hr_high", {"heart_rate": 140}, False, age=2),
    case("hr-2y-inside", "hr_high", {"heart_rate": 141}, True, age=2),
    case("hr-4y-inside", "hr_high", {"heart_rate": 141}, True, age=D("4.99")),
    case("hr-5y-at", "hr_high", {"heart_rate": 120}, False, age=5),
    case("hr-5y-inside", "hr_high", {"heart_rate": 121}, True, age=5),
    case("hr-11y-inside", "hr_high", {"heart_rate": 121}, True, age=D("11.99")),
    case("hr-12y-at", "hr_high", {"heart_rate": 100}, False, age=12),
    case("hr-12y-inside", "hr_high", {"heart_rate": 101}, True, age=12),
    case("hr-17y-inside", "hr_high", {"heart_rate": 101}, True, age=D("17.99")),
    case("hr-18y-adult-limit", "hr_high", {"heart_rate": 101}, False, age=18),
    # MEDIUM: heart rate 30 /min or more above baseline, at any age.
    case("hr-rise-outside", "hr_rise", {"heart_rate": 99}, False, {"heart_rate": 70}),
    case("hr-rise-at", "hr_rise", {"heart_rate": 100}, True, {"heart_rate": 70}),
    case("hr-rise-inside", "hr_rise", {"heart_rate": 101}, True, {"heart_rate": 70}),
    case("hr-rise-child", "hr_rise", {"heart_rate": 110}, True, {"heart_rate": 80}, 6),
    # MEDIUM: respiratory rate at or above 21 /min (adults).
    case("rr-adult-outside", "rr_high", {"respiratory_rate": 20}, False),
    case("rr-adult-at", "rr_high", {"respiratory_rate": 21}, True),
    case("rr-adult-inside", "rr_high", {"respiratory_rate": 22}, True),
    case("rr-6mo-at", "rr_high", {"respiratory_rate": 40}, False, age=D("0.5")),
    case("rr-6mo-inside", "rr_high", {"respiratory_rate": 41}, True, age=D("0.5")),
    case("rr-1y-at", "rr_high", {"respiratory_rate": 35}, False, age=1),
    case("rr-1y-inside", "rr_high", {"respiratory_rate": 36}, True, age=1),
    case("rr-3y-at", "rr_high", {"respiratory_rate": 30}, False, age=3),
    case("rr-3y-inside", "rr_high", {"respiratory_rate": 31}, True, age=3),
    case("rr-8y-at", "rr_high", {"respiratory_rate": 25}, False, age=8),
    case("rr-8y-inside", "rr_high", {"respiratory_rate": 26}, True, age=8),
    case("rr-14y-at", "rr_high", {"respiratory_rate": 20}, False, age=14),
    case("rr-14y-inside", "rr_high", {"respiratory_rate": 21}, True, age=14),
    # MEDIUM: temperature at or above 38.0 °C, at any age.
    case("temp-outside", "temperature_high", {"temperature_c": "37.99"}, False),
    case("temp-at", "temperature_high", {"temperature_c": "38.0"}, True),
    case("temp-inside", "temperature_high", {"temperature_c": "39.4"}, True),
    case("temp-child-at", "temperature_high", {"temperature_c": "38"}, True, age=3),
    # MEDIUM: hypertension, adults only: systolic at or above 180, diastolic at or above 110.
    case("sbp-high-outside", "sbp_high", {"systolic_bp": 179}, False),
    case("sbp-high-at", "sbp_high", {"systolic_bp": 180}, True),
    case("sbp-high-inside", "sbp_high", {"systolic_bp": 190}, True),
    case("sbp-high-no-age", "sbp_high", {"systolic_bp": 180}, True, age=None),
    case("sbp-high-17y", "sbp_high", {"systolic_bp": 185}, False, age=D("17.99")),
    case("dbp-high-outside", "dbp_high", {"diastolic_bp": 109}, False),
    case("dbp-high-at", "dbp_high", {"diastolic_bp": 110}, True),
    case("dbp-high-inside", "dbp_high", {"systolic_bp": 190, "diastolic_bp": 111}, True),
    case("dbp-high-17y", "dbp_high", {"diastolic_bp": 112}, False, age=D("17.99")),
]

OVERRIDE_CASES = [
    # Adults only: an adolescent keeps 90 mmHg when the adult limit moves to 100.
    case(
        "adult-100-18y",
        "sbp_low_absolute",
        {"systolic_bp": 99},
        True,
        age=18,
        overrides={"sbp_low_mmhg": 100},
    ),
    case(
        "adult-100-18y-at",
        "sbp_low_absolute",
        {"systolic_bp": 100},
        False,
        age=18,
        overrides={"sbp_low_mmhg": 100},
    ),
    case(
        "adult-100-17y",
        "sbp_low_absolute",
        {"systolic_bp": 95},
        False,
        age=D("17.99"),
        overrides={"sbp_low_mmhg": 100},
    ),
    case(
        "adult-100-no-age",
        "sbp_low_absolute",
        {"systolic_bp": 95},
        True,
        age=None,
        overrides={"sbp_low_mmhg": 100},
    ),
    # 11–17 years band; 10.99 years is still in the 1–10 band (90 mmHg at 10).
    case(
        "teen-95-11y-inside",
        "sbp_low_absolute",
        {"systolic_bp": 94},
        True,
        age=11,
        overrides={"child_sbp_low_adolescent_mmhg": 95},
    ),
    case(
        "teen-95-11y-at",
        "sbp_low_absolute",
        {"systolic_bp": 95},
        False,
        age=11,
        overrides={"child_sbp_low_adolescent_mmhg": 95},
    ),
    case(
        "teen-95-10y",
        "sbp_low_absolute",
        {"systolic_bp": 94},
        False,
        age=D("10.99"),
        overrides={"child_sbp_low_adolescent_mmhg": 95},
    ),
    case(
        "teen-95-18y",
        "sbp_low_absolute",
        {"systolic_bp": 94},
        False,
        age=18,
        overrides={"child_sbp_low_adolescent_mmhg": 95},
    ),
    # 1 month–1 year, and under 1 month, which uses the same value.
    case(
        "infant-75-6mo-inside",
        "sbp_low_absolute",
        {"systolic_bp": 74},
        True,
        age=D("0.5"),
        overrides={"child_sbp_low_infant_mmhg": 75},
    ),
    case(
        "infant-75-6mo-at",
        "sbp_low_absolute",
        {"systolic_bp": 75},
        False,
        age=D("0.5"),
        overrides={"child_sbp_low_infant_mmhg": 75},
    ),
    case(
        "infant-75-2wk",
        "sbp_low_absolute",
        {"systolic_bp": 74},
        True,
        age=D("0.04"),
        overrides={"child_sbp_low_infant_mmhg": 75},
    ),
    case(
        "infant-75-11mo",
        "sbp_low_absolute",
        {"systolic_bp": 74},
        True,
        age=D("0.99"),
        overrides={"child_sbp_low_infant_mmhg": 75},
    ),
    # At 1 year the 1–10 band takes over (72 mmHg): the infant value no longer applies.
    case(
        "infant-75-1y",
        "sbp_low_absolute",
        {"systolic_bp": 74},
        False,
        age=1,
        overrides={"child_sbp_low_infant_mmhg": 75},
    ),
    # 1–10 years: 60 + 3 × 5 = 75.
    case(
        "child-5y-inside",
        "sbp_low_absolute",
        {"systolic_bp": 74},
        True,
        age=5,
        overrides={"child_sbp_low_base_mmhg": 60, "child_sbp_low_per_year_mmhg": 3},
    ),
    case(
        "child-5y-at",
        "sbp_low_absolute",
        {"systolic_bp": 75},
        False,
        age=5,
        overrides={"child_sbp_low_base_mmhg": 60, "child_sbp_low_per_year_mmhg": 3},
    ),
    # Every other threshold.
    case(
        "sbp%-25-at",
        "sbp_fall_percent",
        {"systolic_bp": 150},
        False,
        {"systolic_bp": 200},
        overrides={"sbp_fall_percent": 25},
    ),
    case(
        "sbp%-25-inside",
        "sbp_fall_percent",
        {"systolic_bp": 149},
        True,
        {"systolic_bp": 200},
        overrides={"sbp_fall_percent": 25},
    ),
    case("spo2-90-at", "spo2_low", {"spo2": 90}, True, overrides={"spo2_low_percent": "90"}),
    case("spo2-90-inside", "spo2_low", {"spo2": 89}, True, overrides={"spo2_low_percent": "90"}),
    case("spo2-90-outside", "spo2_low", {"spo2": 91}, False, overrides={"spo2_low_percent": "90"}),
    case(
        "fev1-25-at",
        "fev1_fall_high",
        {"fev1_l": "1.5"},
        True,
        {"fev1_l": "2"},
        overrides={"fev1_fall_high_percent": 25},
    ),
    case(
        "fev1-25-outside",
        "fev1_fall_high",
        {"fev1_l": "1.501"},
        False,
        {"fev1_l": "2"},
        overrides={"fev1_fall_high_percent": 25},
    ),
    case(
        "pef-25-at",
        "pef_fall_high",
        {"peak_flow_l_min": 300},
        True,
        {"peak_flow_l_min": 400},
        overrides={"pef_fall_high_percent": 25},
    ),
    case(
        "pef-25-outside",
        "pef_fall_high",
        {"peak_flow_l_min": 301},
        False,
        {"peak_flow_l_min": 400},
        overrides={"pef_fall_high_percent": 25},
    ),
    case(
        "sbp-mmhg-30-at",
        "sbp_fall_mmhg",
        {"systolic_bp": 100},
        False,
        {"systolic_bp": 130},
        overrides={"sbp_fall_mmhg": 30},
    ),
    case(
        "sbp-mmhg-30-inside",
        "sbp_fall_mmhg",
        {"systolic_bp": 99},
        True,
        {"systolic_bp": 130},
        overrides={"sbp_fall_mmhg": 30},
    ),
    case(
        "spo2-fall-5-at",
        "spo2_fall",
        {"spo2": 94},
        True,
        {"spo2": 99},
        overrides={"spo2_fall_points": 5},
    ),
    case(
        "spo2-fall-5-outside",
        "spo2_fall",
        {"spo2": 95},
        False,
        {"spo2": 99},
        overrides={"spo2_fall_points": 5},
    ),
    case(
        "fev1-med-10-at",
        "fev1_fall_medium",
        {"fev1_l": "1.8"},
        True,
        {"fev1_l": "2"},
        overrides={"fev1_fall_medium_percent": 10},
    ),
    case(
        "fev1-med-10-outside",
        "fev1_fall_medium",
        {"fev1_l": "1.801"},
        False,
        {"fev1_l": "2"},
        overrides={"fev1_fall_medium_percent": 10},
    ),
    case(
        "pef-med-10-at",
        "pef_fall_medium",
        {"peak_flow_l_min": 360},
        True,
        {"peak_flow_l_min": 400},
        overrides={"pef_fall_medium_percent": 10},
    ),
    case(
        "pef-med-10-outside",
        "pef_fall_medium",
        {"peak_flow_l_min": 361},
        False,
        {"peak_flow_l_min": 400},
        overrides={"pef_fall_medium_percent": 10},
    ),
    case("hr-100-at", "hr_high", {"heart_rate": 100}, True, overrides={"hr_high_per_min": 100}),
    case(
        "hr-100-outside", "hr_high", {"heart_rate": 99}, False, overrides={"hr_high_per_min": 100}
    ),
    # A physician's heart-rate limit applies at any age, in place of the APLS band.
    case(
        "hr-100-child",
        "hr_high",
        {"heart_rate": 105},
        True,
        age=5,
        overrides={"hr_high_per_min": 100},
    ),
    case("hr-child-default", "hr_high", {"heart_rate": 105}, False, age=5),
    case(
        "hr-rise-20-at",
        "hr_rise",
        {"heart_rate": 90},
        True,
        {"heart_rate": 70},
        overrides={"hr_rise_per_min": 20},
    ),
    case(
        "hr-rise-20-outside",
        "hr_rise",
        {"heart_rate": 89},
        False,
        {"heart_rate": 70},
        overrides={"hr_rise_per_min": 20},
    ),
    case(
        "rr-25-at",
        "rr_high",
        {"respiratory_rate": 25},
        True,
        overrides={"rr_high_per_min": 25},
    ),
    case(
        "rr-25-outside",
        "rr_high",
        {"respiratory_rate": 24},
        False,
        overrides={"rr_high_per_min": 25},
    ),
    case(
        "rr-30-child",
        "rr_high",
        {"respiratory_rate": 28},
        False,
        age=8,
        overrides={"rr_high_per_min": 30},
    ),
    case(
        "temp-38.5-at",
        "temperature_high",
        {"temperature_c": "38.5"},
        True,
        overrides={"temperature_high_c": "38.5"},
    ),
    case(
        "temp-38.5-outside",
        "temperature_high",
        {"temperature_c": "38.49"},
        False,
        overrides={"temperature_high_c": "38.5"},
    ),
    case(
        "sbp-high-160-at",
        "sbp_high",
        {"systolic_bp": 160},
        True,
        overrides={"sbp_high_mmhg": 160},
    ),
    case(
        "sbp-high-160-outside",
        "sbp_high",
        {"systolic_bp": 159},
        False,
        overrides={"sbp_high_mmhg": 160},
    ),
    case(
        "dbp-high-100-at",
        "dbp_high",
        {"diastolic_bp": 100},
        True,
        overrides={"dbp_high_mmhg": 100},
    ),
    case(
        "dbp-high-100-outside",
        "dbp_high",
        {"diastolic_bp": 99},
        False,
        overrides={"dbp_high_mmhg": 100},
    ),
]


@pytest.mark.parametrize("c", [*EDGE_CASES, *OVERRIDE_CASES])
def test_each_rule_at_inside_and_outside_its_threshold(c: Case) -> None:
    baseline = reading(**c.baseline) if c.baseline is not None else None
    result = run(reading(**c.now), baseline, age=c.age, overrides=c.overrides)
    assert (c.condition in result.conditions) == c.expected, result.findings
    if c.expected:
        (finding,) = [f for f in result.findings if f.condition == c.condition]
        assert finding.priority == PRIORITY_OF[c.condition]
        assert result.needs_confirmation


def test_every_rule_has_edge_cases() -> None:
    tested = {p.values[0].condition for p in EDGE_CASES}
    assert tested == {rule.condition for rule in RULES}
    overridden = {p.values[0].condition for p in OVERRIDE_CASES}
    assert overridden == {rule.condition for rule in RULES}


def test_boundaries_are_as_worded() -> None:
    inclusive = {r.condition: COMPARISONS[r.comparison].inclusive for r in RULES}
    assert inclusive == {
        "sbp_low_absolute": False,  # SBP < 90
        "sbp_fall_percent": False,  # > 30 % below baseline
        "spo2_low": True,  # SpO2 ≤ 92
        "fev1_fall_high": True,  # ≥ 20 %
        "pef_fall_high": True,
        "sbp_fall_mmhg": False,  # > 20 mmHg below
        "spo2_fall": True,  # ≥ 3 points
        "fev1_fall_medium": True,  # ≥ 15 %
        "pef_fall_medium": True,
        "hr_high": True,  # HR ≥ 111 (children: above the APLS limit)
        "hr_rise": True,  # ≥ 30 /min above baseline
        "rr_high": True,  # RR ≥ 21
        "temperature_high": True,  # ≥ 38.0 °C
        "sbp_high": True,  # SBP ≥ 180
        "dbp_high": True,  # DBP ≥ 110
    }
    assert {r.condition: r.priority for r in RULES} == {
        "sbp_low_absolute": "HIGH",
        "sbp_fall_percent": "HIGH",
        "spo2_low": "HIGH",
        "fev1_fall_high": "HIGH",
        "pef_fall_high": "HIGH",
        "sbp_fall_mmhg": "MEDIUM",
        "spo2_fall": "MEDIUM",
        "fev1_fall_medium": "MEDIUM",
        "pef_fall_medium": "MEDIUM",
        "hr_high": "MEDIUM",
        "hr_rise": "MEDIUM",
        "rr_high": "MEDIUM",
        "temperature_high": "MEDIUM",
        "sbp_high": "MEDIUM",
        "dbp_high": "MEDIUM",
    }


@pytest.mark.parametrize(
    ("age", "limit", "note"),
    [
        (None, 90, ""),
        (40, 90, ""),
        (18, 90, ""),
        (D("17.99"), 90, "age-specific limit at 11–17 years"),
        (11, 90, "age-specific limit at 11–17 years"),
        (D("10.99"), 90, "age-specific limit at 1–10 years: 70 + 2 × 10 years"),
        (5, 80, "age-specific limit at 1–10 years: 70 + 2 × 5 years"),
        (1, 72, "age-specific limit at 1–10 years: 70 + 2 × 1 year"),
        (D("0.99"), 70, "age-specific limit at 1 month–1 year"),
        (D("0.09"), 70, "age-specific limit at 1 month–1 year"),
        (D("0.08"), 70, "under 1 month: no published limit, the 1 month–1 year limit is used"),
        (0, 70, "under 1 month: no published limit, the 1 month–1 year limit is used"),
    ],
)
def test_the_low_systolic_limit_for_each_age(
    age: Decimal | int | None, limit: int, note: str
) -> None:
    assert Thresholds().sbp_low_for(age) == (limit, note)
    result = run(reading(), age=age)
    assert (result.sbp_low_limit, result.sbp_low_note) == (limit, note)


def test_a_bad_age_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        run(reading(), age=-1)
    with pytest.raises(ValueError, match="finite"):
        run(reading(), age=D("NaN"))
    with pytest.raises(TypeError, match="age_years"):
        run(reading(), age=True)
    with pytest.raises(TypeError, match="age_years"):
        run(reading(), age=5.5)  # type: ignore[arg-type]


# --- the words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "baseline", "age", "message"),
    [
        ({"systolic_bp": 85}, None, 40, "systolic 85 mmHg is below 90 mmHg"),
        ({"systolic_bp": 85}, None, None, "systolic 85 mmHg is below 90 mmHg"),
        (
            {"systolic_bp": 79},
            None,
            5,
            "systolic 79 mmHg is below 80 mmHg "
            "(age-specific limit at 1–10 years: 70 + 2 × 5 years)",
        ),
        (
            {"systolic_bp": 69},
            None,
            D("0.5"),
            "systolic 69 mmHg is below 70 mmHg (age-specific limit at 1 month–1 year)",
        ),
        (
            {"systolic_bp": 65},
            None,
            D("0.02"),
            "systolic 65 mmHg is below 70 mmHg "
            "(under 1 month: no published limit, the 1 month–1 year limit is used)",
        ),
        ({"spo2": 92}, None, 40, "SpO2 92 % is at or below 92 %"),
        (
            {"systolic_bp": 139},
            {"systolic_bp": 200},
            40,
            "systolic 139 mmHg is 30.5 % below baseline 200 mmHg (limit: more than 30 %)",
        ),
        (
            {"systolic_bp": 109},
            {"systolic_bp": 130},
            40,
            "systolic 109 mmHg is 21 mmHg below baseline 130 mmHg (limit: more than 20 mmHg)",
        ),
        (
            {"spo2": 96},
            {"spo2": 99},
            40,
            "SpO2 96 % is 3 points below baseline 99 % (limit: at least 3 points)",
        ),
        (
            {"fev1_l": "2.000"},
            {"fev1_l": "2.500"},
            40,
            "FEV1 2 L is 20 % below baseline 2.5 L (limit: at least 20 %)",
        ),
        (
            {"peak_flow_l_min": 339},
            {"peak_flow_l_min": 400},
            40,
            "peak flow 339 L/min is 15.2 % below baseline 400 L/min (limit: at least 15 %)",
        ),
    ],
)
def test_each_message_names_the_value_and_the_limit(
    now: dict[str, Any], baseline: dict[str, Any] | None, age: Any, message: str
) -> None:
    result = run(reading(**now), reading(**baseline) if baseline else None, age=age)
    assert result.findings[0].message == message


def test_a_fall_just_over_its_limit_is_never_shown_as_the_limit() -> None:
    # 31 of 103 mmHg is 30.097 %: "30.0 %" would read as no alarm.
    result = run(reading(systolic_bp=72), reading(systolic_bp=103), age=40)
    (fall,) = [f for f in result.findings if f.condition == "sbp_fall_percent"]
    assert fall.message == (
        "systolic 72 mmHg is 30.09 % below baseline 103 mmHg (limit: more than 30 %)"
    )
    assert fall.value > fall.limit == 30


def test_a_finding_carries_value_limit_and_baseline() -> None:
    result = run(reading(systolic_bp=139, spo2=91), reading(systolic_bp=200), age=40)
    fall, low, news = result.findings  # in the order of RULES, then NEWS2
    assert (news.condition, news.value, news.limit) == ("news2_urgent_review", 3, 5)
    assert news.message == "NEWS2 at least 3 (SpO2 scores 3: urgent review)"
    assert (low.condition, low.value, low.limit, low.unit) == ("spo2_low", 91, 92, "%")
    assert low.summary == "SpO2 91 % (≤ 92 %)"
    assert (fall.condition, fall.limit, fall.unit) == ("sbp_fall_percent", 30, "%")
    assert fall.value == D("30.5")
    assert (fall.measured, fall.baseline) == (139, 200)
    assert fall.summary == "systolic 139 mmHg, 30.5 % below baseline 200 mmHg (> 30 %)"
    assert fall.words == "30.5 % below baseline 200 mmHg"
    assert low.words == "SpO2 91 %"
    assert result.clinical_findings() == (
        "systolic 139 mmHg, 30.5 % below baseline 200 mmHg",
        "SpO2 91 %",
        "NEWS2 at least 3",
    )


# --- what is not compared ---------------------------------------------------------------------


@pytest.mark.parametrize("marked", [UNABLE, REFUSED], ids=["unable", "refused"])
def test_values_not_measured_give_no_finding(marked: dict[str, str]) -> None:
    baseline = reading(systolic_bp=200, spo2=99, fev1_l="2.5", peak_flow_l_min=400)
    now = reading(systolic_bp=marked, spo2=marked, fev1_l=marked, peak_flow_l_min=marked)
    assert run(now, baseline).findings == ()


@pytest.mark.parametrize("marked", [UNABLE, REFUSED], ids=["unable", "refused"])
def test_falls_need_the_value_measured_at_baseline(marked: dict[str, str]) -> None:
    baseline = reading(systolic_bp=marked, spo2=marked, fev1_l=marked, peak_flow_l_min=marked)
    # Falls of 35 %, 5 points, 40 % and 40 % from a measured baseline; none here.
    now = reading(systolic_bp=130, spo2=94, fev1_l="1.5", peak_flow_l_min=240)
    assert run(now, baseline).findings == ()
    assert run(now, None).findings == ()
    # The absolute limits still apply.
    assert run(reading(systolic_bp=85, spo2=90), baseline).conditions == (
        "sbp_low_absolute",
        "spo2_low",
        "news2_urgent_review",  # 3 + 3 points
    )


def test_spirometry_falls_need_spirometry_at_baseline() -> None:
    now = reading(fev1_l="1.5", peak_flow_l_min=240)
    assert run(now, reading()).findings == ()
    assert run(now, reading(fev1_l="2.5")).conditions == ("fev1_fall_high",)
    assert run(now, reading(peak_flow_l_min=400)).conditions == ("pef_fall_high",)


def test_a_rise_is_not_a_fall() -> None:
    now = reading(systolic_bp=160, spo2=100, fev1_l="2.6", peak_flow_l_min=500)
    baseline = reading(systolic_bp=120, spo2=95, fev1_l="2", peak_flow_l_min=400)
    assert run(now, baseline).findings == ()


# --- one finding per measurement at its highest priority ---------------------------------------


@pytest.mark.parametrize(
    ("now", "baseline", "conditions"),
    [
        ({"fev1_l": "1.5"}, {"fev1_l": "2"}, ("fev1_fall_high",)),
        ({"peak_flow_l_min": 300}, {"peak_flow_l_min": 400}, ("pef_fall_high",)),
        ({"spo2": 91}, {"spo2": 99}, ("spo2_low",)),
        ({"systolic_bp": 85}, {"systolic_bp": 115}, ("sbp_low_absolute",)),
        ({"systolic_bp": 139}, {"systolic_bp": 200}, ("sbp_fall_percent",)),
        ({"systolic_bp": 80}, {"systolic_bp": 120}, ("sbp_low_absolute", "sbp_fall_percent")),
        # A MEDIUM finding of another measurement stays.
        ({"systolic_bp": 85, "spo2": 96}, {"systolic_bp": 95, "spo2": 99}, None),
    ],
)
def test_a_high_finding_supersedes_the_medium_one_of_the_same_measurement(
    now: dict[str, Any], baseline: dict[str, Any], conditions: tuple[str, ...] | None
) -> None:
    result = run(reading(**now), reading(**baseline))
    vital = tuple(c for c in result.conditions if not c.startswith("news2"))  # NEWS2: below
    if conditions is None:
        assert vital == ("sbp_low_absolute", "spo2_fall")
    else:
        assert vital == conditions


# --- symptoms -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(SYMPTOMS))
def test_each_symptom_gives_its_finding(code: str) -> None:
    grade = SYMPTOM_CLASSES[code].brown_grade
    result = run(reading(symptoms=[code]))
    (finding,) = result.findings
    assert finding.field == "symptoms"
    assert finding.value == code
    assert finding.limit is None
    assert finding.priority == ("HIGH" if grade >= 2 else "MEDIUM")
    if grade >= 2:
        assert finding.condition == "symptom_brown_2_3"
    elif SYMPTOM_CLASSES[code].system == "skin and mucosa":
        assert finding.condition == "symptom_skin"
    else:
        assert finding.condition == "symptom_mild_other"
    assert SYMPTOMS[code] in finding.message
    assert f"Brown grade {grade}" in finding.message
    assert result.meets_reaction_criteria  # any symptom opens a reaction


def test_skin_symptoms_are_medium_and_still_open_a_reaction() -> None:
    result = run(reading(symptoms=["urticaria", "flushing"]))
    assert result.conditions == ("symptom_skin", "symptom_skin")
    assert [f.value for f in result.findings] == ["flushing", "urticaria"]  # checklist order
    assert result.highest == "MEDIUM"
    assert result.meets_reaction_criteria
    assert result.findings[0].message == "symptom: Flushing (skin and mucosa, Brown grade 1)"


def test_an_unknown_symptom_code_is_refused() -> None:
    odd = dataclasses.replace(reading(), symptoms=frozenset({"hiccups"}))
    with pytest.raises(ValueError, match="hiccups"):
        run(odd)


# --- the evaluation as a whole ------------------------------------------------------------------


def test_nothing_found() -> None:
    result = run(reading(), reading())
    assert result.findings == ()
    assert not result.needs_confirmation
    assert result.highest is None
    assert not result.meets_reaction_criteria


def test_medium_vitals_need_confirmation_but_open_no_reaction() -> None:
    result = run(reading(systolic_bp=105, spo2=95), reading(systolic_bp=130, spo2=98))
    assert result.conditions == ("sbp_fall_mmhg", "spo2_fall")
    assert result.needs_confirmation
    assert result.highest == "MEDIUM"
    assert not result.meets_reaction_criteria


def test_high_first_then_rule_order_then_checklist_order() -> None:
    now = reading(
        systolic_bp=105,
        spo2=91,
        fev1_l="1.5",
        symptoms=["flushing", "wheeze", "back_pain", "nausea"],
    )
    baseline = reading(systolic_bp=130, spo2=97, fev1_l="1.8")
    result = run(now, baseline)
    assert result.conditions == (
        "spo2_low",
        "symptom_brown_2_3",  # wheeze
        "symptom_brown_2_3",  # nausea
        "sbp_fall_mmhg",
        "fev1_fall_medium",
        "news2_urgent_review",  # SpO2 91 scores 3
        "symptom_skin",  # flushing
        "symptom_mild_other",  # back pain
    )
    assert result.highest == "HIGH"
    assert result.meets_reaction_criteria


# --- thresholds -----------------------------------------------------------------------------------


def test_the_defaults_are_product_spec_section_4() -> None:
    assert dataclasses.asdict(Thresholds()) == {
        "sbp_low_mmhg": 90,
        "sbp_fall_percent": 30,
        "spo2_low_percent": 92,
        "fev1_fall_high_percent": 20,
        "pef_fall_high_percent": 20,
        "sbp_fall_mmhg": 20,
        "spo2_fall_points": 3,
        "fev1_fall_medium_percent": 15,
        "pef_fall_medium_percent": 15,
        "hr_high_per_min": 111,
        "hr_rise_per_min": 30,
        "rr_high_per_min": 21,
        "temperature_high_c": D("38.0"),
        "sbp_high_mmhg": 180,
        "dbp_high_mmhg": 110,
        "news2_medium_score": 5,
        "news2_high_score": 7,
        "suspicious_change_percent": 40,
        "child_sbp_low_infant_mmhg": 70,
        "child_sbp_low_base_mmhg": 70,
        "child_sbp_low_per_year_mmhg": 2,
        "child_sbp_low_adolescent_mmhg": 90,
    }
    assert all(isinstance(v, Decimal) for v in dataclasses.asdict(Thresholds()).values())


def test_every_threshold_has_its_spec_and_a_default_inside_it() -> None:
    assert tuple(THRESHOLD_SPECS) == Thresholds.names()
    for name, spec in THRESHOLD_SPECS.items():
        assert spec.low <= getattr(Thresholds(), name) <= spec.high, name
        assert spec.unit and spec.source
    assert {r.threshold for r in RULES} <= set(THRESHOLD_SPECS)


def test_overrides_make_a_new_object() -> None:
    default = Thresholds()
    changed = default.with_overrides(
        {
            "sbp_low_mmhg": 85,
            "spo2_low_percent": "91",
            "sbp_fall_percent": D("25"),
            "spo2_fall_points": 4.0,
        }
    )
    assert default == Thresholds()
    assert changed.sbp_low_mmhg == 85 and isinstance(changed.sbp_low_mmhg, Decimal)
    assert changed.spo2_low_percent == 91
    assert changed.spo2_fall_points == 4
    assert changed.overrides() == {
        "sbp_low_mmhg": 85,
        "sbp_fall_percent": 25,
        "spo2_low_percent": 91,
        "spo2_fall_points": 4,
    }
    assert default.overrides() == {}
    assert default.with_overrides({}) == default


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sbp_low": 85}, "unknown threshold 'sbp_low'; known: sbp_low_mmhg, "),
        ({"spo2_low_percent": 79}, "spo2_low_percent 79 % is outside the allowed range 80–98 %"),
        ({"spo2_low_percent": 99}, "spo2_low_percent 99 % is outside the allowed range 80–98 %"),
        ({"sbp_low_mmhg": -90}, "sbp_low_mmhg -90 mmHg is outside the allowed range 60–120"),
        ({"sbp_low_mmhg": True}, "threshold sbp_low_mmhg must be a number in mmHg, got True"),
        ({"sbp_low_mmhg": "ninety"}, "must be a number in mmHg, got 'ninety'"),
        ({"sbp_low_mmhg": None}, "must be a number in mmHg, got None"),
        ({"sbp_low_mmhg": [90]}, "must be a number in mmHg, got list"),
        ({"sbp_low_mmhg": "NaN"}, "must be a number in mmHg, got 'NaN'"),
        ({"sbp_low_mmhg": float("inf")}, "must be a number in mmHg, got inf"),
        (
            {"fev1_fall_medium_percent": 20},
            "fev1_fall_medium_percent 20 % must be below fev1_fall_high_percent 20 %",
        ),
        (
            {"pef_fall_high_percent": 10},
            "pef_fall_medium_percent 15 % must be below pef_fall_high_percent 10 %",
        ),
        (
            {"news2_medium_score": 7},
            "news2_medium_score 7 points must be below news2_high_score 7 points",
        ),
    ],
)
def test_bad_overrides_are_refused_clearly(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Thresholds().with_overrides(overrides)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValueError) as refused:
        Thresholds().with_overrides({"x": 1, "spo2_low_percent": 50, "sbp_fall_mmhg": "?"})
    text = str(refused.value)
    assert "unknown threshold 'x'" in text
    assert "spo2_low_percent 50 %" in text
    assert "sbp_fall_mmhg must be a number" in text


def test_the_range_edges_are_allowed() -> None:
    for name, spec in THRESHOLD_SPECS.items():
        for edge in (spec.low, spec.high):
            try:
                assert getattr(Thresholds().with_overrides({name: edge}), name) == edge
            except ValueError as refused:
                # Only the ordering of a MEDIUM and its HIGH fall may stand in the way.
                assert "must be below" in str(refused)


def test_a_bad_direct_construction_is_refused_too() -> None:
    with pytest.raises(ValueError, match="spo2_low_percent 100 %"):
        Thresholds(spo2_low_percent=D(100))


DEFAULT_LINES = (
    "HIGH: systolic below 90 mmHg (adults, 18 years and over)",
    "HIGH: systolic below 70 mmHg under 1 year (1 month–1 year; also used under 1 month, "
    "where none is published)",
    "HIGH: systolic below (70 + 2 × age in years) mmHg at 1–10 years (completed years)",
    "HIGH: systolic below 90 mmHg at 11–17 years",
    "HIGH: systolic more than 30 % below baseline",
    "HIGH: SpO2 at or below 92 %",
    "HIGH: FEV1 20 % or more below baseline",
    "HIGH: peak flow 20 % or more below baseline",
    "HIGH: any symptom of Brown grade 2–3 (respiratory, cardiovascular, gastrointestinal, "
    "neurological)",
    "HIGH: NEWS2 7 or more (adults, 16 years and over)",
    "MEDIUM: systolic more than 20 mmHg below baseline",
    "MEDIUM: SpO2 3 points or more below baseline",
    "MEDIUM: FEV1 15 % or more below baseline",
    "MEDIUM: peak flow 15 % or more below baseline",
    "MEDIUM: heart rate at or above 111 /min (adults, 18 years and over)",
    "MEDIUM: heart rate above 160 /min at under 1 year (APLS)",
    "MEDIUM: heart rate above 150 /min at 1–2 years (APLS)",
    "MEDIUM: heart rate above 140 /min at 2–5 years (APLS)",
    "MEDIUM: heart rate above 120 /min at 5–12 years (APLS)",
    "MEDIUM: heart rate above 100 /min at 12–17 years (APLS)",
    "MEDIUM: heart rate 30 /min or more above baseline",
    "MEDIUM: respiratory rate at or above 21 /min (adults, 18 years and over)",
    "MEDIUM: respiratory rate above 40 /min at under 1 year (APLS)",
    "MEDIUM: respiratory rate above 35 /min at 1–2 years (APLS)",
    "MEDIUM: respiratory rate above 30 /min at 2–5 years (APLS)",
    "MEDIUM: respiratory rate above 25 /min at 5–12 years (APLS)",
    "MEDIUM: respiratory rate above 20 /min at 12–17 years (APLS)",
    "MEDIUM: temperature at or above 38 °C",
    "MEDIUM: systolic at or above 180 mmHg (adults, 18 years and over)",
    "MEDIUM: diastolic at or above 110 mmHg (adults, 18 years and over)",
    "MEDIUM: skin or mucosal symptoms only (Brown grade 1)",
    "MEDIUM: back pain, or fever, chills or rigors (Brown grade 1)",
    "MEDIUM: NEWS2 5 or more, or any single parameter scoring 3 (adults, 16 years and over)",
    "CONFIRM: any value more than 40 % from baseline needs a second tap",
)


def test_describe_lists_every_threshold_in_force() -> None:
    assert Thresholds().describe() == DEFAULT_LINES


def test_describe_marks_physician_overrides() -> None:
    lines = (
        Thresholds()
        .with_overrides({"spo2_low_percent": 90, "child_sbp_low_per_year_mmhg": 3})
        .describe()
    )
    assert "HIGH: SpO2 at or below 90 % (physician override; default 92 %)" in lines
    assert (
        "HIGH: systolic below (70 + 3 × age in years) mmHg at 1–10 years (completed years) "
        "(physician override; default 2 mmHg)"
    ) in lines
    assert len(lines) == len(DEFAULT_LINES)
    # A physician's heart-rate limit replaces the APLS bands of children: one line says so.
    moved = Thresholds().with_overrides({"hr_high_per_min": 120}).describe()
    assert (
        "MEDIUM: heart rate at or above 120 /min, at any age (physician override; default 111 /min)"
    ) in moved
    assert not any("heart rate above" in line for line in moved)


@pytest.mark.parametrize(
    ("age", "line"),
    [
        (40, "HIGH: systolic below 90 mmHg (adults)"),
        (5, "HIGH: systolic below 80 mmHg (age-specific limit at 1–10 years: 70 + 2 × 5 years)"),
        (D("0.5"), "HIGH: systolic below 70 mmHg (age-specific limit at 1 month–1 year)"),
        (14, "HIGH: systolic below 90 mmHg (age-specific limit at 11–17 years)"),
    ],
)
def test_describe_for_one_patient_gives_the_one_systolic_limit(age: Any, line: str) -> None:
    lines = Thresholds().describe(age_years=age)
    assert lines[0] == line
    assert not any("years)" in x and "systolic below" in x for x in lines[1:])


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (
            40,
            [
                "MEDIUM: heart rate at or above 111 /min (adults)",
                "MEDIUM: respiratory rate at or above 21 /min (adults)",
                "MEDIUM: systolic at or above 180 mmHg (adults)",
                "MEDIUM: NEWS2 5 or more, or any single parameter scoring 3",
            ],
        ),
        (
            D("0.5"),
            [
                "MEDIUM: heart rate above 160 /min (APLS upper limit at under 1 year)",
                "MEDIUM: respiratory rate above 40 /min (APLS upper limit at under 1 year)",
            ],
        ),
        (
            17,
            [
                "MEDIUM: heart rate above 100 /min (APLS upper limit at 12–17 years)",
                "MEDIUM: NEWS2 5 or more, or any single parameter scoring 3",
            ],
        ),
    ],
)
def test_describe_for_one_patient_gives_the_rate_limits_of_the_age(
    age: Any, expected: list[str]
) -> None:
    lines = Thresholds().describe(age_years=age)
    for line in expected:
        assert line in lines
    if age < 16:
        assert not any("NEWS2" in line for line in lines)
    if age < 18:
        assert not any("(adults" in line for line in lines)


def test_describe_for_one_patient_marks_the_override_in_force() -> None:
    changed = Thresholds().with_overrides({"sbp_low_mmhg": 95})
    assert changed.describe(age_years=30)[0] == (
        "HIGH: systolic below 95 mmHg (adults) (physician override; default 90 mmHg)"
    )
    assert changed.describe(age_years=12)[0] == (
        "HIGH: systolic below 90 mmHg (age-specific limit at 11–17 years)"
    )


# --- properties -----------------------------------------------------------------------------------


@given(readings(), st.none() | readings(), thresholds(), AGES)
def test_evaluation_never_fails_and_lists_high_first(
    now: VitalsReading, baseline: VitalsReading | None, limits: Thresholds, age: Any
) -> None:
    result = evaluate(now, baseline, limits, age_years=age)
    ranks = [PRIORITIES.index(f.priority) for f in result.findings]
    assert ranks == sorted(ranks)
    assert result.needs_confirmation == bool(result.findings or result.suspicious)
    assert result.highest == (result.findings[0].priority if result.findings else None)
    for finding in result.findings:
        assert finding.message and "\n" not in finding.message
        if finding.field in ("symptoms", "news2"):
            continue
        assert finding.priority == PRIORITY_OF[finding.condition]
        rule = next(r for r in RULES if r.condition == finding.condition)
        assert isinstance(finding.value, Decimal) and finding.limit is not None
        value, limit = finding.value, finding.limit
        if rule.ages == "rate_band" and finding.measured is not None and finding.baseline is None:
            # children's bands compare "above"; adults "at or above": either way past the limit
            assert value >= limit, finding
            continue
        comparison = COMPARISONS[rule.comparison]
        if comparison.relative is None and comparison.direction == "low":
            met = value <= limit if comparison.inclusive else value < limit
        else:
            met = value >= limit if comparison.inclusive else value > limit
        assert met, finding
    symptoms = [f.value for f in result.findings if f.field == "symptoms"]
    assert sorted(symptoms) == sorted(now.symptoms)
    assert result.meets_reaction_criteria == (
        bool(now.symptoms) or any(f.priority == "HIGH" for f in result.findings)
    )


@given(readings(), thresholds(), AGES)
def test_a_reading_equal_to_its_baseline_gives_no_change_finding(
    now: VitalsReading, limits: Thresholds, age: Any
) -> None:
    result = evaluate(now, now, limits, age_years=age)
    assert all(f.baseline is None for f in result.findings)
    assert result.suspicious == ()
    assert result.findings == evaluate(now, None, limits, age_years=age).findings


# --- a value far from baseline: the second tap ---------------------------------------------------


@pytest.mark.parametrize(
    ("now", "baseline", "suspicious"),
    [
        ({"systolic_bp": 214}, {"systolic_bp": 124}, True),  # 72.6 % above: typed for 124?
        ({"systolic_bp": 173}, {"systolic_bp": 124}, False),  # 39.5 %
        ({"systolic_bp": 174}, {"systolic_bp": 124}, True),  # 40.3 %
        ({"systolic_bp": 74}, {"systolic_bp": 124}, True),  # 40.3 % below
        ({"heart_rate": 112}, {"heart_rate": 80}, False),  # exactly 40 %: not more than
        ({"heart_rate": 113}, {"heart_rate": 80}, True),
        ({"respiratory_rate": 9}, {"respiratory_rate": 16}, True),
        ({"fev1_l": "1.1"}, {"fev1_l": "2"}, True),
    ],
)
def test_a_value_more_than_40_percent_from_baseline_needs_a_second_tap(
    now: dict[str, Any], baseline: dict[str, Any], suspicious: bool
) -> None:
    result = run(reading(**now), reading(**baseline))
    assert bool(result.suspicious) == suspicious
    if suspicious:
        assert result.needs_confirmation


def test_the_second_tap_asks_in_words() -> None:
    result = run(reading(systolic_bp=214), reading(systolic_bp=124))
    (doubt,) = result.suspicious
    assert doubt.message == "is systolic 214 mmHg right? It is 72 % above the baseline 124 mmHg"
    assert (doubt.field, doubt.value, doubt.baseline) == ("systolic_bp", 214, 124)
    # a physician may widen it; no baseline, no doubt
    wider = run(
        reading(systolic_bp=214),
        reading(systolic_bp=124),
        overrides={"suspicious_change_percent": 80},
    )
    assert wider.suspicious == ()
    assert run(reading(systolic_bp=214)).suspicious == ()


def test_within_limits_means_no_medium_or_high_finding() -> None:
    assert run(reading(), reading()).within_limits
    assert not run(reading(heart_rate=115)).within_limits  # MEDIUM only
    assert not run(reading(symptoms=["flushing"])).within_limits
    assert not run(reading(spo2=90)).within_limits


def test_every_threshold_has_a_label_for_the_screen() -> None:
    from app.vitals.thresholds import THRESHOLD_LABELS

    assert set(THRESHOLD_LABELS) == set(THRESHOLD_SPECS)
