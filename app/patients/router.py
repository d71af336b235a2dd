"""The patients JSON API. Thin: parse, authorize, call app.patients.service, answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from app.auth.dependencies import request_info, require_permission
from app.auth.service import SignedIn
from app.contract import PatientHistory
from app.deps import DB, Clock, Settings
from app.patients import history as H
from app.patients import rules, service
from app.patients.models import Patient
from app.patients.schemas import PatientCreate, PatientOut, PatientUpdate
from app.patients.service import DuplicateMrn, PatientError, PatientNotFound
from app.session import history as session_history
from app.session.schemas import Timestamp

api = APIRouter(prefix="/api/v1/patients", tags=["patients"])

# Ids are 32-bit in the database; a larger number would be a driver error, not a 404.
PatientId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _out(patient: Patient, today: date) -> PatientOut:
    # A manual (training or test) clock may be set before a birth date recorded later.
    age = rules.age_in_years(patient.birth_date, today) if patient.birth_date <= today else 0
    return PatientOut(
        id=patient.id,
        mrn=patient.mrn,
        family_name=patient.family_name,
        given_name=patient.given_name,
        birth_date=patient.birth_date,
        age_years=age,
        sex=patient.sex,
        weight_kg=patient.weight_kg,
        asthma=patient.asthma,
        allergy_history=patient.allergy_history,
        created_at=patient.created_at,
        created_by=patient.created_by,
        updated_at=patient.updated_at,
    )


def _refusal(error: PatientError) -> JSONResponse:
    if isinstance(error, PatientNotFound):
        status = 404
    elif isinstance(error, DuplicateMrn):
        status = 409
    else:
        status = 422
    return JSONResponse({"detail": error.message, "field": error.field}, status_code=status)


@api.post("", response_model=PatientOut, status_code=201)
async def create_patient(
    request: Request,
    body: PatientCreate,
    db: DB,
    clock: Clock,
    signed_in: SignedIn = require_permission("patient.write"),
) -> PatientOut | JSONResponse:
    try:
        patient = await service.create_patient(
            db,
            clock,
            actor=signed_in.actor,
            request=request_info(request),
            **body.model_dump(),
        )
    except PatientError as error:
        return _refusal(error)
    return _out(patient, clock.now().date())


@api.get("", response_model=list[PatientOut])
async def list_patients(
    db: DB,
    clock: Clock,
    q: Annotated[str | None, Query(max_length=service.SEARCH_MAX)] = None,
    _: SignedIn = require_permission("patient.read"),
) -> list[PatientOut]:
    patients = await service.list_patients(db, q)
    today = clock.now().date()
    return [_out(patient, today) for patient in patients]


@api.get("/{patient_id}", response_model=PatientOut)
async def get_patient(
    patient_id: PatientId,
    db: DB,
    clock: Clock,
    _: SignedIn = require_permission("patient.read"),
) -> PatientOut | JSONResponse:
    try:
        patient = await service.get_patient(db, patient_id)
    except PatientError as error:
        return _refusal(error)
    return _out(patient, clock.now().date())


@api.get("/{patient_id}/history", response_model=PatientHistory)
async def patient_history(
    patient_id: PatientId,
    db: DB,
    clock: Clock,
    settings: Settings,
    planned_at: Annotated[Timestamp | None, Query()] = None,
    drug: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
    _: SignedIn = require_permission("patient.read"),
) -> Any:
    """Sessions, reactions and last dose per drug; the tolerance window at `planned_at` (now
    when not given); suggestions for the next plan."""
    try:
        await service.get_patient(db, patient_id)
    except PatientError as error:
        return _refusal(error)
    now = clock.now()
    at = planned_at or now
    drugs = H.histories(
        await session_history.past_sessions(db, patient_id, now),
        at,
        settings.tolerance,
    )
    if drug is not None:
        drugs = [d for d in drugs if H.drug_key(d.drug) == H.drug_key(drug)]
    return {
        "patient_id": patient_id,
        "planned_at": at.isoformat(),
        "drugs": [session_history.history_view(d) for d in drugs],
    }


@api.patch("/{patient_id}", response_model=PatientOut)
async def update_patient(
    request: Request,
    patient_id: PatientId,
    body: PatientUpdate,
    db: DB,
    clock: Clock,
    signed_in: SignedIn = require_permission("patient.write"),
) -> PatientOut | JSONResponse:
    try:
        patient = await service.update_patient(
            db,
            clock,
            actor=signed_in.actor,
            patient_id=patient_id,
            changes=body.changes(),
            request=request_info(request),
        )
    except PatientError as error:
        return _refusal(error)
    return _out(patient, clock.now().date())
