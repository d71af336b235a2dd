"""Vitals: validation.py says whether a vitals set is possible (pure: ranges, statuses,
symptom codes)."""

from app.vitals.validation import (
    POSSIBLE_RANGES,
    SYMPTOMS,
    VitalsReading,
    VitalsRefusal,
    validate_vitals,
)

__all__ = ["POSSIBLE_RANGES", "SYMPTOMS", "VitalsReading", "VitalsRefusal", "validate_vitals"]
