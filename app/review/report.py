"""The printable session report page: one read, the export audited, the rows built
(app.review.report_build) and laid out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app import localtime
from app.auth.dependencies import request_info, require_permission
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Clock, Sessionmaker
from app.live import present as P
from app.live import render
from app.review.report_build import build_report
from app.review.report_model import ORIGIN_TITLES, duration_text
from app.review.report_service import read_report, record_export
from app.session.schemas import MAX_ID
from app.templating import no_such_session, templates

router = APIRouter(include_in_schema=False)


@router.get("/sessions/{session_id:int}/report", response_class=HTMLResponse)
async def session_report(
    request: Request,
    session_id: int,
    sessionmaker: Sessionmaker,
    clock: Clock,
    signed_in: SignedIn = require_permission("session.export"),
) -> HTMLResponse:
    if not 1 <= session_id <= MAX_ID:  # beyond any id the databases can hold
        return no_such_session(request, session_id)
    now = clock.now()
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        read = await read_report(db, session_id, now)
        await db.rollback()
    if read is None:
        return no_such_session(request, session_id)
    async with sessionmaker() as db:
        await record_export(db, now, signed_in.actor, session_id, request_info(request))
    report = build_report(
        read.view,
        read.events,
        read.users,
        read.approved,
        read.patient,
        read.index_reaction,
        now,
        localtime.zone(),
    )
    # The trend chart and its alarm limits exactly as the bedside view draws them.
    p = read.patient
    page = render.SessionPage(
        view=read.view,
        patient=render.PatientInfo(read.patient_id, p.mrn, p.family_name, p.given_name),
        age=report.age_for_rules,
        now=now,
        events=[],
        role=signed_in.user.role,
    )
    charts = render.page_context(page)
    return templates.TemplateResponse(
        request,
        "review/report.html",
        {
            "report": report,
            "sbp_chart": charts["sbp_chart"],
            "spo2_chart": charts["spo2_chart"],
            "amount": P.amount,
            "duration": duration_text,
            "origin_titles": ORIGIN_TITLES,
            "labels": P.VITAL_LABELS,
        },
    )
