"""Websocket handshakes: the same Origin rule as unsafe HTTP requests, then the login cookie.

Browsers do not apply the same-origin policy to websockets, so without this check any page the
nurse opens could listen to a live session.
"""

from __future__ import annotations

from fastapi import WebSocket

from app.auth import service
from app.auth.csrf import origin_allowed, parse_allowed_origins
from app.auth.dependencies import SECURE_SESSION_COOKIE, SESSION_COOKIE, request_info_of
from app.auth.service import SignedIn

POLICY_VIOLATION = 1008


class WebSocketRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def authenticate_websocket(websocket: WebSocket) -> SignedIn:
    """The signed-in user of a websocket handshake, or WebSocketRefused (call before accept;
    close with POLICY_VIOLATION, which refuses the handshake with HTTP 403)."""
    state = websocket.app.state
    allowed = parse_allowed_origins(state.settings.allowed_origins)
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers, websocket.scope, allowed):
        raise WebSocketRefused(f"origin {origin or '(none)'} is not this site")
    secure = websocket.scope.get("scheme") == "wss"
    token = websocket.cookies.get(SECURE_SESSION_COOKIE if secure else SESSION_COOKIE)
    async with state.sessionmaker() as db:
        signed_in = await service.resolve(
            db, state.person_clock, state.settings, token, request_info_of(websocket)
        )
    if signed_in is None:
        raise WebSocketRefused("sign in required")
    return signed_in
