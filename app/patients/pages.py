"""Patient pages: the list with search, registering a patient, and a patient's history per drug
with the tolerance window and what it suggests for the next plan. Thin: parse, authorize, call
app.patients.service and app.session.history (through app.patients.display), render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.dependencies import request_info, require_permission
from app.auth.service import SignedIn
from app.deps import DB, Clock, Settings
from app.patients import rules, service
from app.patients.display import DISPLAY, age_of, drug_histories
from app.patients.rules import SEXES
from app.patients.service import DuplicateMrn, PatientError, PatientNotFound
from app.templating import templates

router = APIRouter(prefix="/patients", include_in_schema=False)

PatientId = Annotated[int, Path(ge=1, le=2_147_483_647)]

FORM_FIELDS = rules.FIELDS
# The form asks about asthma with two radio buttons: no answer is not the same as "no".
ASTHMA_ANSWERS = {"yes": True, "no": False}


@router.get("", response_class=HTMLResponse)
async def patient_list(
    request: Request,
    db: DB,
    clock: Clock,
    q: str = "",
    _: SignedIn = require_permission("patient.read"),
) -> HTMLResponse:
    query = q.strip()[: service.SEARCH_MAX]
    patients = await service.list_patients(db, query or None)
    today = clock.now().date()
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
    clock: Clock,
    signed_in: SignedIn = require_permission("patient.write"),
) -> Response:
    form = await request.form()
    values = {name: str(form.get(name, "")) for name in FORM_FIELDS}
    asthma = ASTHMA_ANSWERS.get(values["asthma"])
    fields: dict[str, Any] = {**values, "asthma": asthma}
    try:
        patient = await service.create_patient(
            db,
            clock,
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
    clock: Clock,
    settings: Settings,
    _: SignedIn = require_permission("patient.read"),
) -> HTMLResponse:
    try:
        patient = await service.get_patient(db, patient_id)
    except PatientNotFound as error:
        return templates.TemplateResponse(
            request, "patients/not_found.html", {"reason": error.message}, status_code=404
        )
    now = clock.now()
    return templates.TemplateResponse(
        request,
        "patients/detail.html",
        {
            "patient": patient,
            "age": age_of(patient, now.date()),
            "drugs": await drug_histories(db, patient_id, now, settings.tolerance),
            "now": now,
            **DISPLAY,
        },
    )
