"""Patient pages: the list with search, registering a patient, and a patient's history per drug
with the tolerance window and what it suggests for the next plan. Thin: parse, authorize, call
app.patients.service and app.session.history, render."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import localtime
from app.auth.dependencies import get_db, request_info, require_permission
from app.auth.service import SignedIn
from app.patients import history as H
from app.patients import rules, service
from app.patients.models import SEXES, Patient
from app.patients.service import DuplicateMrn, PatientError, PatientNotFound
from app.protocol.templates import TEMPLATE_TITLES
from app.session import history as session_history
from app.templating import templates
from app.vitals.rules import symptom_words

router = APIRouter(prefix="/patients", include_in_schema=False)

DB = Annotated[AsyncSession, Depends(get_db)]
PatientId = Annotated[int, Path(ge=1, le=2_147_483_647)]

FORM_FIELDS = rules.FIELDS
# The form asks about asthma with two radio buttons: no answer is not the same as "no".
ASTHMA_ANSWERS = {"yes": True, "no": False}


# --- display helpers, shared with the new-session page ------------------------------------------


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
    request: Request, db: AsyncSession, patient_id: int
) -> list[H.DrugHistory]:
    """The patient's history per drug at the server's time, exactly as the JSON API gives it."""
    settings = request.app.state.settings
    now = request.app.state.clock.now()
    return H.histories(
        await session_history.past_sessions(db, patient_id, now),
        now,
        settings.tolerance,
    )


# --- pages -------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def patient_list(
    request: Request,
    db: DB,
    q: str = "",
    _: SignedIn = require_permission("patient.read"),
) -> HTMLResponse:
    query = q.strip()[: service.SEARCH_MAX]
    patients = await service.list_patients(db, query or None)
    today = request.app.state.clock.now().date()
    return templates.TemplateResponse(
        request,
        "patients/list.html",
        {
            "q": query,
            "patients": [(p, age_of(p, today)) for p in patients],
            "limit": service.LIST_LIMIT,
        },
    )


def _form_page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "patients/new.html",
        {"values": values, "errors": errors or {}, "sexes": SEXES},
        status_code=status_code,
    )


@router.get("/new", response_class=HTMLResponse)
async def new_patient_form(
    request: Request, _: SignedIn = require_permission("patient.write")
) -> HTMLResponse:
    return _form_page(request, {})


@router.post("/new", response_class=HTMLResponse)
async def new_patient_submit(
    request: Request,
    db: DB,
    signed_in: SignedIn = require_permission("patient.write"),
) -> Response:
    form = await request.form()
    values = {name: str(form.get(name, "")) for name in FORM_FIELDS}
    asthma = ASTHMA_ANSWERS.get(values["asthma"])
    fields: dict[str, Any] = {**values, "asthma": asthma}
    try:
        patient = await service.create_patient(
            db,
            request.app.state.clock,
            actor=signed_in.actor,
            request=request_info(request),
            **fields,
        )
    except PatientError as error:
        message = error.message
        if error.field == "asthma" and asthma is None:
            message = "answer yes or no: does the patient have asthma?"
        status = 409 if isinstance(error, DuplicateMrn) else 422
        return _form_page(request, values, {error.field or "general": message}, status)
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


@router.get("/{patient_id}", response_class=HTMLResponse)
async def patient_page(
    request: Request,
    patient_id: PatientId,
    db: DB,
    _: SignedIn = require_permission("patient.read"),
) -> HTMLResponse:
    try:
        patient = await service.get_patient(db, patient_id)
    except PatientNotFound as error:
        return templates.TemplateResponse(
            request, "patients/not_found.html", {"reason": error.message}, status_code=404
        )
    now = request.app.state.clock.now()
    return templates.TemplateResponse(
        request,
        "patients/detail.html",
        {
            "patient": patient,
            "age": age_of(patient, now.date()),
            "drugs": await drug_histories(request, db, patient_id),
            "now": now,
            **DISPLAY,
        },
    )
