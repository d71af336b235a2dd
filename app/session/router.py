"""JSON API of sessions (product-spec §3). Thin: parse, authorize, call the service, answer.

Every command accepts `expected_version` in its body (409 when the session moved on) and an
`Idempotency-Key` header (a resend gets the first answer and writes nothing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock as clocks
from app import doorbell as doorbells
from app.alarms import logic
from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.contract import ClockAnswer, SessionView, VitalsHistory
from app.deps import DB, Clock, Doorbell, Settings
from app.protocol.parsing import ProtocolRequest
from app.protocol.screening import IndexReaction
from app.session import creation, read, schemas, service, vitals_commands
from app.session import machine as M
from app.session.alarm_board import reaction_work
from app.session.creation import NewSession
from app.session.errors import Refusal
from app.session.route_support import (
    Id,
    SessionRow,
    answer_call,
    answer_command,
    caller_of,
    cosigner_of,
    idempotency_key_of,
)
from app.session.view_json import as_json, vitals_json
from app.vitals.validation import VitalsReading, VitalsRefusal, validate_vitals

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=SessionView)
async def create_session(
    request: Request,
    body: schemas.SessionCreate,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    settings: Settings,
    signed_in: SignedIn = require_permission("session.create"),
) -> JSONResponse:
    protocol = ProtocolRequest(**body.protocol.model_dump()) if body.protocol else None
    given = body.index_reaction
    index = (
        IndexReaction(
            reactions=frozenset(given.reactions),
            hypotension=given.hypotension,
            desaturation=given.desaturation,
            beta_blocker=given.beta_blocker,
            cardiac_disease=given.cardiac_disease,
            fev1_percent_predicted=given.fev1_percent_predicted,
        )
        if given
        else None
    )
    new = NewSession(
        patient_id=body.patient_id,
        drug=body.drug.strip(),
        route=body.route,
        protocol=protocol,
        index_reaction=index,
        copy_from=body.copy_from,
        spirometry_required=body.spirometry_required,
        pharmacist_signoff=body.pharmacist_signoff,
        observation_minutes=body.observation_minutes,
        vitals_every_minutes=body.vitals_every_minutes or settings.vitals_every_minutes,
        location=(body.location or "").strip() or None,
        assigned_nurse=body.assigned_nurse,
        diluent=(body.diluent or "").strip() or None,
    )
    try:
        created = await creation.create_session(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            new,
            tolerance=settings.tolerance,
            labels=settings.labels,
            scan_to_verify=settings.scan_to_verify,
            idempotency_key=idempotency_key_of(request),
            fingerprint=service.fingerprint_of(request.url.path, body.model_dump(mode="json")),
        )
    except ValueError as error:  # e.g. an unknown index reaction, from the screening
        return JSONResponse({"detail": str(error), "field": "index_reaction"}, status_code=422)
    if isinstance(created, tuple):  # a resend: its first answer
        status, answer = created
        return JSONResponse(answer, status_code=status)
    answer = as_json(await read.current_view(db, created, clock.now()))
    return JSONResponse(answer, status_code=201)


@router.get("/sessions/{session_id}", response_model=SessionView)
async def get_session(
    db: DB,
    clock: Clock,
    *,
    # Declared after the sign-in check, so an unknown session is no answer to a stranger.
    _: SignedIn = require_permission("session.read"),
    row: SessionRow,
) -> JSONResponse:
    return JSONResponse(as_json(await read.current_view(db, row, clock.now())))


@router.get("/sessions/{session_id}/at/{seq}", response_model=SessionView)
async def session_at(
    request: Request,
    session_id: Id,
    seq: Annotated[int, Path(ge=0, le=schemas.MAX_ID)],
    db: DB,
    _: SignedIn = require_permission("session.read"),
) -> JSONResponse:
    """The session's view as it was right after event `seq` (the timeline's replay)."""
    then = await read.view_at(db, session_id, seq)
    if then is None:
        return JSONResponse({"detail": f"session {session_id} has no event {seq} yet"}, 404)
    return JSONResponse(as_json(then))


@router.get("/sessions/{session_id}/vitals", response_model=VitalsHistory)
async def vitals_history(
    db: DB,
    clock: Clock,
    before: Annotated[int | None, Query(ge=1, le=schemas.MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=read.HISTORY_PAGE_MAX)] = read.HISTORY_PAGE,
    *,
    _: SignedIn = require_permission("session.read"),
    row: SessionRow,
) -> JSONResponse:
    """Every stored vitals set, newest first, a page at a time (the session's view carries
    only the newest): ask again with `before` = `next_before` until it is null."""
    page = await read.history_page(db, row, clock.now(), before=before, limit=limit)
    return JSONResponse(
        {
            "session_id": row.id,
            "total": page.total,
            "items": [vitals_json(v) for v in page.items],
            "next_before": page.next_before,
        }
    )


@router.get("/clock", response_model=ClockAnswer)
async def server_clock(
    clock: Clock, _: SignedIn = require_permission("account.use")
) -> dict[str, Any]:
    """The server's time and speed: every screen shows it, and a training banner when fast."""
    return {"now": clock.now().isoformat(), "speed": clock.speed, "training": clock.speed > 1}


# Commands without parameters: (path, command, permission).
# Commands that take nothing but the session: made with no arguments.
SIMPLE_COMMANDS: tuple[tuple[str, Callable[[], M.Command], str], ...] = (
    ("approve", M.Approve, "session.approve"),
    ("verify-bags", M.VerifyBags, "session.verify_bags"),
    ("complete", M.Complete, "session.bedside"),
)


def _simple_endpoint(command: Callable[[], M.Command], action: str):
    async def endpoint(
        request: Request,
        session_id: Id,
        body: schemas.Empty,
        db: DB,
        clock: Clock,
        doorbell: Doorbell,
        signed_in: SignedIn = require_permission(action),
    ) -> JSONResponse:
        return await answer_command(
            request, db, clock, doorbell, signed_in, session_id, command(), body
        )

    return endpoint


for _path, _command_type, _action in SIMPLE_COMMANDS:
    router.add_api_route(
        f"/sessions/{{session_id}}/{_path}",
        _simple_endpoint(_command_type, _action),
        response_model=SessionView,
        methods=["POST"],
        name=_path.replace("-", "_"),
    )


@router.post("/sessions/{session_id}/start", response_model=SessionView)
async def start(
    request: Request,
    session_id: Id,
    body: schemas.StartIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    settings: Settings,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    """Start step 1 once the checklist is complete. A baseline that meets HIGH criteria is
    refused (409) unless a physician sends `override_reason`; the override is audited."""
    cosigner = await cosigner_of(request, db, clock, settings, signed_in, body, session_id)
    command = M.Start(body.override_reason, cosigner)
    return await answer_command(request, db, clock, doorbell, signed_in, session_id, command, body)


@router.post("/sessions/{session_id}/assignment", response_model=SessionView)
async def assignment(
    request: Request,
    session_id: Id,
    body: schemas.AssignmentIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    """Set where the patient sits (chair, bay) and the nurse at the bedside (a nurse's user
    name); empty clears. Shown on the board; audited."""
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: creation.assign(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            (body.location or "").strip() or None,
            (body.assigned_nurse or "").strip() or None,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )


@router.post("/sessions/{session_id}/plan/edit", response_model=SessionView)
async def edit_plan(
    request: Request,
    session_id: Id,
    body: schemas.PlanEditIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.create"),
) -> JSONResponse:
    """Insert a step, delete an inserted one, or change a rate/duration/dose — before approval.
    The bag recipe and the last step are recomputed by the protocol engine."""
    needed = "after" if body.action == "insert" else "step"
    if getattr(body, needed) is None:
        return JSONResponse({"detail": f"{body.action} needs '{needed}'", "field": needed}, 422)
    edit = body.model_dump(mode="json", exclude={"expected_version"}, exclude_none=True)
    status, payload = await service.edit_plan(
        db,
        clock,
        doorbell,
        caller_of(request, signed_in),
        session_id,
        edit,
        expected_version=body.expected_version,
        idempotency_key=idempotency_key_of(request),
        fingerprint=service.fingerprint_of(request.url.path, body.model_dump(mode="json")),
    )
    return JSONResponse(payload, status_code=status)


@router.post("/sessions/{session_id}/checklist", response_model=SessionView)
async def checklist(
    request: Request,
    session_id: Id,
    body: schemas.ChecklistIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    premeds = tuple(
        M.Premedication(p.drug, p.dose, p.route, p.given_at) for p in body.premedications
    )
    command = M.ChecklistItem(body.item, body.done, premeds, body.none_reason)
    return await answer_command(request, db, clock, doorbell, signed_in, session_id, command, body)


def _raw_vitals(body: schemas.VitalsIn) -> dict[str, Any]:
    """The measured values of a body, without the request's own fields."""
    meta = ("expected_version", "reason", "confirm")
    return {k: v for k, v in body.model_dump().items() if k not in meta}


def _reading(body: schemas.VitalsIn, spirometry_required: bool) -> VitalsReading:
    reading = validate_vitals(_raw_vitals(body), spirometry_required=spirometry_required)
    if isinstance(reading, VitalsRefusal):
        raise Refusal("invalid", reading.message, field=",".join(reading.fields))
    return reading


@router.post("/sessions/{session_id}/vitals", response_model=SessionView)
async def vitals(
    request: Request,
    session_id: Id,
    body: schemas.VitalsIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: vitals_commands.record_vitals(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            _raw_vitals(body),
            confirmed=body.confirm,
            expected_version=body.expected_version,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )


@router.post("/sessions/{session_id}/vitals/{vitals_id}/amend", response_model=SessionView)
async def amend_vitals(
    request: Request,
    session_id: Id,
    vitals_id: Id,
    body: schemas.VitalsAmendIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: vitals_commands.amend_vitals(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            vitals_id,
            _reading(body, False),
            body.reason,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )


@router.post("/sessions/{session_id}/reactions", response_model=SessionView)
async def report_reaction(
    request: Request,
    session_id: Id,
    body: schemas.ReactionIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    command = M.ReportReaction(tuple(body.symptoms), body.onset_at, body.stopped_at, body.note)
    return await answer_command(
        request, db, clock, doorbell, signed_in, session_id, command, body, alarm_work=reaction_work
    )


@router.post("/sessions/{session_id}/reactions/{number}/treatments", response_model=SessionView)
async def record_treatment(
    request: Request,
    session_id: Id,
    number: Id,
    body: schemas.TreatmentIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    await service.check_open_reaction(db, session_id, number)
    command = M.RecordTreatment(body.drug, body.dose, body.route, body.given_at)
    return await answer_command(request, db, clock, doorbell, signed_in, session_id, command, body)


@router.post("/sessions/{session_id}/reactions/{number}/resolve", response_model=SessionView)
async def resolve_reaction(
    request: Request,
    session_id: Id,
    number: Id,
    body: schemas.ResolveIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    await service.check_open_reaction(db, session_id, number)
    command = M.ResolveReaction(body.brown_grade, body.ctcae_grade, body.resolved_at, body.note)
    return await answer_command(
        request, db, clock, doorbell, signed_in, session_id, command, body, alarm_work=reaction_work
    )


@router.post("/sessions/{session_id}/alarms/{alarm_id}/acknowledge", response_model=SessionView)
async def acknowledge_alarm(
    request: Request,
    session_id: Id,
    alarm_id: Id,
    body: schemas.Empty,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    """Acknowledge (logged by person and time): a latched HIGH ends, escalation is cancelled."""
    user = signed_in.user.id
    return await _alarm_command(
        request,
        db,
        clock,
        doorbell,
        signed_in,
        session_id,
        body,
        lambda board, now: logic.acknowledge(board, alarm_id, user, now),
    )


@router.post("/sessions/{session_id}/alarms/audio-pause", response_model=SessionView)
async def pause_alarm_audio(
    request: Request,
    session_id: Id,
    body: schemas.Empty,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    """Silence the sounding alarms for 2 minutes; acknowledges nothing."""
    user = signed_in.user.id
    speed = clock.speed
    return await _alarm_command(
        request,
        db,
        clock,
        doorbell,
        signed_in,
        session_id,
        body,
        # two minutes of the nurse's time, however fast a training clock runs
        lambda board, now: logic.pause_audio(board, user, now, logic.AUDIO_PAUSE * speed),
    )


async def _alarm_command(
    request: Request,
    db: AsyncSession,
    clock: clocks.Clock,
    doorbell: doorbells.Doorbell,
    signed_in: SignedIn,
    session_id: Id,
    body: schemas.Versioned,
    change: Callable[[logic.AlarmBoard, datetime], logic.Result],
) -> JSONResponse:
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: service.run_alarm_command(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            change,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )


@router.post("/sessions/{session_id}/thresholds", response_model=SessionView)
async def set_thresholds(
    request: Request,
    session_id: Id,
    body: schemas.ThresholdsIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.thresholds"),
) -> JSONResponse:
    """Change this session's alarm thresholds (physician; audited with the reason)."""
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: vitals_commands.set_thresholds(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            {k: str(v) for k, v in body.overrides.items()},
            body.reason,
            idempotency_key=key,
            fingerprint=fingerprint,
        ),
    )


@router.post("/sessions/{session_id}/pause", response_model=SessionView)
async def pause(
    request: Request,
    session_id: Id,
    body: schemas.PauseIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.bedside"),
) -> JSONResponse:
    return await answer_command(
        request,
        db,
        clock,
        doorbell,
        signed_in,
        session_id,
        M.Pause(body.reason, body.stopped_at),
        body,
    )


@router.post("/sessions/{session_id}/resume", response_model=SessionView)
async def resume(
    request: Request,
    session_id: Id,
    body: schemas.ResumeIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.resume"),
) -> JSONResponse:
    """Resume after a hold or a resolved reaction (physician). Refused (409) while the fresh
    vitals breach a MEDIUM or HIGH limit, or for finish/repeat after a Brown grade 3 reaction,
    unless `override_reason` is given (audited). With `dry_run` the answer is the session as
    the resume would leave it (`"dry_run": true`), and nothing is written."""
    command = M.Resume(
        body.resume_from,
        Decimal(body.stretch),
        body.insert_intermediate,
        body.cap_rate_ml_h,
        body.override_reason,
    )
    if body.dry_run:
        status, payload = await service.preview(
            db, clock, caller_of(request, signed_in), session_id, command
        )
        return JSONResponse(payload, status_code=status)
    return await answer_command(request, db, clock, doorbell, signed_in, session_id, command, body)


@router.post("/sessions/{session_id}/abort", response_model=SessionView)
async def abort(
    request: Request,
    session_id: Id,
    body: schemas.AbortIn,
    db: DB,
    clock: Clock,
    doorbell: Doorbell,
    signed_in: SignedIn = require_permission("session.abort"),
) -> JSONResponse:
    """Abort (physician, with a reason). A reaction still open is closed by the abort: send
    its `reaction_brown_grade` and `reaction_outcome` (422 without them), so the record ends
    graded."""
    command = M.Abort(
        body.reason, body.reaction_brown_grade, body.reaction_ctcae_grade, body.reaction_outcome
    )
    return await answer_command(
        request, db, clock, doorbell, signed_in, session_id, command, body, alarm_work=reaction_work
    )
