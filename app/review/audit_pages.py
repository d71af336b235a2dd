"""Audit search for auditors and physicians: filters, keyset pages, and the chain-integrity
check on demand. The check writes its result into the log, so it is a POST carrying the CSRF
token (a form on the page), never a GET that a link from another site could trigger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.audit import service as audit_service
from app.audit.model import AuditEvent
from app.auth.dependencies import request_info, require_permission
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Clock, Sessionmaker
from app.review.exports import AuditFilters, ExportError, audit_query
from app.templating import templates

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
MAX_ID = 2**31 - 1


@router.get("/audit", response_class=HTMLResponse)
async def audit_search(
    request: Request,
    sessionmaker: Sessionmaker,
    user: Annotated[str, Query(max_length=150)] = "",
    action: Annotated[str, Query(max_length=65)] = "",
    session: Annotated[str, Query(max_length=12)] = "",
    patient: Annotated[str, Query(max_length=12)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    size: Annotated[int, Query(ge=5, le=500)] = PAGE_SIZE,
    _: SignedIn = require_permission("audit.read"),
) -> HTMLResponse:
    """The same filters as the CSV export (app.review.exports.AuditFilters), newest first."""
    raw = {
        "user": user,
        "action": action,
        "session": session,
        "patient": patient,
        "since": since,
        "until": until,
    }
    errors: dict[str, str] = {}
    rows: list[AuditRow] = []
    more = False
    try:
        filters = AuditFilters.parse(**raw)
    except ExportError as error:
        errors[error.field] = error.message
    else:
        async with sessionmaker() as db:
            await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
            seq = AuditEvent.__table__.c.seq
            query = audit_query(filters)
            if before is not None:
                query = query.where(seq < before)
            result = await db.execute(query.order_by(seq.desc()).limit(size + 1))
            found = result.mappings().all()
            await db.rollback()
        rows = [AuditRow.of(r) for r in found[:size]]
        more = len(found) > size
    given = {k: v.strip() for k, v in raw.items() if v.strip()}
    if size != PAGE_SIZE:
        given["size"] = str(size)
    return templates.TemplateResponse(
        request,
        "audit/search.html",
        {
            "raw": raw,
            "errors": errors,
            "rows": rows,
            "more": more,
            "next_before": rows[-1].seq if rows and more else None,
            "query": urlencode(given),
            "report": None,
        },
        status_code=422 if errors else 200,
    )


@dataclass(frozen=True)
class AuditRow:
    seq: int
    occurred_at: datetime
    actor: str
    role: str
    action: str
    entity: str
    reason: str
    before: str
    after: str
    request_id: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> AuditRow:
        entity = f"{row['entity'] or ''} {row['entity_id'] or ''}".strip()
        return cls(
            row["seq"],
            row["occurred_at"],
            row["actor_username"],
            row["actor_role"],
            row["action"],
            entity,
            row["reason"] or "",
            row["before_json"] or "",
            row["after_json"] or "",
            row["request_id"] or "",
        )


@router.post("/audit/verify", response_class=HTMLResponse)
async def audit_verify(
    request: Request,
    sessionmaker: Sessionmaker,
    clock: Clock,
    signed_in: SignedIn = require_permission("audit.read"),
) -> HTMLResponse:
    """Recompute the whole chain now; the result is recorded in the chain itself. (A GET of this
    path is 405: it writes, so only the page's form, with its CSRF token, runs it.)"""
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)
        report = await audit_service.verify(db)
        await db.rollback()
    async with sessionmaker() as db:
        await audit_service.append_and_commit(
            db,
            at=clock.now(),
            actor=signed_in.actor,
            action="audit.verify",
            entity="audit",
            entity_id=None,
            after={
                "ok": report.ok,
                "entries": report.entries,
                "last_seq": report.last_seq,
                "first_bad_seq": report.first_bad_seq,
                "reason": report.reason,
            },
            request=request_info(request),
        )
    return templates.TemplateResponse(
        request,
        "audit/search.html",
        {
            "raw": {},
            "errors": {},
            "rows": [],
            "more": False,
            "next_before": None,
            "query": "",
            "report": report,
        },
        status_code=200,
    )
