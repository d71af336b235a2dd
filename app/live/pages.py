"""The bedside view and the attending board: full pages whose regions the websocket keeps
current (app.live). Thin: authorize, read, render."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Clock, Sessionmaker
from app.live import render
from app.live.board import board_context
from app.live.dependencies import Hub, LiveRenderer
from app.session.schemas import MAX_ID
from app.templating import no_such_session, templates

router = APIRouter(include_in_schema=False)


@router.get("/sessions/{session_id:int}", response_class=HTMLResponse)
async def bedside(
    request: Request,
    session_id: int,
    sessionmaker: Sessionmaker,
    clock: Clock,
    hub: Hub,
    signed_in: SignedIn = require_permission("session.read"),
) -> HTMLResponse:
    if not 1 <= session_id <= MAX_ID:  # beyond any id the databases can hold
        return no_such_session(request, session_id)
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        page = await render.load_session_page(db, session_id, clock.now(), signed_in.user.role)
        await db.rollback()
    if page is None:
        return no_such_session(request, session_id)
    page.screens = hub.count(session_id)
    context = {
        **render.page_context(page),
        "may_actions": render.may_actions(signed_in.user.role),
        "oob": False,
    }
    return templates.TemplateResponse(request, "sessions/bedside.html", context)


@router.get("/board", response_class=HTMLResponse)
async def board(
    request: Request,
    live_renderer: LiveRenderer,
    hub: Hub,
    signed_in: SignedIn = require_permission("session.read"),
) -> HTMLResponse:
    tiles = await live_renderer.tiles(hub)
    context = {
        **board_context(tiles),
        "may_actions": render.may_actions(signed_in.user.role),
        "oob": False,
    }
    return templates.TemplateResponse(request, "board/page.html", context)
