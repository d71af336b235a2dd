"""The routes of the bedside checks: scans of the wristband and each new bag's label, a
physician's override, a pump change co-signed for a high-alert drug, and the bags' labels
(listed, reprinted)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.contract import SessionView
from app.deps import DB, Clock, Doorbell, Settings
from app.labels import service as labels
from app.session import machine as M
from app.session import scanning, schemas
from app.session.route_support import (
    Id,
    SessionRow,
    answer_call,
    answer_command,
    caller_of,
    cosigner_of,
)

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions/{session_id}/confirm-step", response_model=SessionView)
async def confirm_step(
    request: Request,
    session_id: Id,
    body: schemas.ConfirmStepIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    settings: Settings,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    """The pump is set to the step due. A new bag needs its label scanned first (when the
    site scans); a high-alert drug's new bag, or the first start after a resume, needs a
    second clinician's co-signature (`cosigner_username`, `cosigner_password`)."""
    cosigner = await cosigner_of(request, db, clock, settings, signed_in, body, session_id)
    command = M.ConfirmStep(cosigner)
    return await answer_command(request, db, clock, doorbell, signed_in, session_id, command, body)


@router.post("/sessions/{session_id}/scans", response_model=SessionView)
async def scan(
    request: Request,
    session_id: Id,
    body: schemas.ScanIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    settings: Settings,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    """A bag's label (before the pump start that hangs it) or the patient's wristband
    (before the start). A wrong bag or patient is recorded, raises a HIGH alarm and is
    answered 409 with what was scanned and what was expected; an unreadable code is 422."""
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: scanning.record_scan(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            kind=body.kind,
            scanned=body.code,
            method=body.method,
            policy=settings.labels,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )


@router.post("/sessions/{session_id}/scans/override", response_model=SessionView)
async def override_scan(
    request: Request,
    session_id: Id,
    body: schemas.ScanOverrideIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.override_scan"),
) -> JSONResponse:
    """A physician goes on without a scan that cannot be made, with the reason (audited)."""
    command = M.OverrideScan(body.kind, body.reason)
    return await answer_command(request, db, clock, doorbell, signed_in, session_id, command, body)


@router.get("/sessions/{session_id}/labels")
async def bag_labels(
    db: DB,
    *,
    _: SignedIn = require_permission("session.read"),
    row: SessionRow,
) -> JSONResponse:
    """The label of each bag that scans now (voided copies left out), as printed."""
    current = [labels.as_json(label) for label in await labels.current_labels(db, row.id)]
    await db.rollback()
    return JSONResponse({"labels": current})


@router.post("/sessions/{session_id}/bags/{bag}/labels", response_model=SessionView)
async def reprint_label(
    request: Request,
    session_id: Id,
    bag: Annotated[int, Path(ge=1, le=99)],
    body: schemas.Empty,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.verify_bags"),
) -> JSONResponse:
    """Print a bag's label again: the new copy is numbered, the one before it is void."""
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: scanning.reprint_label(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            bag,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )
