"""The home page: what this person may do, by role, and for the bedside the sessions running
now with what is due next."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import DB, Clock
from app.live.present import ACTIVE, STATUS_TITLES
from app.patients.models import Patient
from app.permissions import is_allowed
from app.session import codec
from app.session.models import DesensitizationSession
from app.templating import templates

router = APIRouter()
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveSession:
    id: int
    patient: str
    mrn: str
    drug: str
    status: str
    status_title: str
    step: int | None  # 1-based
    steps: int
    due: str  # what comes next, in words
    due_at: datetime | None  # when, if a time is set


def _next_due(state, now: datetime) -> tuple[str, datetime | None]:
    if state.status == "step_due":
        return "pump change due now", state.due_since
    if state.status == "paused":
        return "paused: vitals every 5 min", None
    if state.status == "running" and state.deadline is not None:
        return "next step", state.deadline
    if state.status == "observing":
        return (
            ("observation over: complete", None)
            if state.observation_done
            else (
                "end of observation",
                state.deadline,
            )
        )
    if state.status == "ready":
        return "checklist, then start", None
    return "waiting for approval", None


async def active_sessions(db: AsyncSession, now: datetime) -> list[ActiveSession]:
    await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
    rows = await db.execute(
        select(DesensitizationSession, Patient)
        .join(Patient, Patient.id == DesensitizationSession.patient_id)
        .where(DesensitizationSession.status.in_(ACTIVE))
        .order_by(DesensitizationSession.id)
    )
    out = []
    for session, patient in rows:
        try:
            state = codec.loads(session.state_json)
        except Exception:
            # One session that cannot be read (a defect, a hand edit) is left out here and
            # shown as such on the board; it must not take this page down.
            logger.exception("session %s cannot be shown on the home page", session.id)
            continue
        due, at = _next_due(state, now)
        out.append(
            ActiveSession(
                id=session.id,
                patient=f"{patient.family_name}, {patient.given_name}",
                mrn=patient.mrn,
                drug=session.drug,
                status=state.status,
                status_title=STATUS_TITLES[state.status],
                step=None if state.current is None else state.current + 1,
                steps=len(state.plan.steps),
                due=due,
                due_at=at,
            )
        )
    await db.rollback()
    order = {"step_due": 0, "paused": 1, "running": 2, "observing": 3, "ready": 4, "planned": 5}
    return sorted(out, key=lambda s: (order[s.status], s.due_at or now, s.id))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(
    request: Request, db: DB, clock: Clock, signed_in: SignedIn = require_permission("account.use")
) -> HTMLResponse:
    sessions = []
    if is_allowed(signed_in.user.role, "session.bedside"):
        sessions = await active_sessions(db, clock.now())
    return templates.TemplateResponse(request, "home.html", {"active": sessions})
