"""The new-session page: patient, drug, screening of the index reaction, template and parameters
with the live protocol preview, or a copy of an earlier session's plan; "Submit for approval"
creates the session exactly as POST /api/v1/sessions does. Thin: parse, authorize, call the
services, render. The preview table is the protocol preview's own (app.protocol.form)."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app import clock as clocks
from app import config
from app.auth.dependencies import request_info, require_permission
from app.auth.service import SignedIn
from app.deps import DB, Clock, Doorbell, Settings
from app.patients import history as H
from app.patients import service as patients
from app.patients.display import DISPLAY, age_of, drug_histories
from app.patients.service import PatientError
from app.protocol import form as protocol_form
from app.protocol.screening import (
    HARD_STOP_REACTIONS,
    IMMEDIATE_REACTIONS,
    REACTION_LABELS,
    SLOW_INFUSION_REACTIONS,
    IndexReaction,
)
from app.session import creation, schemas, service
from app.session.creation import NewSession
from app.session.errors import Refusal
from app.session.models import DesensitizationSession
from app.session.unit_of_work import Caller
from app.templating import templates
from app.text import text_problem

router = APIRouter(prefix="/sessions", include_in_schema=False)

ROUTES = ("IV", "PO", "SC", "IM")
FLAGS = {
    "hypotension": "Hypotension at the index reaction",
    "desaturation": "Desaturation at the index reaction",
    "beta_blocker": "Takes a beta-blocker",
    "cardiac_disease": "Cardiac disease",
}
REACTION_GROUPS = (
    ("Immediate reaction", IMMEDIATE_REACTIONS, ""),
    ("Infusion reaction", SLOW_INFUSION_REACTIONS, "managed by a slower infusion"),
    ("Severe non-IgE reaction", HARD_STOP_REACTIONS, "any of these refuses desensitization"),
)
DRUG_MAX = 120
OBSERVATION_MAX = Decimal(24 * 60)
PROTOCOL_DEFAULTS = {"template": "brigham-12", "unit": "mg"}
# Error slots on the page besides the protocol parameters'; any other field goes on top.
PAGE_SLOTS = frozenset(
    {
        "drug",
        "route",
        "reactions",
        "index_reaction",
        "fev1_percent_predicted",
        "observation_minutes",
        "copy_from",
        "location",
        "assigned_nurse",
        "diluent",
    }
)


MAX_SUBMISSION_KEY = 64


class FormProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _whole(text: str | None) -> int | None:
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if 1 <= value <= schemas.MAX_ID else None


def _form_values(form: FormData) -> dict[str, Any]:
    """What was typed, as text, to parse and to show again when refused."""
    values: dict[str, Any] = {
        name: str(form.get(name, "")) for name in (*protocol_form.FORM_FIELDS, *PAGE_SLOTS)
    }
    values["reactions"] = [str(v) for v in form.getlist("reactions")]
    for flag in (*FLAGS, "spirometry_required"):
        values[flag] = form.get(flag) is not None
    return values


def _default_values(route: str = "IV") -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name in (*protocol_form.FORM_FIELDS, *PAGE_SLOTS)}
    values |= PROTOCOL_DEFAULTS | {"route": route, "observation_minutes": "30", "reactions": []}
    return values


def _new_session(
    patient_id: int, copy_from: int | None, values: dict[str, Any], settings_vitals_every: Decimal
) -> NewSession:
    """The form as the service's request; the checks the API's schema makes, with field names."""
    drug = values["drug"].strip()
    if not drug:
        raise FormProblem("drug", "drug is required: the name of the drug to give")
    if len(drug) > DRUG_MAX:
        raise FormProblem("drug", f"drug must have at most {DRUG_MAX} characters")
    if values["route"] not in ROUTES:
        raise FormProblem("route", f"route must be one of {', '.join(ROUTES)}")
    try:
        observation = Decimal(values["observation_minutes"].strip() or "30")
    except InvalidOperation:
        not_minutes = "observation must be a number of minutes"
        raise FormProblem("observation_minutes", not_minutes) from None
    if not observation.is_finite() or not 0 <= observation <= OBSERVATION_MAX:
        raise FormProblem("observation_minutes", f"observation must be 0 to {OBSERVATION_MAX} min")
    if observation.normalize().as_tuple().exponent < -1:  # type: ignore[operator]
        raise FormProblem("observation_minutes", "observation: at most one decimal place")
    for name, limit in (("location", 60), ("assigned_nurse", 64), ("diluent", 120)):
        if len(values[name].strip()) > limit:
            raise FormProblem(
                name, f"{name.replace('_', ' ')} must have at most {limit} characters"
            )
    for name in ("drug", "location", "assigned_nurse", "diluent", *protocol_form.FORM_FIELDS):
        value = values.get(name)
        problem = text_problem(value) if isinstance(value, str) else None
        if problem:
            raise FormProblem(name, f"{name.replace('_', ' ')} must be plain text: it {problem}")
    common = {
        "patient_id": patient_id,
        "drug": drug,
        "route": values["route"],
        "spirometry_required": values["spirometry_required"],
        "observation_minutes": observation,
        "vitals_every_minutes": settings_vitals_every,
        "location": values["location"].strip() or None,
        "assigned_nurse": values["assigned_nurse"].strip() or None,
        "diluent": values["diluent"].strip() or None,
    }
    if copy_from is not None:
        return NewSession(**common, protocol=None, index_reaction=None, copy_from=copy_from)
    fev1_text = values["fev1_percent_predicted"].strip()
    try:
        fev1 = Decimal(fev1_text) if fev1_text else None
    except InvalidOperation:
        fev1 = Decimal("NaN")
    if fev1 is not None and not fev1.is_finite():
        raise FormProblem("fev1_percent_predicted", "FEV1 must be a number: per cent of predicted")
    index = IndexReaction(
        reactions=frozenset(values["reactions"]),
        fev1_percent_predicted=fev1,
        **{flag: values[flag] for flag in FLAGS},
    )
    protocol = protocol_form.protocol_request(values)
    return NewSession(**common, protocol=protocol, index_reaction=index)


async def _copy_source(
    db: AsyncSession, patient_id: int, copy_from: int
) -> tuple[DesensitizationSession | None, str | None]:
    try:
        source = await service.load(db, copy_from)
    except Refusal as error:
        return None, error.detail
    if source.patient_id != patient_id:
        return None, f"session {source.id} belongs to another patient"
    return source, None


def _source_view(source: DesensitizationSession) -> dict[str, Any]:
    index = json.loads(source.index_reaction_json)
    parameters = json.loads(source.parameters_json)
    return {
        "row": source,
        "parameters": {
            k: "; ".join(v) if isinstance(v, list) else v
            for k, v in parameters.items()
            if k not in ("template", "dose", "unit")
        },
        "edits": len(json.loads(source.plan_edits_json)),
        "reactions": [REACTION_LABELS.get(code, code) for code in index["reactions"]],
        "flags": [label for flag, label in FLAGS.items() if index.get(flag)],
        "fev1": index.get("fev1_percent_predicted"),
    }


async def _page(
    request: Request,
    db: AsyncSession,
    clock: clocks.Clock,
    settings: config.Settings,
    *,
    patient_id: int | None,
    copy_from: int | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    submitted: bool = False,
    q: str = "",
) -> HTMLResponse:
    errors = dict(errors or {})
    status = 422 if errors else 200
    patient = None
    if patient_id is not None:
        try:
            patient = await patients.get_patient(db, patient_id)
        except PatientError as error:
            errors["general"] = error.message
            status = 404 if not submitted else 422
    if patient is None:
        # Choose the patient first.
        found = await patients.list_patients(db, q.strip()[: patients.SEARCH_MAX] or None)
        return templates.TemplateResponse(
            request,
            "sessions/new.html",
            {"patient": None, "found": found, "q": q, "errors": errors},
            status_code=status,
        )
    source = None
    if copy_from is not None:
        source, problem = await _copy_source(db, patient.id, copy_from)
        if problem:
            errors["copy_from"] = problem
            status = 404 if not submitted and "no session" in problem else 422
    values = values or _default_values(source.route if source else "IV")
    if source is not None:
        values["drug"] = source.drug  # read-only on the page: the copy is of this drug
    elif not submitted:
        values["drug"] = request.query_params.get("drug", "")[:DRUG_MAX]
    now = clock.now()
    histories = await drug_histories(db, patient.id, now, settings.tolerance)
    key = H.drug_key(values["drug"]) if values["drug"].strip() else None
    drug_history = next((d for d in histories if H.drug_key(d.drug) == key), None)
    context: dict[str, Any] = {
        "patient": patient,
        "age": age_of(patient, now.date()),
        "now": now,
        "copy": _source_view(source) if source else None,
        "copy_from": copy_from,
        "drug_history": drug_history,
        "other_drugs": [d for d in histories if d is not drug_history],
        "values": values,
        "routes": ROUTES,
        "reaction_groups": REACTION_GROUPS,
        "flags": FLAGS,
        "submission_key": secrets.token_urlsafe(16),
        **DISPLAY,
    }
    if source is None and copy_from is None:
        # The protocol preview, as /protocols/preview renders it; before anything is typed, an
        # invitation rather than "dose is required" in red.
        preview_context, _ = protocol_form.preview_context(
            {k: values[k] for k in protocol_form.FORM_FIELDS}
        )
        show_preview = submitted or bool(values["dose"].strip())
        if show_preview:
            slots = {k: v for k, v in preview_context["errors"].items() if k != "general"}
            errors = {**slots, **errors}
        context |= {
            **preview_context,
            "values": values,
            "show_preview": show_preview,
            "preview_errors": preview_context["errors"],
        }
    general = {
        k: v for k, v in errors.items() if k not in PAGE_SLOTS | set(protocol_form.FORM_FIELDS)
    }
    context["errors"] = {**errors, **({"general": " ".join(general.values())} if general else {})}
    return templates.TemplateResponse(request, "sessions/new.html", context, status_code=status)


@router.get("/new", response_class=HTMLResponse)
async def new_session_form(
    request: Request,
    db: DB,
    clock: Clock,
    settings: Settings,
    patient_id: str | None = None,
    copy_from: str | None = None,
    q: str = "",
    _: SignedIn = require_permission("session.create"),
) -> HTMLResponse:
    patient = _whole(patient_id)
    source = _whole(copy_from)
    errors = {}
    if patient_id and patient is None:
        errors["general"] = f"no patient {patient_id!r}: choose the patient from the list"
    if copy_from and source is None:
        errors["copy_from"] = f"no session {copy_from!r} to copy"
    return await _page(
        request, db, clock, settings, patient_id=patient, copy_from=source, errors=errors, q=q
    )


@router.get("/new/preview", response_class=HTMLResponse)
async def new_session_preview(
    request: Request, _: SignedIn = require_permission("session.create")
) -> HTMLResponse:
    """The preview table alone, for htmx, as the parameters change."""
    values = {name: request.query_params.get(name, "") for name in protocol_form.FORM_FIELDS}
    context, status = protocol_form.preview_context(values)
    return templates.TemplateResponse(
        request, "protocol/_result.html", {**context, "oob_errors": True}, status_code=status
    )


@router.post("/new", response_class=HTMLResponse)
async def new_session_submit(
    request: Request,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    settings: Settings,
    signed_in: SignedIn = require_permission("session.create"),
) -> Response:
    form = await request.form()
    values = _form_values(form)
    patient_id = _whole(str(form.get("patient_id", "")))
    copy_text = str(form.get("copy_from", "")).strip()
    copy_from = _whole(copy_text) if copy_text else None

    async def refused(field: str | None, message: str) -> HTMLResponse:
        await db.rollback()  # end the transaction of the refused attempt; reads follow
        return await _page(
            request,
            db,
            clock,
            settings,
            patient_id=patient_id,
            copy_from=copy_from,
            values=values,
            errors={field or "general": message},
            submitted=True,
        )

    if patient_id is None:
        return await refused("general", "choose the patient first")
    if copy_text and copy_from is None:
        return await refused("copy_from", f"no session {copy_text!r} to copy")
    try:
        new = _new_session(patient_id, copy_from, values, settings.vitals_every_minutes)
    except FormProblem as problem:
        return await refused(problem.field, problem.message)
    # The form's own key (a hidden field made with the page): a double tap on "Submit", or a
    # resend after a lost answer, opens the session the first one created.
    key = str(form.get("submission_key", "")).strip()[:MAX_SUBMISSION_KEY] or None
    fingerprint = service.fingerprint_of(request.url.path, {"form": sorted(values.items())})
    try:
        created = await creation.create_session(
            db,
            clock,
            doorbell,
            Caller(signed_in.actor, request_info(request)),
            new,
            tolerance=settings.tolerance,
            labels=settings.labels,
            scan_to_verify=settings.scan_to_verify,
            idempotency_key=f"form:{key}" if key else None,
            fingerprint=fingerprint,
        )
    except Refusal as error:
        return await refused(error.field, error.detail)
    except ValueError as error:  # e.g. an unknown index reaction, from the screening
        return await refused(getattr(error, "field", None) or "index_reaction", str(error))
    session_id = created[1]["id"] if isinstance(created, tuple) else created.id
    return RedirectResponse(f"/sessions/{session_id}", status_code=303)
