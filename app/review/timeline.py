"""The session timeline: every event in order with who, when and what changed, filtered by kind,
and the bedside view as it was at any event (rebuilt from the snapshots by
app.session.read.view_at). Reads only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import require_permission
from app.auth.models import User
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Sessionmaker
from app.live import render
from app.patients.models import Patient
from app.patients.rules import rules_age
from app.review.check_words import CHECK_EVENTS, check_words, user_ids
from app.review.report_model import Person
from app.session import codec, read
from app.session.errors import Refusal
from app.session.models import DesensitizationSession, SessionEvent, SessionSnapshot
from app.session.schemas import MAX_ID
from app.session.snapshots import whole
from app.session.technical_alarms import condition_words
from app.templating import no_such_session, templates
from app.vitals.rules import symptom_words

router = APIRouter(include_in_schema=False)

Kind = Literal["all", "commands", "vitals", "alarms", "reactions"]
KINDS: tuple[str, ...] = ("all", "commands", "vitals", "alarms", "reactions")


def category(kind: str) -> str:
    """Which filter an event kind belongs to."""
    if kind.startswith("alarm_"):
        return "alarms"
    if kind.startswith("vitals"):
        return "vitals"
    if kind.startswith(("reaction", "treatment")):
        return "reactions"
    return "commands"


@dataclass(frozen=True)
class Moment:
    """The session's state summary after a change: what 'before' and 'after' show."""

    seq: int
    version: int
    status: str
    step: int | None

    def text(self) -> str:
        step = f", step {self.step + 1}" if self.step is not None else ""
        return f"{self.status}{step} (v{self.version})"


def _moments(snapshots: list[SessionSnapshot]) -> list[Moment]:
    out = []
    for snap in whole(snapshots):
        state = codec.loads(snap.parts.state)
        out.append(Moment(snap.seq, snap.version, state.status, state.current))
    return out


def before_after(moments: list[Moment], seq: int) -> tuple[Moment | None, Moment | None]:
    """The state before the change that wrote event `seq`, and after it."""
    before = None
    after = None
    for moment in moments:
        if moment.seq < seq:
            before = moment
        elif after is None:
            after = moment
    return before, after


def _details(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if key == "symptoms" and isinstance(value, list):
            shown = ", ".join(symptom_words(str(code)) for code in value)
        elif key == "condition" and isinstance(value, str):
            shown = condition_words(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            shown = "; ".join(value)
        elif isinstance(value, dict | list):
            shown = json.dumps(value, default=str)
        else:
            shown = str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def _event_details(kind: str, data: dict[str, Any], users: dict[int, User]) -> str:
    """A check in words (app.review.check_words); any other event as its fields."""

    def name(user_id: int | None) -> str:
        user = users.get(user_id) if user_id is not None else None
        if user is None:
            return "someone" if user_id is None else f"user {user_id}"
        return Person(user.username, user.display_name).name

    words = check_words(kind, data, name)
    if words is None:
        return _details(data)
    return f"{words[0]}: {words[1]}"


async def _load(db: AsyncSession, session_id: int):
    row = await db.get(DesensitizationSession, session_id)
    if row is None:
        return None
    events = list(
        await db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.seq)
        )
    )
    snapshots = list(
        await db.scalars(
            select(SessionSnapshot)
            .where(SessionSnapshot.session_id == session_id)
            .order_by(SessionSnapshot.seq)
        )
    )
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    for e in events:
        if e.kind in CHECK_EVENTS:  # a double check names its two clinicians
            actor_ids |= user_ids(e.kind, json.loads(e.data_json))
    users = {u.id: u for u in await db.scalars(select(User).where(User.id.in_(actor_ids or {0})))}
    patient = await db.get(Patient, row.patient_id)
    return row, events, snapshots, users, patient


@router.get("/sessions/{session_id:int}/timeline", response_class=HTMLResponse)
async def timeline(
    request: Request,
    session_id: int,
    sessionmaker: Sessionmaker,
    kind: Kind = "all",
    at: int | None = Query(default=None, ge=0, le=2**31 - 1),
    _: SignedIn = require_permission("session.read"),
) -> HTMLResponse:
    if not 1 <= session_id <= MAX_ID:  # beyond any id the databases can hold
        return no_such_session(request, session_id)
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        loaded = await _load(db, session_id)
        if loaded is None:
            await db.rollback()
            return no_such_session(request, session_id)
        row, events, snapshots, users, patient = loaded
        last = events[-1].seq if events else 0
        chosen = last if at is None else max(1, min(at, last))
        try:
            view = await read.view_at(db, session_id, chosen)
        except Refusal:
            view = None
        summary = {"drug": row.drug, "id": row.id, "status": row.status}
        person = (
            render.PatientInfo(patient.id, patient.mrn, patient.family_name, patient.given_name)
            if patient
            else None
        )
        birth = patient.birth_date if patient else None
        # Plain values before the transaction ends: ORM rows expire with it.
        moments = _moments(snapshots)
        then: datetime | None = next((x.at for x in snapshots if x.seq >= chosen), None)
        rows = []
        for e in events:
            if kind != "all" and category(e.kind) != kind:
                continue
            before, after = before_after(moments, e.seq)
            user = users.get(e.actor_id) if e.actor_id is not None else None
            rows.append(
                {
                    "seq": e.seq,
                    "at": e.at,
                    "kind": e.kind,
                    "category": category(e.kind),
                    "actor": user.username if user else "system",
                    "role": e.actor_role,
                    "details": _event_details(e.kind, json.loads(e.data_json), users),
                    "before": before.text() if before else "—",
                    "after": after.text() if after else "—",
                }
            )
        await db.rollback()
    context: dict[str, Any] = {
        "session": summary,
        "patient": person,
        "event_rows": rows,
        "kind": kind,
        "kinds": KINDS,
        "chosen": chosen,
        "last": last,
        "previous_seq": max(1, chosen - 1),
        "next_seq": min(last, chosen + 1),
    }
    if view is not None and person is not None and then is not None:
        age = rules_age(birth, then.date()) if birth else None
        # Shown read-only: the replay takes the auditor's view, which has no actions.
        page = render.SessionPage(view, person, age, then, [], "auditor")
        context |= render.page_context(page)
        context["replay_at"] = then
        context["read_only"] = True  # a past moment: no control of any role
    return templates.TemplateResponse(request, "review/timeline.html", {**context, "oob": False})
