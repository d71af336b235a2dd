"""The vital-sign catalogue is the one source of each vital sign's facts: validation, the alarm
rules, the screens and the FHIR export all name the same vital signs and agree with it, and the
facts themselves (ranges, labels, units, LOINC codes) are those written here, literally."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.live import present
from app.review import fhir
from app.vitals import news2
from app.vitals.catalogue import VITAL_SIGNS, VitalSign
from app.vitals.rule_table import RULES
from app.vitals.rules import evaluate
from app.vitals.thresholds import RATE_THRESHOLD_VITALS, Thresholds
from app.vitals.validation import (
    CORE_FIELDS,
    DECIMAL_PLACES,
    MEASURED_FIELDS,
    OPTIONAL_FIELDS,
    POSSIBLE_RANGES,
    SPIROMETRY_FIELDS,
    VitalsReading,
    VitalsRefusal,
    validate_vitals,
)
from tests.review.views import session_view, vitals_set

D = Decimal
NAMES = (
    "systolic_bp",
    "diastolic_bp",
    "heart_rate",
    "spo2",
    "respiratory_rate",
    "temperature_c",
    "fev1_l",
    "peak_flow_l_min",
)


def test_the_catalogue_names_every_measured_field_in_form_order() -> None:
    assert tuple(VITAL_SIGNS) == NAMES
    assert all(sign.name == name for name, sign in VITAL_SIGNS.items())
    assert MEASURED_FIELDS == NAMES
    assert set(CORE_FIELDS) | set(OPTIONAL_FIELDS) == set(NAMES)
    assert set(SPIROMETRY_FIELDS) <= set(NAMES)
    reading_fields = {f.name for f in dataclasses.fields(VitalsReading)}
    assert set(NAMES) <= reading_fields


def test_validation_reads_its_ranges_and_places_from_the_catalogue() -> None:
    for name, sign in VITAL_SIGNS.items():
        assert POSSIBLE_RANGES[name] == (sign.lowest, sign.highest, sign.unit)
        assert DECIMAL_PLACES[name] == sign.decimal_places
    assert tuple(POSSIBLE_RANGES) == tuple(DECIMAL_PLACES) == NAMES


def test_the_alarm_rules_and_news2_name_only_catalogued_vitals() -> None:
    assert {rule.vital for rule in RULES} <= set(VITAL_SIGNS)
    assert set(RATE_THRESHOLD_VITALS.values()) <= set(VITAL_SIGNS)
    assert set(news2.BANDS) <= set(VITAL_SIGNS)


def test_the_alarm_rules_say_the_catalogue_labels_and_units() -> None:
    def measured(value_of: Callable[[VitalSign], Decimal]) -> VitalsReading:
        raw = {name: str(value_of(sign)) for name, sign in VITAL_SIGNS.items()}
        result = validate_vitals(raw, spirometry_required=False)
        assert isinstance(result, VitalsReading), result
        return result

    baseline = measured(lambda sign: sign.lowest)
    result = evaluate(measured(lambda sign: sign.highest), baseline, Thresholds(), age_years=40)
    said = {s.field: s.message for s in result.suspicious}
    assert tuple(said) == NAMES
    for name, sign in VITAL_SIGNS.items():
        assert said[name].startswith(f"is {sign.label} {sign.highest} {sign.unit} right?")
        assert said[name].endswith(f"the baseline {sign.lowest} {sign.unit}")


def test_the_screens_show_the_catalogue_labels_and_units() -> None:
    assert tuple(present.VITAL_LABELS) == NAMES
    for name, sign in VITAL_SIGNS.items():
        assert present.VITAL_LABELS[name] == (sign.short_label, sign.unit)


def test_the_facts_are_unchanged() -> None:
    facts = {
        name: (
            sign.label,
            sign.short_label,
            sign.unit,
            sign.lowest,
            sign.highest,
            sign.decimal_places,
        )
        for name, sign in VITAL_SIGNS.items()
    }
    assert facts == {
        "systolic_bp": ("systolic", "SBP", "mmHg", D(30), D(300), 0),
        "diastolic_bp": ("diastolic", "DBP", "mmHg", D(10), D(200), 0),
        "heart_rate": ("heart rate", "HR", "/min", D(20), D(300), 0),
        "spo2": ("SpO2", "SpO₂", "%", D(40), D(100), 0),
        "respiratory_rate": ("respiratory rate", "RR", "/min", D(2), D(80), 0),
        "temperature_c": ("temperature", "Temp", "°C", D(25), D(45), 2),
        "fev1_l": ("FEV1", "FEV1", "L", D("0.1"), D(8), 3),
        "peak_flow_l_min": ("peak flow", "PEF", "L/min", D(30), D(900), 0),
    }


def test_the_fhir_codes_are_unchanged() -> None:
    codings = {
        name: (sign.fhir.codes, sign.fhir.text, sign.fhir.unit, sign.fhir.ucum, sign.fhir.profile)
        for name, sign in VITAL_SIGNS.items()
    }
    assert codings == {
        "systolic_bp": (
            (("8480-6", "Systolic blood pressure"),),
            "Systolic blood pressure",
            "mmHg",
            "mm[Hg]",
            "bp",
        ),
        "diastolic_bp": (
            (("8462-4", "Diastolic blood pressure"),),
            "Diastolic blood pressure",
            "mmHg",
            "mm[Hg]",
            "bp",
        ),
        "heart_rate": (
            (("8867-4", "Heart rate"),),
            "Heart rate",
            "beats/minute",
            "/min",
            "heartrate",
        ),
        "spo2": (
            (
                ("2708-6", "Oxygen saturation in Arterial blood"),
                ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            ),
            "SpO2",
            "%",
            "%",
            "oxygensat",
        ),
        "respiratory_rate": (
            (("9279-1", "Respiratory rate"),),
            "Respiratory rate",
            "breaths/minute",
            "/min",
            "resprate",
        ),
        "temperature_c": (
            (("8310-5", "Body temperature"),),
            "Body temperature",
            "°C",
            "Cel",
            "bodytemp",
        ),
        "fev1_l": ((("20150-9", None),), "FEV1", "L", "L", None),
        "peak_flow_l_min": ((("19935-6", None),), "Peak expiratory flow", "L/min", "L/min", None),
    }
    assert [sign.fhir.vital_sign for sign in VITAL_SIGNS.values()] == [True] * 6 + [False] * 2


def _observations(values: dict[str, Any]) -> list[dict[str, Any]]:
    baseline = vitals_set(
        datetime(2026, 1, 5, 9, 0, tzinfo=UTC), values, id=7, reading_id=7, baseline=True
    )
    view = session_view(
        id=1,
        status="completed",
        drug="carboplatin",
        template="12-step",
        unit="mg",
        delivered_dose=Decimal(500),
        target_dose=Decimal(500),
        vitals=(baseline,),
    )
    bundle = fhir.session_bundle(view, {"mrn": "X1"})
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]


def test_the_fhir_export_says_what_the_catalogue_says() -> None:
    values = {
        name: {"status": "measured", "value": str(sign.lowest)}
        for name, sign in VITAL_SIGNS.items()
    }
    observations = _observations(values)
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    [panel] = [o for o in observations if "component" in o]
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    assert panel["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/bp"]
    components = {c["code"]["coding"][0]["code"]: c for c in panel["component"]}
    for sign in VITAL_SIGNS.values():
        fhir_coding = sign.fhir
        if fhir_coding.profile == "bp":
            [(code, display)] = fhir_coding.codes
            component = components[code]
            assert component["code"]["coding"][0]["display"] == display
            quantity = component["valueQuantity"]
        else:
            observation = by_code[fhir_coding.codes[0][0]]
            assert [(c["code"], c.get("display")) for c in observation["code"]["coding"]] == list(
                fhir_coding.codes
            )
            assert observation["code"]["text"] == fhir_coding.text
            profiles = observation.get("meta", {}).get("profile")
            expected = None if fhir_coding.profile is None else [fhir.PROFILE + fhir_coding.profile]
            assert profiles == expected
            quantity = observation["valueQuantity"]
        assert (quantity["unit"], quantity["code"]) == (fhir_coding.unit, fhir_coding.ucum)
        assert quantity["system"] == "http://unitsofmeasure.org"
    assert len(observations) == 1 + len(VITAL_SIGNS) - len(components)


def test_validation_messages_use_the_catalogue_units() -> None:
    for name, sign in VITAL_SIGNS.items():
        refusal = validate_vitals({name: str(sign.highest + 1)}, spirometry_required=False)
        assert isinstance(refusal, VitalsRefusal)
        [message] = refusal.by_field()[name]
        assert message.endswith(
            f"{sign.unit} is outside the possible range {sign.lowest}–{sign.highest} {sign.unit}"
        )


def test_no_other_module_spells_a_vital_sign_loinc_code() -> None:
    app = Path(__file__).resolve().parents[2] / "app"
    catalogue_codes = {code for sign in VITAL_SIGNS.values() for code, _ in sign.fhir.codes}
    elsewhere = {}
    for path in app.rglob("*.py"):
        if path.name == "catalogue.py" and path.parent.name == "vitals":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in catalogue_codes:
                elsewhere[node.value] = path.relative_to(app).as_posix()
    assert elsewhere == {}
