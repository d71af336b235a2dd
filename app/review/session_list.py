"""Sessions list and search for auditors and physicians: every session, past and present, by
patient, drug, date, state and whether the patient reacted, each row linking to its timeline
and report. A read; the filters are parsed before any query and a bad one changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Select, func, or_, select

from app import localtime
from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Sessionmaker
from app.live.present import STATUS_TITLES
from app.patients.models import Patient
from app.session.models import DesensitizationSession, SessionReaction
from app.templating import templates
from app.text import text_problem

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
MAX_ID = 2**31 - 1
TEXT_MAX = 100
FIRST_DAY, LAST_DAY = date(1, 1, 2), date(9999, 12, 30)
REACTED_CHOICES = {"": "either", "yes": "with a reaction", "no": "without a reaction"}


class FilterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SessionFilters:
    """``patient``: part of the name or MRN; ``drug``: part of its name; ``since``/``until``:
    the facility's calendar days the session was drafted on, both inclusive; ``state``: one
    status; ``reacted``: True, False or either."""

    patient: str | None = None
    drug: str | None = None
    since: date | None = None
    until: date | None = None
    state: str | None = None
    reacted: bool | None = None

    @classmethod
    def parse(
        cls, *, patient: str, drug: str, since: str, until: str, state: str, reacted: str
    ) -> SessionFilters:
        first, last = _day("since", since), _day("until", until)
        if first and last and first > last:
            raise FilterError("since", f"From ({first}) is after until ({last}).")
        state = state.strip()
        if state and state not in STATUS_TITLES:
            raise FilterError("state", f"State must be one of: {', '.join(STATUS_TITLES)}.")
        reacted = reacted.strip()
        if reacted not in REACTED_CHOICES:
            raise FilterError("reacted", "Reaction must be yes, no or blank.")
        return cls(
            patient=_text("patient", patient),
            drug=_text("drug", drug),
            since=first,
            until=last,
            state=state or None,
            reacted={"yes": True, "no": False}.get(reacted),
        )

    def query(self) -> Select:
        s, p = DesensitizationSession, Patient
        reactions = (
            select(
                SessionReaction.session_id.label("session_id"),
                func.count().label("count"),
                func.max(SessionReaction.brown_grade).label("worst"),
            )
            .group_by(SessionReaction.session_id)
            .subquery()
        )
        query = (
            select(
                s.id,
                s.drug,
                s.status,
                s.created_at,
                s.current_step,
                p.id.label("patient_id"),
                p.family_name,
                p.given_name,
                p.mrn,
                func.coalesce(reactions.c.count, 0).label("reactions"),
                reactions.c.worst,
            )
            .join(p, p.id == s.patient_id)
            .outerjoin(reactions, reactions.c.session_id == s.id)
        )
        if self.patient:
            needle = self.patient.lower()
            query = query.where(
                or_(
                    func.lower(p.family_name).contains(needle, autoescape=True),
                    func.lower(p.given_name).contains(needle, autoescape=True),
                    func.lower(p.mrn).contains(needle, autoescape=True),
                )
            )
        if self.drug:
            query = query.where(func.lower(s.drug).contains(self.drug.lower(), autoescape=True))
        if self.since:
            query = query.where(s.created_at >= _start_of(self.since))
        if self.until:
            query = query.where(s.created_at < _start_of(self.until + timedelta(days=1)))
        if self.state:
            query = query.where(s.status == self.state)
        if self.reacted is True:
            query = query.where(reactions.c.count > 0)
        elif self.reacted is False:
            query = query.where(reactions.c.count.is_(None))
        return query


def _text(name: str, raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    if len(text) > TEXT_MAX:
        raise FilterError(name, f"{name.capitalize()} must have at most {TEXT_MAX} characters.")
    problem = text_problem(text)
    if problem:
        raise FilterError(name, f"{name.capitalize()} must be plain text: it {problem}.")
    return text


def _day(name: str, raw: str) -> date | None:
    text = raw.strip()
    if not text:
        return None
    label = "From" if name == "since" else "Until"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise FilterError(
            name, f"{label} must be a date such as 2026-12-07, got {shown!r}."
        ) from None
    # A day's bounds in any zone must still be a date: the first and last days cannot be.
    if not FIRST_DAY <= day <= LAST_DAY:
        raise FilterError(name, f"{label} must be between {FIRST_DAY} and {LAST_DAY}.")
    return day


def _start_of(day: date) -> datetime:
    """Midnight at the facility, as the stored (UTC) times are compared."""
    return datetime.combine(day, time(), tzinfo=localtime.zone())


@dataclass(frozen=True)
class SessionRow:
    id: int
    patient_id: int
    patient: str
    mrn: str
    drug: str
    status: str
    status_title: str
    created_at: datetime
    step: int | None
    reactions: int
    worst_brown: int | None


@router.get("/sessions", response_class=HTMLResponse)
async def session_search(
    request: Request,
    sessionmaker: Sessionmaker,
    patient: Annotated[str, Query(max_length=TEXT_MAX + 20)] = "",
    drug: Annotated[str, Query(max_length=TEXT_MAX + 20)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    reacted: Annotated[str, Query(max_length=5)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    _: SignedIn = require_permission("session.search"),
) -> HTMLResponse:
    """Newest first, a page at a time (``before``: the last id shown)."""
    raw = {
        "patient": patient,
        "drug": drug,
        "since": since,
        "until": until,
        "state": state,
        "reacted": reacted,
    }
    errors: dict[str, str] = {}
    rows: list[SessionRow] = []
    more = False
    try:
        filters = SessionFilters.parse(**raw)
    except FilterError as error:
        errors[error.field] = error.message
    else:
        query = filters.query()
        if before is not None:
            query = query.where(DesensitizationSession.id < before)
        query = query.order_by(DesensitizationSession.id.desc()).limit(PAGE_SIZE + 1)
        async with sessionmaker() as db:
            await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
            found = (await db.execute(query)).mappings().all()
            await db.rollback()
        more = len(found) > PAGE_SIZE
        rows = [
            SessionRow(
                id=r["id"],
                patient_id=r["patient_id"],
                patient=f"{r['family_name']}, {r['given_name']}",
                mrn=r["mrn"],
                drug=r["drug"],
                status=r["status"],
                status_title=STATUS_TITLES.get(r["status"], r["status"]),
                created_at=r["created_at"],
                step=r["current_step"],
                reactions=r["reactions"],
                worst_brown=r["worst"],
            )
            for r in found[:PAGE_SIZE]
        ]
    given = {k: v.strip() for k, v in raw.items() if v.strip()}
    return templates.TemplateResponse(
        request,
        "review/sessions.html",
        {
            "raw": raw,
            "errors": errors,
            "rows": rows,
            "next_before": rows[-1].id if rows and more else None,
            "query": urlencode(given),
            "states": STATUS_TITLES,
            "reacted_choices": REACTED_CHOICES,
        },
        status_code=422 if errors else 200,
    )
