"""A session's full vitals history, a page at a time (the bedside view shows only the newest
sets): the same read as GET /api/v1/sessions/{id}/vitals, laid out as a table. Reads only."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Clock, Sessionmaker
from app.live import present as P
from app.session import read
from app.session.models import DesensitizationSession
from app.session.schemas import MAX_ID
from app.templating import no_such_session, templates

router = APIRouter(include_in_schema=False)


@router.get("/sessions/{session_id:int}/vitals", response_class=HTMLResponse)
async def vitals_history(
    request: Request,
    session_id: int,
    sessionmaker: Sessionmaker,
    clock: Clock,
    before: int | None = Query(default=None, ge=1, le=MAX_ID),
    _: SignedIn = require_permission("session.read"),
) -> HTMLResponse:
    if not 1 <= session_id <= MAX_ID:  # beyond any id the databases can hold
        return no_such_session(request, session_id)
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        row = await db.get(DesensitizationSession, session_id)
        if row is None:
            await db.rollback()
            return no_such_session(request, session_id)
        drug = row.drug
        page = await read.history_page(db, row, clock.now(), before=before, limit=read.HISTORY_PAGE)
        await db.rollback()
    rows = [(P.row_of(v), v.current) for v in page.items]
    context = {"sid": session_id, "drug": drug, "page": page, "rows": rows, "before": before}
    return templates.TemplateResponse(request, "sessions/vitals_history.html", context)
