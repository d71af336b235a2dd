"""Export routes: the audit log as CSV and JSON Lines and vitals as CSV (streamed), a session
as a FHIR R4 Bundle.

Each answer follows the same order: check the query (422 before anything is written or
streamed), end the sign-in transaction, check the session exists (404), append the export's own
audit entry and commit it in a short transaction, then read with sessions of its own (deferred
on SQLite: no write lock while rows stream to a slow client).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock as clocks
from app.audit import service as audit_service
from app.auth.dependencies import request_info, require_permission
from app.auth.models import User
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN, Installation
from app.deps import DB, Clock, Sessionmaker
from app.patients.models import Patient
from app.review import fhir
from app.review.check_words import CHECK_EVENTS, check_records, user_ids
from app.review.exports import (
    AuditFilters,
    ExportError,
    TimeRange,
    stream_audit_csv,
    stream_audit_jsonl,
    stream_vitals_csv,
)
from app.review.report_model import Person, person_name
from app.session import read, schemas, service
from app.session.errors import Refusal
from app.session.models import DesensitizationSession, SessionEvent

router = APIRouter(include_in_schema=False)
SessionId = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]

CSV_TYPE = "text/csv; charset=utf-8"
JSONL_TYPE = "application/jsonl"  # ASCII only: other characters are written as \uXXXX escapes


def _refused(error: ExportError) -> JSONResponse:
    return JSONResponse({"detail": error.message, "field": error.field}, status_code=422)


def _not_found(session_id: int) -> JSONResponse:
    return JSONResponse({"detail": f"no session {session_id}"}, status_code=404)


def _download_headers(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        # Patient data and audit evidence: no cache keeps a copy.
        "Cache-Control": "no-store",
    }


async def _audit_export(
    db: AsyncSession,
    request: Request,
    signed_in: SignedIn,
    *,
    at: datetime,
    action: str,
    entity: str,
    entity_id: int | None,
    after: dict[str, Any],
) -> None:
    """The export's audit entry, committed before a byte of the export is sent."""
    await audit_service.append_and_commit(
        db,
        at=at,
        actor=signed_in.actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        after=after,
        request=request_info(request),
    )


async def _session_exists(sessionmaker: async_sessionmaker[AsyncSession], session_id: int) -> bool:
    async with sessionmaker() as reader:
        await reader.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        found = await reader.scalar(
            select(DesensitizationSession.id).where(DesensitizationSession.id == session_id)
        )
        await reader.rollback()
    return found is not None


def _csv(stream: AsyncIterator[bytes], filename: str) -> StreamingResponse:
    return StreamingResponse(stream, media_type=CSV_TYPE, headers=_download_headers(filename))


def _audit_filter_query(
    user: str | None = None,
    action: str | None = None,
    entity_id: str | None = None,
    session: str | None = None,
    patient: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, str | None]:
    """The audit search page's filters as given (app.review.exports.AuditFilters checks them)."""
    return {
        "user": user,
        "action": action,
        "entity_id": entity_id,
        "session": session,
        "patient": patient,
        "since": since,
        "until": until,
    }


AuditFilterQuery = Annotated[dict[str, str | None], Depends(_audit_filter_query)]


async def _audit_log(
    request: Request,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: clocks.Clock,
    signed_in: SignedIn,
    raw: dict[str, str | None],
    kind: str,
) -> Response:
    try:
        filters = AuditFilters.parse(**raw)
    except ExportError as error:
        return _refused(error)
    await db.rollback()  # end the sign-in read before the export's own short write
    await _audit_export(
        db,
        request,
        signed_in,
        at=clock.now(),
        action=f"export.audit_{kind}",
        entity="audit_event",
        entity_id=None,
        after={"format": kind, "filters": filters.as_dict()},
    )
    if kind == "csv":
        return _csv(stream_audit_csv(sessionmaker, filters), "stepwise-audit.csv")
    return StreamingResponse(
        stream_audit_jsonl(sessionmaker, filters),
        media_type=JSONL_TYPE,
        headers=_download_headers("stepwise-audit.jsonl"),
    )


@router.get("/audit/export.csv")
async def audit_csv(
    request: Request,
    db: DB,
    sessionmaker: Sessionmaker,
    clock: Clock,
    raw: AuditFilterQuery,
    signed_in: SignedIn = require_permission("audit.read"),
) -> Response:
    """The audit log (all columns, ``seq`` order) to read in a spreadsheet, filtered as the audit
    search page filters (app.review.exports.AuditFilters); a cell that would run as a formula
    starts with an apostrophe."""
    return await _audit_log(request, db, sessionmaker, clock, signed_in, raw, "csv")


@router.get("/audit/export.jsonl")
async def audit_jsonl(
    request: Request,
    db: DB,
    sessionmaker: Sessionmaker,
    clock: Clock,
    raw: AuditFilterQuery,
    signed_in: SignedIn = require_permission("audit.read"),
) -> Response:
    """The same entries as JSON Lines, every column verbatim: the form whose hashes can be
    recomputed (app.review.exports.check_audit_jsonl)."""
    return await _audit_log(request, db, sessionmaker, clock, signed_in, raw, "jsonl")


