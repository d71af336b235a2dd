"""Display helpers of the patient pages, shared with the new-session page: times, hours, age,
symptom and template names, and the patient's history per drug at the server's time."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app import localtime
from app.patients import history as H
from app.patients import rules
from app.patients.models import Patient
from app.protocol.templates import TEMPLATE_TITLES
from app.session import history as session_history
from app.tolerance import TolerancePolicy
from app.vitals.rules import symptom_words


def when(moment: datetime | None) -> str:
    return localtime.stamp(moment) if moment else "—"


def when_short(moment: datetime | None) -> str:
    """For table cells whose heading names the zone."""
    return localtime.local(moment, "%Y-%m-%d %H:%M") if moment else "—"


def hours(value: Decimal) -> str:
    return f"{value.normalize():f}"


def age_of(patient: Patient, today: date) -> int:
    # A manual (training or test) clock may be set before a birth date recorded later.
    return rules.age_in_years(patient.birth_date, today) if patient.birth_date <= today else 0


def symptom_label(code: str) -> str:
    return symptom_words(code)


def template_title(name: str) -> str:
    return TEMPLATE_TITLES.get(name, name)


DISPLAY = {
    "when": when,
    "when_short": when_short,
    "hours": hours,
    "symptom_label": symptom_label,
    "template_title": template_title,
}


async def drug_histories(
    db: AsyncSession, patient_id: int, now: datetime, tolerance: TolerancePolicy
) -> list[H.DrugHistory]:
    """The patient's history per drug at the server's time (`now`), exactly as the JSON API
    gives it."""
    return H.histories(await session_history.past_sessions(db, patient_id, now), now, tolerance)
