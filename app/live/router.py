"""Websocket endpoints: /ws/sessions/{id} (the bedside view) and /ws/board. The handshake checks
the Origin and the login (app.auth.websocket) and the role may read sessions; then the hub
serves the socket. Screens never write over it: writes are HTTP POSTs."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from app.auth.websocket import POLICY_VIOLATION, WebSocketRefused, authenticate_websocket
from app.deps import PersonClock, Sessionmaker, Settings
from app.live.dependencies import Hub
from app.live.hub import BOARD, Topic
from app.permissions import is_allowed

router = APIRouter()
MAX_ID = 2**31 - 1


async def _serve(
    websocket: WebSocket,
    topic: Topic,
    hub: Hub,
    sessionmaker: Sessionmaker,
    person_clock: PersonClock,
    settings: Settings,
) -> None:
    try:
        signed_in = await authenticate_websocket(websocket, sessionmaker, person_clock, settings)
    except WebSocketRefused:
        await websocket.close(POLICY_VIOLATION)
        return
    if not is_allowed(signed_in.user.role, "session.read"):
        await websocket.close(POLICY_VIOLATION)
        return
    await websocket.accept()
    await hub.serve(websocket, topic, signed_in.user.role, signed_in.login.id)


@router.websocket("/ws/sessions/{session_id:int}")
async def session_socket(
    websocket: WebSocket,
    session_id: int,
    hub: Hub,
    sessionmaker: Sessionmaker,
    person_clock: PersonClock,
    settings: Settings,
) -> None:
    if not 1 <= session_id <= MAX_ID:
        await websocket.close(POLICY_VIOLATION)
        return
    await _serve(websocket, session_id, hub, sessionmaker, person_clock, settings)


@router.websocket("/ws/board")
async def board_socket(
    websocket: WebSocket,
    hub: Hub,
    sessionmaker: Sessionmaker,
    person_clock: PersonClock,
    settings: Settings,
) -> None:
    await _serve(websocket, BOARD, hub, sessionmaker, person_clock, settings)
