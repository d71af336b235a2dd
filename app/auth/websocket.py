"""Websocket handshakes: the same Origin rule as unsafe HTTP requests, then the login cookie.

Browsers do not apply the same-origin policy to websockets, so without this check any page the
nurse opens could listen to a live session.
"""

from __future__ import annotations

from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import clock, config
from app.auth import sign_in
from app.auth.csrf import origin_allowed, parse_allowed_origins
from app.auth.dependencies import SECURE_SESSION_COOKIE, SESSION_COOKIE, request_info_of
from app.auth.service import SignedIn

POLICY_VIOLATION = 1008


class WebSocketRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def authenticate_websocket(
    websocket: WebSocket,
    sessionmaker: async_sessionmaker[AsyncSession],
    person_clock: clock.Clock,
    settings: config.Settings,
) -> SignedIn:
    """The signed-in user of a websocket handshake, or WebSocketRefused (call before accept;
    close with POLICY_VIOLATION, which refuses the handshake with HTTP 403). The login is read
    in a database session of its own: the socket may stay open for hours."""
    allowed = parse_allowed_origins(settings.allowed_origins)
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers, websocket.scope, allowed):
        raise WebSocketRefused(f"origin {origin or '(none)'} is not this site")
    secure = websocket.scope.get("scheme") == "wss"
    token = websocket.cookies.get(SECURE_SESSION_COOKIE if secure else SESSION_COOKIE)
    async with sessionmaker() as db:
        signed_in = await sign_in.resolve(
            db, person_clock, settings, token, request_info_of(websocket)
        )
    if signed_in is None:
        raise WebSocketRefused("sign in required")
    return signed_in
