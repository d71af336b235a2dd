"""Every vital sign Stepwise records, once: its name, its words and unit on screen, the values a
living patient can show, and how FHIR codes it. Pure data: validation, the alarm rules, the
screens and the FHIR export all read it from here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class FhirCoding:
    """How a FHIR Observation says the vital sign."""

    codes: tuple[tuple[str, str | None], ...]  # LOINC code, display (None: not confirmed)
    text: str
    unit: str  # for people
    ucum: str  # for machines
    # The R4 vital-signs profile ("bp": a component of the blood pressure panel); None: not a
    # vital sign (spirometry).
    profile: str | None

    @property
    def vital_sign(self) -> bool:
        return self.profile is not None


@dataclass(frozen=True)
class VitalSign:
    name: str  # the field of a vitals set
    label: str  # in a sentence: "systolic 85 mmHg"
    short_label: str  # heading a column of readings: "SBP"
    unit: str  # as shown
    # What a living patient can show, not what is normal: wide on purpose (a neonate's heart
    # rate, a crashing patient's pressure); typing errors land outside.
    lowest: Decimal
    highest: Decimal
    decimal_places: int  # digits after the point that the instruments show; more is a typo
    fhir: FhirCoding


_D = Decimal

# In the order of the vitals form. FHIR displays are given where the R4 vital-signs profiles
# spell them; the others rely on the code (verify at loinc.org).
VITAL_SIGNS: Final[Mapping[str, VitalSign]] = MappingProxyType(
    {
        sign.name: sign
        for sign in (
            VitalSign(
                name="systolic_bp",
                label="systolic",
                short_label="SBP",
                unit="mmHg",
                lowest=_D("30"),
                highest=_D("300"),
                decimal_places=0,
                fhir=FhirCoding(
                    (("8480-6", "Systolic blood pressure"),),
                    "Systolic blood pressure",
                    "mmHg",
                    "mm[Hg]",
                    "bp",
                ),
            ),
            VitalSign(
                name="diastolic_bp",
                label="diastolic",
                short_label="DBP",
                unit="mmHg",
                lowest=_D("10"),
                highest=_D("200"),
                decimal_places=0,
                fhir=FhirCoding(
                    (("8462-4", "Diastolic blood pressure"),),
                    "Diastolic blood pressure",
                    "mmHg",
                    "mm[Hg]",
                    "bp",
                ),
            ),
            VitalSign(
                name="heart_rate",
                label="heart rate",
                short_label="HR",
                unit="/min",
                lowest=_D("20"),
                highest=_D("300"),
                decimal_places=0,
                fhir=FhirCoding(
                    (("8867-4", "Heart rate"),), "Heart rate", "beats/minute", "/min", "heartrate"
                ),
            ),
            VitalSign(
                name="spo2",
                label="SpO2",
                short_label="SpO₂",
                unit="%",
                lowest=_D("40"),
                highest=_D("100"),
                decimal_places=0,
                fhir=FhirCoding(
                    (
                        ("2708-6", "Oxygen saturation in Arterial blood"),
                        ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
                    ),
                    "SpO2",
                    "%",
                    "%",
                    "oxygensat",
                ),
            ),
            VitalSign(
                name="respiratory_rate",
                label="respiratory rate",
                short_label="RR",
                unit="/min",
                lowest=_D("2"),
                highest=_D("80"),
                decimal_places=0,
                fhir=FhirCoding(
                    (("9279-1", "Respiratory rate"),),
                    "Respiratory rate",
                    "breaths/minute",
                    "/min",
                    "resprate",
                ),
            ),
            VitalSign(
                name="temperature_c",
                label="temperature",
                short_label="Temp",
                unit="°C",
                lowest=_D("25"),
                highest=_D("45"),
                decimal_places=2,
                fhir=FhirCoding(
                    (("8310-5", "Body temperature"),), "Body temperature", "°C", "Cel", "bodytemp"
                ),
            ),
            VitalSign(
                name="fev1_l",
                label="FEV1",
                short_label="FEV1",
                unit="L",
                lowest=_D("0.1"),
                highest=_D("8"),
                decimal_places=3,
                fhir=FhirCoding((("20150-9", None),), "FEV1", "L", "L", None),
            ),
            VitalSign(
                name="peak_flow_l_min",
                label="peak flow",
                short_label="PEF",
                unit="L/min",
                lowest=_D("30"),
                highest=_D("900"),
                decimal_places=0,
                fhir=FhirCoding(
                    (("19935-6", None),), "Peak expiratory flow", "L/min", "L/min", None
                ),
            ),
        )
    }
)
