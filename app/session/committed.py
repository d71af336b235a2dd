"""What a command that changed a session already built of the change: the view it answered
with, the patient and the events it wrote. The doorbell hands it to this process's screens
with the ring, so they are rendered without reading back what was just committed (another
process hears only the seq, and reads)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.patients.models import Patient
from app.session.models import SessionEvent
from app.session.view import SessionView


@dataclass(frozen=True)
class PatientInfo:
    """Plain values: the page outlives the database session it was read in."""

    id: int
    mrn: str
    family_name: str
    given_name: str
    birth_date: date | None = None


def patient_info(patient: Patient) -> PatientInfo:
    return PatientInfo(
        patient.id, patient.mrn, patient.family_name, patient.given_name, patient.birth_date
    )


def event_line(event: SessionEvent) -> dict[str, Any]:
    """One event as the bedside timeline lists it."""
    return {
        "seq": event.seq,
        "at": event.at,
        "kind": event.kind,
        "data": json.loads(event.data_json),
        "role": event.actor_role,
    }


@dataclass(frozen=True)
class Committed:
    view: SessionView  # as of `now`, with the change
    now: datetime
    patient: PatientInfo
    events: tuple[dict[str, Any], ...]  # the change's events, newest first (event_line)
