"""The websocket handshake helper: Origin must be this site, and the cookie must sign in."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from fastapi import WebSocket

from app import deps
from app.auth.websocket import POLICY_VIOLATION, WebSocketRefused, authenticate_websocket
from app.config import Settings
from app.main import create_app
from tests.conftest import run_server
from tests.support import SignedInClient


@pytest.fixture
def ws_server(database_url: str):
    app = create_app(Settings(database_url=database_url, env="test"))

    @app.websocket("/ws/whoami")
    async def whoami(
        websocket: WebSocket,
        sessionmaker: deps.Sessionmaker,
        person_clock: deps.PersonClock,
        settings: deps.Settings,
    ) -> None:
        try:
            signed_in = await authenticate_websocket(
                websocket, sessionmaker, person_clock, settings
            )
        except WebSocketRefused as refused:
            await websocket.close(code=POLICY_VIOLATION, reason=refused.reason)
            return
        await websocket.accept()
        await websocket.send_text(signed_in.user.username)
        await websocket.close()

    with run_server(app) as base_url:
        yield base_url


def connect(base_url: str, origin: str | None, cookie: str | None) -> str:
    headers = {"Cookie": cookie} if cookie else {}

    async def go() -> str:
        async with websockets.connect(
            base_url.replace("http://", "ws://") + "/ws/whoami",
            origin=origin,
            additional_headers=headers,
            open_timeout=10,
        ) as socket:
            return await socket.recv()

    return asyncio.run(go())


def session_cookie(client: SignedInClient) -> str:
    return f"stepwise_session={client.cookies['stepwise_session']}"


def test_same_origin_and_a_valid_cookie_are_let_in(
    ws_server: str,
    database_url: str,
    accounts,
    live_server: str,
) -> None:
    client = SignedInClient(ws_server, accounts["nurse"])
    assert connect(ws_server, ws_server, session_cookie(client)) == accounts["nurse"].username
    client.close()


@pytest.mark.parametrize("origin", ["http://evil.example", None])
def test_foreign_or_missing_origin_is_refused(ws_server: str, accounts, origin) -> None:
    client = SignedInClient(ws_server, accounts["nurse"])
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        connect(ws_server, origin, session_cookie(client))
    assert refused.value.response.status_code == 403
    client.close()


def test_no_or_ended_session_is_refused(ws_server: str, accounts) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus):
        connect(ws_server, ws_server, None)
    client = SignedInClient(ws_server, accounts["physician"])
    cookie = session_cookie(client)
    client.post("/logout")
    with pytest.raises(websockets.exceptions.InvalidStatus):
        connect(ws_server, ws_server, cookie)
    client.close()
