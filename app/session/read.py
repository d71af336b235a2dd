"""Reading a session for its view: the facts are loaded once, in the caller's transaction, and
handed to the pure builder (app.session.view). Reads only."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alarms import logic
from app.auth.models import User
from app.patients.models import Patient
from app.patients.rules import rules_age
from app.session import alarm_board, codec, snapshots
from app.session import machine as M
from app.session.models import DesensitizationSession
from app.session.models import VitalsSet as VitalsRow
from app.session.store import load
from app.session.view import Person, SessionFacts, SessionView, VitalsSet, build, stored_vitals
from app.session.view_json import as_json


def _board(alarms_json: str) -> logic.AlarmBoard:
    return alarm_board.loads(alarms_json, logic.AlarmSettings.for_speed(1.0))


async def vitals_of(db: AsyncSession, session_id: int) -> list[VitalsSet]:
    """Every version of every reading, oldest first, each parsed once."""
    rows = await db.scalars(
        select(VitalsRow).where(VitalsRow.session_id == session_id).order_by(VitalsRow.id)
    )
    return [
        stored_vitals(
            id=r.id,
            reading_id=r.reading_id,
            version=r.version,
            supersedes=r.supersedes_id,
            amendment_reason=r.amendment_reason,
            recorded_at=r.recorded_at,
            recorded_by=r.recorded_by,
            step=r.step_position,
            baseline=r.baseline,
            within_limits=r.within_limits,
            values_json=r.values_json,
        )
        for r in rows
    ]


async def people_of(
    db: AsyncSession, row: DesensitizationSession, state: M.SessionState
) -> dict[int, Person]:
    """The users a view names: who approved, who verified the bags, the assigned nurse."""
    ids = {state.approved_by, state.bags_verified_by, row.assigned_nurse_id} - {None}
    if not ids:
        return {}
    users = await db.scalars(select(User).where(User.id.in_(ids)))
    return {u.id: Person(u.username, u.display_name) for u in users}


async def facts_of(
    db: AsyncSession,
    row: DesensitizationSession,
    state: M.SessionState,
    now: datetime,
    *,
    vitals_upto: int | None = None,
) -> SessionFacts:
    """Everything the view shows beside the state, as of `now`. `vitals_upto`: only the vitals
    sets recorded up to that id (a replay)."""
    patient = await db.get(Patient, row.patient_id)
    vitals = await vitals_of(db, row.id)
    if vitals_upto is not None:
        vitals = [v for v in vitals if v.id <= vitals_upto]
    return SessionFacts(
        id=row.id,
        patient_id=row.patient_id,
        drug=row.drug,
        route=row.route,
        template=row.template,
        risk_tier=row.risk_tier,
        location=row.location,
        assigned_nurse_id=row.assigned_nurse_id,
        diluent=row.diluent,
        last_event_seq=row.last_event_seq,
        screening=json.loads(row.screening_json),
        threshold_overrides=json.loads(row.thresholds_json),
        alarms=_board(row.alarms_json),
        vitals=tuple(vitals),
        age_years=rules_age(patient.birth_date, now.date()) if patient is not None else None,
        people=await people_of(db, row, state),
    )


async def view_of(
    db: AsyncSession, row: DesensitizationSession, state: M.SessionState, now: datetime
) -> SessionView:
    return build(state, await facts_of(db, row, state, now), now)


async def current_view(db: AsyncSession, row: DesensitizationSession, now: datetime) -> SessionView:
    return await view_of(db, row, codec.loads(row.state_json), now)


async def answer_of(
    db: AsyncSession, row: DesensitizationSession, state: M.SessionState, now: datetime
) -> dict[str, Any]:
    """The view as a command's JSON answer."""
    return as_json(await view_of(db, row, state, now))


async def view_at(db: AsyncSession, session_id: int, seq: int) -> SessionView | None:
    """The session's view as its screens and its API showed it once the change that wrote event
    `seq` was committed (one change can write several events: vitals that open a reaction and
    raise alarms): rebuilt from that change's snapshot and the vitals recorded up to it. None
    for a seq that does not exist (yet)."""
    row = await load(db, session_id)
    if seq < 1:
        return None
    snap = await snapshots.at(db, session_id, seq)
    if snap is None:
        return None
    state = codec.loads(snap.parts.state)
    facts = await facts_of(db, row, state, snap.at, vitals_upto=snap.vitals_upto)
    then = replace(
        facts,
        last_event_seq=snap.seq,
        threshold_overrides=json.loads(snap.parts.thresholds),
        alarms=_board(snap.parts.alarms),
    )
    return build(state, then, snap.at)
