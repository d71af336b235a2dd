"""Vitals validation by example: what is accepted, and the exact words of each refusal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.vitals.validation import (
    CORE_FIELDS,
    POSSIBLE_RANGES,
    SYMPTOMS,
    VitalsReading,
    VitalsRefusal,
    validate_vitals,
)

BASE: dict[str, Any] = {
    "systolic_bp": 118,
    "diastolic_bp": 76,
    "heart_rate": 84,
    "spo2": 97,
    "respiratory_rate": 16,
}


def accepted(raw: dict[str, Any], spirometry_required: bool = False) -> VitalsReading:
    result = validate_vitals(raw, spirometry_required=spirometry_required)
    assert isinstance(result, VitalsReading), result
    return result


def refused(raw: object, spirometry_required: bool = False) -> VitalsRefusal:
    result = validate_vitals(raw, spirometry_required=spirometry_required)  # type: ignore[arg-type]
    assert isinstance(result, VitalsRefusal), result
    return result


# --- the data -----------------------------------------------------------------------------------


def test_possible_ranges_are_data() -> None:
    assert POSSIBLE_RANGES["systolic_bp"] == (Decimal(30), Decimal(300), "mmHg")
    assert POSSIBLE_RANGES["diastolic_bp"] == (Decimal(10), Decimal(200), "mmHg")
    assert POSSIBLE_RANGES["heart_rate"] == (Decimal(20), Decimal(300), "/min")
    assert POSSIBLE_RANGES["spo2"] == (Decimal(40), Decimal(100), "%")
    assert POSSIBLE_RANGES["respiratory_rate"] == (Decimal(2), Decimal(80), "/min")
    assert POSSIBLE_RANGES["temperature_c"] == (Decimal(25), Decimal(45), "°C")
    assert POSSIBLE_RANGES["fev1_l"] == (Decimal("0.1"), Decimal(8), "L")
    assert POSSIBLE_RANGES["peak_flow_l_min"] == (Decimal(30), Decimal(900), "L/min")
    with pytest.raises(TypeError):
        POSSIBLE_RANGES["spo2"] = (Decimal(0), Decimal(100), "%")  # type: ignore[index]


def test_the_symptom_checklist_of_the_clinical_reference() -> None:
    assert list(SYMPTOMS) == [
        "flushing",
        "pruritus",
        "urticaria",
        "angioedema",
        "sneezing",
        "rhinorrhoea",
        "red_watery_eyes",
        "throat_tightness",
        "wheeze",
        "cough",
        "dyspnoea",
        "chest_tightness",
        "back_pain",
        "abdominal_pain",
        "nausea",
        "vomiting",
        "diarrhoea",
        "dizziness",
        "diaphoresis",
        "hypotension_collapse",
        "loss_of_consciousness",
        "cyanosis",
        "confusion",
        "incontinence",
        "sense_of_doom",
        "fever_chills",
    ]
    assert all(label.strip() and label[0].isupper() for label in SYMPTOMS.values())


# --- accepted -----------------------------------------------------------------------------------


def test_a_complete_set_is_cleaned_into_decimals() -> None:
    reading = accepted(
        {
            "systolic_bp": "118",
            "diastolic_bp": 76.0,
            "heart_rate": Decimal("84"),
            "spo2": " 97 ",
            "respiratory_rate": {"status": "measured", "value": 16},
            "temperature_c": 36.6,
            "fev1_l": "2.45",
            "peak_flow_l_min": 410,
            "symptoms": ["flushing", "pruritus", "flushing"],
            "note": "  settled, reading a book  ",
        },
        spirometry_required=True,
    )
    assert reading.systolic_bp == Decimal(118)
    assert reading.diastolic_bp == Decimal(76)
    assert reading.spo2 == Decimal(97)
    assert str(reading.temperature_c) == "36.6"  # not 36.600000000000001421…
    assert reading.fev1_l == Decimal("2.45")
    assert reading.peak_flow_l_min == Decimal(410)
    assert all(isinstance(reading.value(name), Decimal) for name in POSSIBLE_RANGES)
    assert set(reading.status.values()) == {"measured"}
    assert reading.reasons == {}
    assert reading.symptoms == frozenset({"flushing", "pruritus"})
    assert reading.symptom_labels() == ["Flushing", "Itching (pruritus)"]
    assert reading.note == "settled, reading a book"


def test_optional_fields_may_be_left_out_when_spirometry_is_not_required() -> None:
    reading = accepted({**BASE, "temperature_c": None, "fev1_l": "", "note": None})
    assert reading.temperature_c is None and reading.fev1_l is None
    assert reading.status_of("temperature_c") is None
    assert reading.status_of("systolic_bp") == "measured"
    assert reading.symptoms == frozenset() and reading.note == ""


def test_a_field_may_be_marked_unable_to_obtain_or_refused_with_a_reason() -> None:
    reading = accepted(
        {
            **BASE,
            "systolic_bp": {"status": "unable_to_obtain", "reason": " arm in a cast "},
            "spo2": {"status": "refused", "reason": "patient declined the clip", "value": None},
            "peak_flow_l_min": {"status": "refused", "reason": "too short of breath"},
        },
        spirometry_required=True,
    )
    assert reading.systolic_bp is None and reading.spo2 is None
    assert reading.status_of("systolic_bp") == "unable_to_obtain"
    assert reading.status_of("spo2") == "refused"
    assert reading.reasons == {
        "systolic_bp": "arm in a cast",
        "spo2": "patient declined the clip",
        "peak_flow_l_min": "too short of breath",
    }
    # Without a measured systolic there is nothing to compare the diastolic with.
    assert reading.diastolic_bp == Decimal(76)


def test_as_dict_is_ready_for_json_and_the_audit_log() -> None:
    reading = accepted(
        {
            **BASE,
            "heart_rate": {"status": "unable_to_obtain", "reason": "monitor off"},
            "symptoms": {"wheeze", "flushing"},
        }
    )
    assert reading.as_dict() == {
        "systolic_bp": {"status": "measured", "value": Decimal(118)},
        "diastolic_bp": {"status": "measured", "value": Decimal(76)},
        "heart_rate": {"status": "unable_to_obtain", "reason": "monitor off"},
        "spo2": {"status": "measured", "value": Decimal(97)},
        "respiratory_rate": {"status": "measured", "value": Decimal(16)},
        "symptoms": ["flushing", "wheeze"],  # checklist order
        "note": "",
    }


def test_a_reading_is_immutable_and_hashable() -> None:
    reading = accepted(BASE)
    with pytest.raises(AttributeError):
        reading.spo2 = Decimal(50)  # type: ignore[misc]
    with pytest.raises(TypeError):
        reading.status["spo2"] = "refused"  # type: ignore[index]
    assert hash(reading) == hash(accepted(dict(BASE)))
    assert reading == accepted(dict(BASE))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("systolic_bp", 30),
        ("systolic_bp", 300),
        ("heart_rate", "20"),
        ("spo2", 100),
        ("respiratory_rate", 2),
        ("temperature_c", "25.00"),
        ("temperature_c", 45),
        ("fev1_l", "0.1"),
        ("fev1_l", 8),
        ("fev1_l", "3.125"),
        ("peak_flow_l_min", 900),
        ("heart_rate", "1.2e2"),
        ("heart_rate", "72.0"),
    ],
)
def test_the_limits_themselves_are_possible(field: str, value: object) -> None:
    reading = accepted({**BASE, "diastolic_bp": 10, field: value})
    assert reading.value(field) == Decimal(str(value))


# --- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("systolic_bp", 400, "systolic_bp 400 mmHg is outside the possible range 30–300 mmHg"),
        ("systolic_bp", 29, "systolic_bp 29 mmHg is outside the possible range 30–300 mmHg"),
        ("diastolic_bp", 5, "diastolic_bp 5 mmHg is outside the possible range 10–200 mmHg"),
        ("heart_rate", 301, "heart_rate 301 /min is outside the possible range 20–300 /min"),
        ("spo2", 101, "spo2 101 % is outside the possible range 40–100 %"),
        ("spo2", "39.0", "spo2 39.0 % is outside the possible range 40–100 %"),
        ("respiratory_rate", 0, "respiratory_rate 0 /min is outside the possible range 2–80 /min"),
        ("temperature_c", 98.6, "temperature_c 98.6 °C is outside the possible range 25–45 °C"),
        ("fev1_l", 0.05, "fev1_l 0.05 L is outside the possible range 0.1–8 L"),
        ("fev1_l", 2500, "fev1_l 2500 L is outside the possible range 0.1–8 L"),
        (
            "peak_flow_l_min",
            1000,
            "peak_flow_l_min 1000 L/min is outside the possible range 30–900 L/min",
        ),
        ("heart_rate", "-72", "heart_rate -72 /min is outside the possible range 20–300 /min"),
        (
            "systolic_bp",
            "1e400",
            "systolic_bp 1E+400 mmHg is outside the possible range 30–300 mmHg",
        ),
        ("heart_rate", 72.5, "heart_rate 72.5 /min must be a whole number"),
        ("temperature_c", "36.555", "temperature_c 36.555 °C has more than 2 decimal places"),
        ("fev1_l", "2.0001", "fev1_l 2.0001 L has more than 3 decimal places"),
        ("spo2", "ninety", "spo2 must be a number in %, got 'ninety'"),
        ("spo2", "97%", "spo2 must be a number in %, got '97%'"),
        ("heart_rate", True, "heart_rate must be a number in /min"),
        ("heart_rate", [72], "heart_rate must be one number, or a status with a reason"),
        ("heart_rate", "NaN", "heart_rate must be a finite number in /min, got 'NaN'"),
        ("heart_rate", float("inf"), "heart_rate must be a finite number in /min, got 'inf'"),
        ("heart_rate", "7" * 40, "heart_rate must be a number in /min: 40 characters is too long"),
    ],
)
def test_an_impossible_value_is_refused_naming_field_value_and_range(
    field: str, value: object, message: str
) -> None:
    result = refused({**BASE, "diastolic_bp": 10, field: value})
    assert result.problems == ((field, message),)


@pytest.mark.parametrize("field", CORE_FIELDS)
def test_every_core_field_must_be_recorded_one_way_or_another(field: str) -> None:
    for missing in ({k: v for k, v in BASE.items() if k != field}, {**BASE, field: None}):
        result = refused(missing)
        assert result.problems == (
            (
                field,
                f"{field} is required: record a value, or mark it unable_to_obtain or refused "
                "with a reason",
            ),
        )


def test_diastolic_must_be_below_systolic() -> None:
    assert refused({**BASE, "systolic_bp": 90, "diastolic_bp": 90}).problems == (
        ("diastolic_bp", "diastolic_bp 90 mmHg must be below systolic_bp 90 mmHg"),
    )
    accepted({**BASE, "systolic_bp": 90, "diastolic_bp": 89})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"status": "refused"}, "spo2 is marked refused: give a reason"),
        (
            {"status": "unable_to_obtain", "reason": "   "},
            "spo2 is marked unable_to_obtain: give a reason",
        ),
        ({"status": "refused", "reason": 7}, "spo2 is marked refused: the reason must be text"),
        (
            {"status": "refused", "reason": "r" * 301},
            "spo2: the reason must have at most 300 characters",
        ),
        (
            {"status": "refused", "reason": "a\x00b"},
            "spo2: the reason contains characters that cannot be stored",
        ),
        (
            {"status": "refused", "reason": "no", "value": 97},
            "spo2 is marked refused: leave the value out",
        ),
        ({"status": "measured"}, "spo2 is marked measured: give the value"),
        (
            {"status": "measured", "value": 97, "reason": "why"},
            "spo2: a reason is only given when it is unable_to_obtain or refused",
        ),
        (
            {"status": "asleep", "reason": "x"},
            "spo2: unknown status 'asleep'; use one of: measured, unable_to_obtain, refused",
        ),
        ({"reason": "x"}, "spo2: give a value, or a status (unable_to_obtain, refused) and reason"),
        (
            {"status": "refused", "why": "x"},
            "spo2: unknown key 'why'; use status, value and reason",
        ),
        ({"status": "measured", "value": 120}, "spo2 120 % is outside the possible range 40–100 %"),
    ],
)
def test_a_status_needs_its_reason_and_nothing_contradictory(value: object, message: str) -> None:
    assert refused({**BASE, "spo2": value}).problems == (("spo2", message),)


def test_spirometry_when_required() -> None:
    problem = (
        "spirometry",
        "spirometry is required: record fev1_l or peak_flow_l_min, or mark one "
        "unable_to_obtain or refused with a reason",
    )
    assert refused(BASE, spirometry_required=True).problems == (problem,)
    assert refused({**BASE, "fev1_l": None, "peak_flow_l_min": " "}, True).problems == (problem,)
    accepted({**BASE, "fev1_l": 1.9}, spirometry_required=True)
    accepted({**BASE, "peak_flow_l_min": 250}, spirometry_required=True)
    accepted(
        {**BASE, "fev1_l": {"status": "unable_to_obtain", "reason": "no spirometer"}},
        spirometry_required=True,
    )
    # A marked field still needs its reason, required or not.
    assert refused({**BASE, "fev1_l": {"status": "refused"}}, True).problems == (
        ("fev1_l", "fev1_l is marked refused: give a reason"),
    )
    # A wrong value is reported as itself, not as missing spirometry.
    assert refused({**BASE, "peak_flow_l_min": 5}, True).fields == ("peak_flow_l_min",)


@pytest.mark.parametrize(
    ("symptoms", "messages"),
    [
        (["wheeze", "hives"], ["symptoms: unknown symptom code 'hives'"]),
        (["Wheeze"], ["symptoms: unknown symptom code 'Wheeze'"]),
        ("wheeze", ["symptoms must be a list of symptom codes"]),
        ({"wheeze": True}, ["symptoms must be a list of symptom codes"]),
        (7, ["symptoms must be a list of symptom codes"]),
        (
            [1, "x"],
            ["symptoms must be codes (text), got '1'", "symptoms: unknown symptom code 'x'"],
        ),
        (["cough"] * 101, ["symptoms must list at most 100 codes"]),
    ],
)
def test_unknown_symptoms_are_refused(symptoms: object, messages: list[str]) -> None:
    assert refused({**BASE, "symptoms": symptoms}).by_field() == {"symptoms": messages}


def test_the_note() -> None:
    assert accepted({**BASE, "note": "line one\nline two"}).note == "line one\nline two"
    assert accepted({**BASE, "note": "n" * 2000}).note == "n" * 2000
    assert refused({**BASE, "note": "n" * 2001}).problems == (
        ("note", "note must have at most 2000 characters"),
    )
    assert refused({**BASE, "note": 5}).problems == (("note", "note must be text"),)
    for unstorable in ("\x00", "lone \ud800 surrogate"):
        assert refused({**BASE, "note": unstorable}).problems == (
            ("note", "note contains characters that cannot be stored"),
        )


def test_unknown_fields_are_refused() -> None:
    assert refused({**BASE, "blood_sugar": 5}).problems == (
        ("blood_sugar", "unknown field 'blood_sugar'"),
    )
    assert refused({**BASE, "bad\nkey": 5}).problems == (("vitals", r"unknown field 'bad\nkey'"),)


def test_every_problem_is_listed_at_once_in_form_order() -> None:
    result = refused(
        {
            "systolic_bp": 400,
            "heart_rate": "fast",
            "spo2": {"status": "refused"},
            "respiratory_rate": 16,
            "symptoms": ["sneeze"],
            "note": 3,
            "colour": "pale",
        },
        spirometry_required=True,
    )
    assert result.fields == (
        "systolic_bp",
        "diastolic_bp",
        "heart_rate",
        "spo2",
        "spirometry",
        "symptoms",
        "note",
        "colour",
    )
    assert result.message.count("; ") == 7
    assert "\n" not in result.message


def test_something_that_is_not_a_mapping_is_refused() -> None:
    assert refused([("systolic_bp", 120)]).problems == (
        ("vitals", "a vitals set must be an object of named fields"),
    )


# --- consciousness and oxygen (NEWS2) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "level"), [("A", "A"), ("c", "C"), (" v ", "V"), ("P", "P"), ("u", "U"), ("", None)]
)
def test_consciousness_is_acvpu(raw: str, level: str | None) -> None:
    result = validate_vitals({**BASE, "consciousness": raw}, spirometry_required=False)
    assert isinstance(result, VitalsReading)
    assert result.consciousness == level
    assert ("consciousness" in result.as_dict()) == (level is not None)


@pytest.mark.parametrize(
    ("raw", "oxygen"),
    [(True, True), (False, False), ("air", False), ("oxygen", True), (None, None)],
)
def test_supplemental_oxygen_is_yes_or_no(raw: Any, oxygen: bool | None) -> None:
    result = validate_vitals({**BASE, "supplemental_oxygen": raw}, spirometry_required=False)
    assert isinstance(result, VitalsReading)
    assert result.supplemental_oxygen is oxygen


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        ("consciousness", "X", "consciousness must be one of A (alert), C (new confusion)"),
        ("consciousness", 3, "consciousness must be one of"),
        ("supplemental_oxygen", 2, "supplemental_oxygen must be true (oxygen) or false (air)"),
        ("supplemental_oxygen", "maybe", "got 'maybe'"),
    ],
)
def test_bad_consciousness_or_oxygen_is_refused(field: str, raw: Any, message: str) -> None:
    result = validate_vitals({**BASE, field: raw}, spirometry_required=False)
    assert isinstance(result, VitalsRefusal)
    assert result.fields == (field,)
    assert message in result.message