@router.get("/sessions/{session_id:int}/vitals.csv")
async def session_vitals_csv(
    request: Request,
    session_id: SessionId,
    db: DB,
    sessionmaker: Sessionmaker,
    clock: Clock,
    signed_in: SignedIn = require_permission("session.export"),
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """Every version of every vitals set of one session, oldest first."""
    try:
        times = TimeRange.parse(since, until)
    except ExportError as error:
        return _refused(error)
    await db.rollback()
    if not await _session_exists(sessionmaker, session_id):
        return _not_found(session_id)
    await _audit_export(
        db,
        request,
        signed_in,
        at=clock.now(),
        action="export.vitals_csv",
        entity="session",
        entity_id=session_id,
        after={"format": "csv", "filters": times.as_dict()},
    )
    stream = stream_vitals_csv(sessionmaker, times, session_id=session_id)
    return _csv(stream, f"stepwise-session-{session_id}-vitals.csv")


@router.get("/vitals/export.csv")
async def vitals_csv(
    request: Request,
    db: DB,
    sessionmaker: Sessionmaker,
    clock: Clock,
    signed_in: SignedIn = require_permission("session.export"),
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """Every version of every vitals set of every session, in the order they were saved."""
    try:
        times = TimeRange.parse(since, until)
    except ExportError as error:
        return _refused(error)
    await db.rollback()
    await _audit_export(
        db,
        request,
        signed_in,
        at=clock.now(),
        action="export.vitals_csv",
        entity="vitals_set",
        entity_id=None,
        after={"format": "csv", "filters": times.as_dict()},
    )
    stream = stream_vitals_csv(sessionmaker, times)
    return _csv(stream, "stepwise-vitals.csv")


async def _bundle_data(db: AsyncSession, session_id: int, now: datetime) -> dict[str, Any] | None:
    """What the FHIR Bundle is built from, read in one transaction."""
    try:
        row = await service.load(db, session_id)
    except Refusal:
        return None
    view = await read.current_view(db, row, now, full_history=True)
    patient = await db.get(Patient, row.patient_id)
    events = dict(
        (
            await db.execute(
                select(SessionEvent.kind, SessionEvent.at)
                .where(
                    SessionEvent.session_id == session_id,
                    SessionEvent.kind.in_(("started", "completed", "aborted")),
                )
                .order_by(SessionEvent.seq)
            )
        ).all()
    )
    installation = await db.scalar(select(Installation.installation_id).order_by(Installation.id))
    checked = [
        (e, json.loads(e.data_json))
        for e in await db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id, SessionEvent.kind.in_(CHECK_EVENTS))
            .order_by(SessionEvent.seq)
        )
    ]
    ids = {e.actor_id for e, _ in checked if e.actor_id is not None}
    for e, data in checked:
        ids |= user_ids(e.kind, data)
    people = {
        u.id: Person(u.username, u.display_name)
        for u in (await db.scalars(select(User).where(User.id.in_(ids))) if ids else [])
    }
    return {
        "view": view,
        "patient": {
            "mrn": patient.mrn,
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "birth_date": patient.birth_date,
            "sex": patient.sex,
        }
        if patient is not None
        else {},
        "started_at": events.get("started"),
        "ended_at": events.get("completed") or events.get("aborted"),
        "installation_id": installation or "",
        "checks": check_records(checked, lambda user_id: person_name(people, user_id)),
    }


@router.get("/sessions/{session_id:int}/fhir")
async def session_fhir(
    request: Request,
    session_id: SessionId,
    db: DB,
    sessionmaker: Sessionmaker,
    clock: Clock,
    signed_in: SignedIn = require_permission("session.export"),
) -> Response:
    """The session as a FHIR R4 collection Bundle (app.review.fhir)."""
    await db.rollback()
    now = clock.now()
    async with sessionmaker() as reader:
        await reader.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        data = await _bundle_data(reader, session_id, now)
        await reader.rollback()
    if data is None:
        return _not_found(session_id)
    bundle = fhir.session_bundle(
        data["view"],
        data["patient"],
        started_at=data["started_at"],
        ended_at=data["ended_at"],
        installation_id=data["installation_id"],
        checks=data["checks"],
    )
    counts: dict[str, int] = {}
    for entry in bundle["entry"]:
        kind = entry["resource"]["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    await _audit_export(
        db,
        request,
        signed_in,
        at=now,
        action="export.fhir",
        entity="session",
        entity_id=session_id,
        after={"format": "fhir-r4-bundle", "bundle": bundle["id"], "resources": counts},
    )
    body = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(
        body,
        media_type=fhir.MEDIA_TYPE,
        headers=_download_headers(f"stepwise-session-{session_id}-fhir.json"),
    )
