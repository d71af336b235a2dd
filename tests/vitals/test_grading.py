"""Reaction grading: every checklist symptom has its system and Brown grade, each Brown grade
follows from its defining findings and says why, mixed reactions take the highest grade, and the
CTCAE suggestion follows our documented mapping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.vitals.grading import (
    BROWN_LIMITS,
    SYMPTOM_CLASSES,
    GradeSuggestion,
    suggest_grade,
)
from app.vitals.validation import SYMPTOMS, VitalsReading
from tests.vitals.readings import AGES, UNABLE, reading, readings

D = Decimal

# The clinician-facing table, written out so that a review reads it here: code -> (system, grade).
EXPECTED_CLASSES: dict[str, tuple[str, int]] = {
    "flushing": ("skin and mucosa", 1),
    "pruritus": ("skin and mucosa", 1),
    "urticaria": ("skin and mucosa", 1),
    "angioedema": ("skin and mucosa", 1),
    "sneezing": ("skin and mucosa", 1),
    "rhinorrhoea": ("skin and mucosa", 1),
    "red_watery_eyes": ("skin and mucosa", 1),
    "throat_tightness": ("respiratory", 2),
    "wheeze": ("respiratory", 2),
    "cough": ("respiratory", 2),
    "dyspnoea": ("respiratory", 2),
    "chest_tightness": ("respiratory", 2),
    "back_pain": ("musculoskeletal", 1),
    "abdominal_pain": ("gastrointestinal", 2),
    "nausea": ("gastrointestinal", 2),
    "vomiting": ("gastrointestinal", 2),
    "diarrhoea": ("gastrointestinal", 2),
    "dizziness": ("cardiovascular", 2),
    "diaphoresis": ("cardiovascular", 2),
    "hypotension_collapse": ("cardiovascular", 3),
    "loss_of_consciousness": ("neurological", 3),
    "cyanosis": ("respiratory", 3),
    "confusion": ("neurological", 3),
    "incontinence": ("neurological", 3),
    "sense_of_doom": ("neurological", 2),
    "fever_chills": ("constitutional", 1),
}


def grade(
    symptoms: set[str] | frozenset[str] = frozenset(),
    now: VitalsReading | None = None,
    baseline: VitalsReading | None = None,
    **kwargs: Any,
) -> GradeSuggestion:
    return suggest_grade(frozenset(symptoms), [now] if now else [], baseline, **kwargs)


# --- the symptom table ----------------------------------------------------------------------------


def test_every_checklist_symptom_is_mapped_and_nothing_else() -> None:
    assert set(SYMPTOM_CLASSES) == set(SYMPTOMS)
    assert list(SYMPTOM_CLASSES) == list(SYMPTOMS)  # checklist order, easy to review


def test_the_mapping_is_the_reviewed_table() -> None:
    assert {
        code: (kind.system, kind.brown_grade) for code, kind in SYMPTOM_CLASSES.items()
    } == EXPECTED_CLASSES
    assert set(EXPECTED_CLASSES) == set(SYMPTOMS)


@pytest.mark.parametrize("code", list(SYMPTOMS))
def test_each_symptom_alone_gives_its_brown_grade_and_says_why(code: str) -> None:
    system, expected = EXPECTED_CLASSES[code]
    result = grade({code})
    assert result.brown_grade == expected
    (reason,) = result.reasons
    assert reason.startswith(f"{SYMPTOMS[code]}: ")
    if expected < 3:
        assert system in reason
    assert reason.endswith(f"→ Brown grade {expected}")


# --- Brown grade 1: skin and mucosa only ----------------------------------------------------------


def test_grade_1_from_skin_symptoms() -> None:
    result = grade({"urticaria", "flushing", "pruritus"})
    assert result.brown_grade == 1
    assert result.reasons == (
        "Flushing: skin and mucosa → Brown grade 1",
        "Itching (pruritus): skin and mucosa → Brown grade 1",
        "Hives (urticaria): skin and mucosa → Brown grade 1",
    )


# --- Brown grade 2: respiratory, cardiovascular or gastrointestinal ------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("dyspnoea", "Shortness of breath (dyspnoea): respiratory involvement → Brown grade 2"),
        ("throat_tightness", "Throat tightness, voice change or stridor: respiratory involvement"),
        ("wheeze", "Wheeze: respiratory involvement → Brown grade 2"),
        ("nausea", "Nausea: gastrointestinal involvement → Brown grade 2"),
        ("vomiting", "Vomiting: gastrointestinal involvement → Brown grade 2"),
        ("dizziness", "Dizziness or feeling faint (presyncope): cardiovascular involvement"),
        ("diaphoresis", "Sweating (diaphoresis): cardiovascular involvement → Brown grade 2"),
        ("chest_tightness", "Chest tightness: respiratory involvement → Brown grade 2"),
        ("abdominal_pain", "Pelvic or abdominal pain: gastrointestinal involvement"),
    ],
)
def test_grade_2_from_each_defining_symptom(code: str, reason: str) -> None:
    result = grade({code})
    assert result.brown_grade == 2
    assert result.reasons[0].startswith(reason)


def test_grade_2_from_a_high_fev1_or_peak_flow_fall() -> None:
    result = grade(now=reading(fev1_l="2.0"), baseline=reading(fev1_l="2.5"))
    assert result.brown_grade == 2
    assert result.reasons == (
        "FEV1 2 L, 20 % below baseline 2.5 L (≥ 20 %): bronchospasm, respiratory involvement "
        "→ Brown grade 2",
    )
    result = grade(now=reading(peak_flow_l_min=319), baseline=reading(peak_flow_l_min=400))
    assert result.brown_grade == 2
    assert "peak flow 319 L/min, 20.2 % below baseline 400 L/min (≥ 20 %)" in result.reasons[0]


# --- Brown grade 3: hypoxia, hypotension, neurological compromise --------------------------------


def test_grade_3_from_hypoxia() -> None:
    result = grade(now=reading(spo2=91))
    assert result.brown_grade == 3
    assert result.reasons == ("SpO2 91 % (≤ 92 %): hypoxia → Brown grade 3",)
    assert grade(now=reading(spo2=92)).brown_grade == 3
    assert grade(now=reading(spo2=93)).brown_grade is None


def test_grade_3_from_hypotension_in_an_adult() -> None:
    result = grade(now=reading(systolic_bp=89), age_years=45)
    assert result.brown_grade == 3
    assert result.reasons == ("systolic 89 mmHg (< 90 mmHg): hypotension → Brown grade 3",)
    assert grade(now=reading(systolic_bp=90), age_years=45).brown_grade is None
    assert grade(now=reading(systolic_bp=89)).brown_grade == 3  # age unknown: adult limit


@pytest.mark.parametrize(
    ("age", "low", "not_low"),
    [(D("0.02"), 69, 70), (D("0.5"), 69, 70), (1, 71, 72), (5, 79, 80), (10, 89, 90), (15, 89, 90)],
)
def test_grade_3_from_hypotension_in_a_child(age: Decimal | int, low: int, not_low: int) -> None:
    result = grade(now=reading(systolic_bp=low), age_years=age)
    assert result.brown_grade == 3
    assert result.reasons[0].startswith(f"systolic {low} mmHg (< {not_low} mmHg, ")
    assert "hypotension → Brown grade 3" in result.reasons[0]
    assert grade(now=reading(systolic_bp=not_low), age_years=age).brown_grade is None


def test_a_child_reason_names_the_age_band() -> None:
    result = grade(now=reading(systolic_bp=79), age_years=5)
    assert result.reasons == (
        "systolic 79 mmHg (< 80 mmHg, age-specific limit at 1–10 years: 70 + 2 × 5 years): "
        "hypotension → Brown grade 3",
    )


def test_grade_3_from_a_fall_of_more_than_30_percent() -> None:
    result = grade(now=reading(systolic_bp=139), baseline=reading(systolic_bp=200))
    assert result.brown_grade == 3
    assert result.reasons == (
        "systolic 139 mmHg, 30.5 % below baseline 200 mmHg (> 30 %): hypotension → Brown grade 3",
    )
    exactly_30 = grade(now=reading(systolic_bp=140), baseline=reading(systolic_bp=200))
    assert exactly_30.brown_grade is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("loss_of_consciousness", "Loss of consciousness: neurological compromise → Brown grade 3"),
        (
            "hypotension_collapse",
            "Low blood pressure or collapse: hypotension or collapse → Brown grade 3",
        ),
    ],
)
def test_grade_3_from_collapse_or_loss_of_consciousness(code: str, reason: str) -> None:
    result = grade({code})
    assert result.brown_grade == 3
    assert result.reasons == (reason,)


def test_grading_uses_browns_limits_whatever_the_alarm_overrides() -> None:
    assert BROWN_LIMITS.spo2_low_percent == 92
    assert BROWN_LIMITS.sbp_low_mmhg == 90
    assert BROWN_LIMITS.sbp_fall_percent == 30
    assert BROWN_LIMITS.sbp_low_for(5) == (80, "age-specific limit at 1–10 years: 70 + 2 × 5 years")


def test_values_not_measured_do_not_grade() -> None:
    now = reading(systolic_bp=UNABLE, spo2=UNABLE)
    assert grade(now=now, baseline=reading(systolic_bp=200)).brown_grade is None


def test_medium_alarms_alone_do_not_grade() -> None:
    now = reading(systolic_bp=109, spo2=96, fev1_l="1.7")
    baseline = reading(systolic_bp=130, spo2=99, fev1_l="2.0")
    result = grade(now=now, baseline=baseline)
    assert (result.brown_grade, result.ctcae_grade, result.reasons) == (None, None, ())


# --- mixed reactions ------------------------------------------------------------------------------


def test_mixed_takes_the_highest_grade_and_lists_every_finding_highest_first() -> None:
    result = grade({"flushing", "wheeze"}, now=reading(spo2=91))
    assert result.brown_grade == 3
    assert result.reasons == (
        "SpO2 91 % (≤ 92 %): hypoxia → Brown grade 3",
        "Wheeze: respiratory involvement → Brown grade 2",
        "Flushing: skin and mucosa → Brown grade 1",
    )


def test_skin_with_gastrointestinal_is_grade_2() -> None:
    result = grade({"urticaria", "nausea"})
    assert result.brown_grade == 2
    assert result.reasons == (
        "Nausea: gastrointestinal involvement → Brown grade 2",
        "Hives (urticaria): skin and mucosa → Brown grade 1",
    )


def test_the_readings_symptoms_count_too() -> None:
    result = grade(set(), now=reading(symptoms=["wheeze"]))
    assert result.brown_grade == 2
    both = grade({"flushing"}, now=reading(symptoms=["flushing", "vomiting"]))
    assert both.brown_grade == 2
    assert len(both.reasons) == 2  # flushing once


def test_nothing_to_grade() -> None:
    assert grade() == GradeSuggestion(None, None, (), None)
    assert grade(now=reading(), baseline=reading()) == GradeSuggestion(None, None, (), None)


def test_an_unknown_symptom_code_is_refused() -> None:
    with pytest.raises(ValueError, match="hiccups"):
        grade({"hiccups"})


# --- CTCAE suggestion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symptoms", "now", "interrupted", "ctcae", "why"),
    [
        ({"flushing"}, {}, True, 2, "Brown grade 1, the infusion was interrupted → CTCAE grade 2"),
        ({"wheeze"}, {}, True, 2, "Brown grade 2, the infusion was interrupted → CTCAE grade 2"),
        (
            {"flushing"},
            {},
            False,
            1,
            "Brown grade 1, the infusion was not interrupted → CTCAE grade 1",
        ),
        (
            {"nausea"},
            {},
            False,
            1,
            "Brown grade 2, the infusion was not interrupted → CTCAE grade 1",
        ),
        (set(), {"spo2": 91}, True, 3, "Brown grade 3 → CTCAE grade 3"),
        ({"loss_of_consciousness"}, {}, False, 3, "Brown grade 3 → CTCAE grade 3"),
        (set(), {"systolic_bp": 85}, True, 3, "Brown grade 3 → CTCAE grade 3"),
        (
            set(),
            {"systolic_bp": 85, "spo2": 90},
            True,
            4,
            "hypotension and hypoxia together: life-threatening → CTCAE grade 4",
        ),
        (
            {"hypotension_collapse"},
            {"spo2": 90},
            False,
            4,
            "hypotension and hypoxia together: life-threatening → CTCAE grade 4",
        ),
    ],
)
def test_ctcae_follows_our_mapping(
    symptoms: set[str], now: dict[str, Any], interrupted: bool, ctcae: int, why: str
) -> None:
    result = grade(symptoms, now=reading(**now), infusion_interrupted=interrupted, age_years=50)
    assert result.ctcae_grade == ctcae
    assert result.ctcae_reason == f"{why} (suggested; confirm clinically)"


# --- properties -----------------------------------------------------------------------------------


@given(
    st.frozensets(st.sampled_from(list(SYMPTOMS)), max_size=5),
    st.none() | readings(),
    st.none() | readings(),
    AGES,
    st.booleans(),
)
def test_grading_never_fails_and_agrees_with_its_reasons(
    symptoms: frozenset[str],
    now: VitalsReading | None,
    baseline: VitalsReading | None,
    age: Any,
    interrupted: bool,
) -> None:
    result = suggest_grade(
        symptoms, [now] if now else [], baseline, age_years=age, infusion_interrupted=interrupted
    )
    grades = [int(r.rsplit("Brown grade ", 1)[1]) for r in result.reasons]
    assert grades == sorted(grades, reverse=True)
    if result.brown_grade is None:
        assert result.ctcae_grade is None and result.reasons == () and not symptoms
        return
    assert result.brown_grade == grades[0]
    assert result.ctcae_grade in (1, 2, 3, 4)
    assert result.ctcae_grade >= (3 if result.brown_grade == 3 else 1)
    if result.ctcae_grade == 4:
        assert result.brown_grade == 3
    if now is not None and now.status_of("spo2") == "measured":
        assert now.spo2 is not None
        if now.spo2 <= 92:
            assert result.brown_grade == 3


# --- the reaction's window: the worst findings from onset to resolution -------------------------


def test_the_suggestion_never_gets_milder_as_the_patient_recovers() -> None:
    baseline = reading(systolic_bp=124, spo2=98)
    reacting = reading(systolic_bp=85, spo2=89)
    recovered = reading(systolic_bp=118, spo2=97)
    first = suggest_grade(frozenset(), [reacting], baseline)
    later = suggest_grade(frozenset(), [reacting, recovered, recovered], baseline)
    assert (first.brown_grade, first.ctcae_grade) == (3, 4)
    assert later == first
    # the recovered sets alone would suggest nothing
    assert suggest_grade(frozenset(), [recovered], baseline).brown_grade is None


def test_each_sign_is_given_once_with_its_most_extreme_reading() -> None:
    baseline = reading(systolic_bp=124)
    sets = [reading(systolic_bp=88), reading(systolic_bp=80), reading(systolic_bp=86)]
    suggestion = suggest_grade(frozenset(), sets, baseline)
    assert suggestion.reasons == (
        "systolic 80 mmHg (< 90 mmHg): hypotension → Brown grade 3",
        "systolic 80 mmHg, 35.4 % below baseline 124 mmHg (> 30 %): hypotension → Brown grade 3",
    )


def test_symptoms_of_every_set_in_the_window_count() -> None:
    sets = [reading(symptoms=["flushing"]), reading(symptoms=["wheeze"])]
    suggestion = suggest_grade(frozenset({"urticaria"}), sets, None)
    assert suggestion.brown_grade == 2
    assert [r.split(":")[0] for r in suggestion.reasons] == [
        "Wheeze",
        "Flushing",
        "Hives (urticaria)",
    ]


@pytest.mark.parametrize("code", ["cyanosis", "confusion", "incontinence"])
def test_brown_grade_3_signs_of_the_checklist(code: str) -> None:
    assert grade({code}).brown_grade == 3
