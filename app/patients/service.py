"""Registering, correcting and finding patients. Each public function that writes is one unit of
work: the patient row and its audit row in one transaction, then commit. Nothing else in
app/patients commits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.clock import Clock
from app.patients import rules
from app.patients.models import Patient
from app.patients.rules import DuplicateMrn, PatientError, PatientNotFound

__all__ = [
    "LIST_LIMIT",
    "DuplicateMrn",
    "PatientError",
    "PatientNotFound",
    "create_patient",
    "get_patient",
    "list_patients",
    "update_patient",
]

LIST_LIMIT: Final = 50
SEARCH_MAX = 100


def _public(patient: Patient) -> dict[str, Any]:
    """The recorded fields, as the audit log keeps them."""
    return {name: getattr(patient, name) for name in rules.FIELDS}


def _require_person(actor: Actor) -> None:
    if actor.user_id is None:
        raise PatientError("a patient record is created or changed by a signed-in person")


async def _mrn_holder(
    db: AsyncSession, mrn: str, *, other_than: int | None = None
) -> tuple[int, str] | None:
    """The patient (id, MRN) already holding ``mrn``, compared without regard to case: "ab-1"
    and "AB-1" are one record number, and two records for one person are a safety hazard."""
    query = select(Patient.id, Patient.mrn).where(func.upper(Patient.mrn) == mrn.upper())
    if other_than is not None:
        query = query.where(Patient.id != other_than)
    row = (await db.execute(query.limit(1))).first()
    return (row[0], row[1]) if row else None


def _duplicate(holder: tuple[int, str]) -> DuplicateMrn:
    patient_id, mrn = holder
    return DuplicateMrn(
        f"MRN {mrn} is already registered to patient {patient_id}; open that record instead",
        field="mrn",
    )


async def _flush_or_duplicate(db: AsyncSession, mrn: str, other_than: int | None) -> None:
    """Flush; a unique-constraint race on the MRN (two desks registering one patient at the
    same moment on PostgreSQL) becomes the same clean refusal as the check before it."""
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        holder = await _mrn_holder(db, mrn, other_than=other_than)
        await db.rollback()
        if holder is not None:
            raise _duplicate(holder) from None
        raise


async def create_patient(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    mrn: object,
    family_name: object,
    given_name: object,
    birth_date: object,
    weight_kg: object,
    asthma: object,
    sex: object = None,
    allergy_history: object = None,
    request: RequestInfo | None = None,
) -> Patient:
    _require_person(actor)
    now = clock.now()
    values = rules.clean_fields(
        {
            "mrn": mrn,
            "family_name": family_name,
            "given_name": given_name,
            "birth_date": birth_date,
            "sex": sex,
            "weight_kg": weight_kg,
            "asthma": asthma,
            "allergy_history": allergy_history,
        },
        today=now.date(),
    )
    holder = await _mrn_holder(db, values["mrn"])
    if holder is not None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        raise _duplicate(holder)
    patient = Patient(**values, created_at=now, created_by=actor.user_id, updated_at=now)
    db.add(patient)
    await _flush_or_duplicate(db, values["mrn"], other_than=None)
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="patient.create",
        entity="patient",
        entity_id=str(patient.id),
        after=_public(patient),
        request=request,
    )
    await db.commit()
    return patient


async def update_patient(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    patient_id: int,
    changes: Mapping[str, Any],
    request: RequestInfo | None = None,
) -> Patient:
    """Change only the fields in ``changes``. A change to the values already recorded writes
    nothing; otherwise the audit row holds each changed field before and after."""
    _require_person(actor)
    if not changes:
        raise PatientError("nothing to change: give at least one field")
    now = clock.now()
    values = rules.clean_fields(changes, today=now.date())
    # The row lock keeps "before" true when two screens correct the same patient at once.
    patient = await db.scalar(
        select(Patient)
        .where(Patient.id == patient_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if patient is None:
        await db.rollback()
        raise PatientNotFound(f"no patient with id {patient_id}")
    changed = {name: value for name, value in values.items() if getattr(patient, name) != value}
    if not changed:
        # Nothing to write. Commit rather than roll back: the loaded record stays readable.
        await db.commit()
        return patient
    if "mrn" in changed:
        holder = await _mrn_holder(db, changed["mrn"], other_than=patient.id)
        if holder is not None:
            await db.rollback()
            raise _duplicate(holder)
    before = {name: getattr(patient, name) for name in changed}
    for name, value in changed.items():
        setattr(patient, name, value)
    patient.updated_at = now
    await _flush_or_duplicate(db, patient.mrn, other_than=patient_id)
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="patient.update",
        entity="patient",
        entity_id=str(patient.id),
        before=before,
        after=changed,
        request=request,
    )
    await db.commit()
    return patient


async def get_patient(db: AsyncSession, patient_id: int) -> Patient:
    patient = await db.get(Patient, patient_id)
    if patient is None:
        raise PatientNotFound(f"no patient with id {patient_id}")
    return patient


async def list_patients(
    db: AsyncSession, q: str | None = None, *, limit: int = LIST_LIMIT
) -> list[Patient]:
    """Patients whose MRN starts with ``q`` or whose name contains it, ignoring case (on
    SQLite only ASCII letters are folded), ordered by family name; at most ``limit``."""
    query = select(Patient)
    text = (q or "").strip()[:SEARCH_MAX]
    if not rules.is_storable_text(text):
        return []  # no record holds such characters, and the database refuses to compare them
    if text:
        words = text.lower()
        full_name = func.lower(Patient.given_name + " " + Patient.family_name)
        conditions = [
            func.lower(Patient.family_name).contains(words, autoescape=True),
            func.lower(Patient.given_name).contains(words, autoescape=True),
            full_name.contains(words, autoescape=True),
        ]
        mrn = rules.normalise_mrn(text)
        if mrn:
            conditions.append(func.upper(Patient.mrn).startswith(mrn.upper(), autoescape=True))
        query = query.where(or_(*conditions))
    query = query.order_by(
        func.lower(Patient.family_name), func.lower(Patient.given_name), Patient.id
    ).limit(max(1, min(limit, LIST_LIMIT)))
    return list(await db.scalars(query))
