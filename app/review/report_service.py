"""The report's reads and its one write: one consistent read of a session for the report, and
the audit entry that a copy of the record left the screen."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.auth.models import User
from app.patients.models import Patient
from app.review.check_words import user_ids
from app.review.report_model import EventRecord, PatientFacts, Person
from app.session import codec, read
from app.session.errors import Refusal
from app.session.models import SessionEvent
from app.session.plan import Plan
from app.session.store import load
from app.session.view import SessionView


@dataclass(frozen=True)
class ReportRead:
    """One consistent read of a session: plain values, usable after the transaction."""

    view: SessionView
    events: list[EventRecord]
    users: dict[int, Person]
    approved: Plan | None
    patient_id: int
    patient: PatientFacts
    index_reaction: dict[str, Any]


def _event_record(e: SessionEvent) -> EventRecord:
    return EventRecord(e.seq, e.at, e.kind, json.loads(e.data_json), e.actor_id, e.actor_role)


def _user_ids(view: SessionView, events: Iterable[EventRecord]) -> set[int]:
    ids = {e.actor_id for e in events if e.actor_id is not None}
    for e in events:
        ids |= user_ids(e.kind, e.data)  # a double check's two clinicians
    ids |= {v.recorded_by for v in view.vitals if v.recorded_by is not None}
    ids |= {a.acknowledged_by for a in view.alarms.items if a.acknowledged_by is not None}
    return ids


async def read_report(db: AsyncSession, session_id: int, now: datetime) -> ReportRead | None:
    """Callers begin a read transaction (DEFERRED on SQLite) first."""
    try:
        row = await load(db, session_id)
    except Refusal:
        return None
    view = await read.current_view(db, row, now, full_history=True)
    patient = await db.get(Patient, row.patient_id)
    assert patient is not None
    events = [
        _event_record(e)
        for e in await db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.seq)
        )
    ]
    ids = _user_ids(view, events)
    users = {
        u.id: Person(u.username, u.display_name)
        for u in (await db.scalars(select(User).where(User.id.in_(ids))) if ids else [])
    }
    return ReportRead(
        view=view,
        events=events,
        users=users,
        approved=codec.loads(row.state_json).approved,
        patient_id=row.patient_id,
        patient=PatientFacts(
            patient.family_name,
            patient.given_name,
            patient.mrn,
            patient.birth_date,
            patient.sex,
            patient.weight_kg,
        ),
        index_reaction=json.loads(row.index_reaction_json),
    )


async def record_export(
    db: AsyncSession, now: datetime, actor: Actor, session_id: int, request: RequestInfo
) -> None:
    """A report is a copy of the record leaving the screen: logged like the other exports."""
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="export.report",
        entity="session",
        entity_id=session_id,
        request=request,
    )
    await db.commit()
