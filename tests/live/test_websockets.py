"""Live updates over real websockets against a real server: the handshake's checks, the
snapshot on connect, one render per view per change reaching every screen, the heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from app.config import Settings
from app.main import create_app
from tests.conftest import run_server
from tests.session.conftest import new_patient, session_body
from tests.session.test_api_walk import OK_VITALS
from tests.support import SignedInClient

HEARTBEAT = 0.3


@pytest.fixture
def live(database_url: str) -> Iterator[tuple[str, object]]:
    settings = Settings(database_url=database_url, env="test", live_heartbeat_seconds=HEARTBEAT)
    app = create_app(settings)
    with run_server(app) as base_url:
        yield base_url, app


def cookie(client: SignedInClient) -> str:
    return f"stepwise_session={client.cookies['stepwise_session']}"


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def open_screen(base: str, path: str, client: SignedInClient) -> ClientConnection:
    return await websockets.connect(
        ws_url(base, path),
        origin=base,
        additional_headers={"Cookie": cookie(client)},
        open_timeout=10,
    )


async def receive_until(socket: ClientConnection, text: str, within: float = 5.0) -> str:
    """Messages until one contains `text` (heartbeats and other updates are skipped)."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no message with {text!r} within {within} s")
        message = await asyncio.wait_for(socket.recv(), left)
        assert isinstance(message, str)
        if text in message:
            return message


def ready_session(client: SignedInClient, team: dict[str, SignedInClient]) -> int:
    created = client.post("/api/v1/sessions", json=session_body(new_patient(client)))
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    for role, path, body in (
        ("physician", "approve", {}),
        ("pharmacist", "verify-bags", {}),
        ("nurse", "checklist", {"item": "consent"}),
        ("nurse", "checklist", {"item": "rescue_kit"}),
        ("nurse", "checklist", {"item": "premedications", "none_reason": "none"}),
        ("nurse", "vitals", OK_VITALS),
        ("nurse", "start", {}),
    ):
        answer = team[role].post(f"/api/v1/sessions/{sid}/{path}", json=body)
        assert answer.status_code == 200, answer.text
    return sid


@pytest.fixture
def team(live, accounts) -> Iterator[dict[str, SignedInClient]]:
    base, _ = live
    clients = {
        r: SignedInClient(base, accounts[r])
        for r in ("nurse", "physician", "pharmacist", "auditor", "admin")
    }
    yield clients
    for c in clients.values():
        c.close()


def test_the_handshake_needs_this_origin_a_login_and_a_role_that_reads_sessions(live, team) -> None:
    base, _ = live
    sid = ready_session(team["nurse"], team)

    async def status_of(path: str, origin: str | None, who: str | None) -> int:
        headers = {"Cookie": cookie(team[who])} if who else {}
        try:
            async with websockets.connect(
                ws_url(base, path), origin=origin, additional_headers=headers, open_timeout=10
            ) as socket:
                await socket.recv()
                return 101
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code

    async def run() -> None:
        for path in (f"/ws/sessions/{sid}", "/ws/board"):
            assert await status_of(path, base, None) == 403  # not signed in
            assert await status_of(path, "http://evil.example", "nurse") == 403
            assert await status_of(path, base, "admin") == 403  # no clinical reading
            assert await status_of(path, base, "auditor") == 101
            assert await status_of(path, base, "nurse") == 101

    asyncio.run(run())


def test_connect_gets_a_snapshot_then_every_screen_gets_each_change(live, team) -> None:
    base, app = live
    nurse = team["nurse"]
    sid = ready_session(nurse, team)

    async def run() -> None:
        screens = [
            await open_screen(base, f"/ws/sessions/{sid}", nurse),
            await open_screen(base, f"/ws/sessions/{sid}", nurse),
            await open_screen(base, f"/ws/sessions/{sid}", team["physician"]),
        ]
        board = await open_screen(base, "/ws/board", team["physician"])
        try:
            for screen in screens:
                snapshot = await receive_until(screen, 'id="status-panel"')
                for region in ("alarm-banner", "vitals-last", "trend-chart", "timeline"):
                    assert f'id="{region}"' in snapshot
                assert 'id="server-clock"' in snapshot
            await receive_until(board, f'id="tile-{sid}"')
            renders_before = app.state.hub.renders[sid]  # type: ignore[attr-defined]
            role_renders_before = app.state.hub.role_renders[sid]  # type: ignore[attr-defined]
            answer = await asyncio.to_thread(
                nurse.post,
                f"/api/v1/sessions/{sid}/vitals",
                json={**OK_VITALS, "heart_rate": 99},
            )
            assert answer.status_code == 200
            updates = []
            for screen in screens:
                update = await receive_until(screen, ">99<")
                assert 'hx-swap-oob="true"' in update
                updates.append(update)
            # One message per screen: the part every role sees, then the part of its role.
            shared = [u.partition('<section id="signoff-panel"') for u in updates]
            assert all(role_part for _, _, role_part in shared)
            # Nurses and the physician get the very same shared part: rendered once for all;
            # the two nurses the very same message.
            assert len({before for before, _, _ in shared}) == 1
            assert 'id="actions"' not in shared[0][0]
            assert updates[0] == updates[1] and updates[2] != updates[0]
            tile = await receive_until(board, "<small>HR</small> 99")
            assert 'id="board-tiles"' not in tile  # the tile, not the whole board
            # Three screens, two roles: the view was rendered once, its role parts twice.
            hub = app.state.hub  # type: ignore[attr-defined]
            assert hub.renders[sid] - renders_before == 1
            assert hub.role_renders[sid] - role_renders_before == 2
        finally:
            for socket in [*screens, board]:
                await socket.close()

    asyncio.run(run())


def test_actions_follow_the_role_of_each_screen(live, team) -> None:
    base, _ = live
    created = team["nurse"].post("/api/v1/sessions", json=session_body(new_patient(team["nurse"])))
    sid = created.json()["id"]

    async def snapshot(who: str) -> str:
        socket = await open_screen(base, f"/ws/sessions/{sid}", team[who])
        try:
            return await receive_until(socket, 'id="actions"')
        finally:
            await socket.close()

    async def run() -> None:
        assert 'id="approve-plan"' in await snapshot("physician")
        nurse_view = await snapshot("nurse")
        assert 'id="approve-plan"' not in nurse_view and "A physician approves" in nurse_view
        # The pharmacist is offered the verification only once there is an approved plan.
        before = await snapshot("pharmacist")
        assert 'id="verify-bags"' not in before and 'id="approve-plan"' not in before
        approved = team["physician"].post(f"/api/v1/sessions/{sid}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert 'id="verify-bags"' in await snapshot("pharmacist")

    asyncio.run(run())


def test_a_heartbeat_carries_the_server_clock(live, team) -> None:
    base, _ = live

    async def run() -> None:
        socket = await open_screen(base, "/ws/board", team["nurse"])
        try:
            await receive_until(socket, 'id="board-tiles"')
            started = time.monotonic()
            beat = await receive_until(socket, "data-heartbeat", within=HEARTBEAT * 10)
            assert time.monotonic() - started < HEARTBEAT * 5
            assert 'id="server-clock"' in beat and "datetime=" in beat
        finally:
            await socket.close()

    asyncio.run(run())


def test_an_unknown_session_closes_the_socket(live, team) -> None:
    base, _ = live

    async def run() -> None:
        socket = await open_screen(base, "/ws/sessions/999999", team["nurse"])
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    asyncio.run(run())


def test_a_ward_reconnecting_at_once_sends_the_boards_lines_not_boards(live, team) -> None:
    base, _ = live
    sessions = [ready_session(team["nurse"], team) for _ in range(2)]

    async def run() -> None:
        boards = [await open_screen(base, "/ws/board", team["physician"]) for _ in range(3)]
        snapshots = [await receive_until(b, 'id="board-tiles"') for b in boards]
        got: list[list[str]] = [[] for _ in boards]

        async def listen(board: ClientConnection, into: list[str]) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for message in board:
                    if "data-heartbeat" not in str(message):
                        into.append(str(message))

        listeners = [asyncio.create_task(listen(b, g)) for b, g in zip(boards, got, strict=True)]
        # Forty tablets at once (a restart, a Wi-Fi blip), nurses and physicians, then all gone.
        who = ["nurse", "physician"]
        screens = await asyncio.gather(
            *(
                open_screen(base, f"/ws/sessions/{sessions[i % 2]}", team[who[i % 2]])
                for i in range(40)
            )
        )
        await asyncio.gather(*(receive_until(s, 'id="status-panel"') for s in screens))
        await asyncio.sleep(0.6)
        for s in screens:
            await s.close()

        def last_lines(messages: list[str]) -> set[str]:
            text = "".join(messages)
            return {
                (["", *re.findall(rf'id="tile-link-{sid}"[^>]*>([^<]*)<', text)])[-1]
                for sid in sessions
            }

        deadline = time.monotonic() + 5  # the presence changes settle, then are sent
        while any(last_lines(g) != {"No bedside screen connected"} for g in got):
            assert time.monotonic() < deadline, [last_lines(g) for g in got]
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # and nothing more comes
        for board in boards:
            await board.close()
        await asyncio.gather(*listeners)
        for snapshot, messages in zip(snapshots, got, strict=True):
            assert all("<article" not in m and 'id="board-tiles"' not in m for m in messages)
            assert sum(map(len, messages)) < len(snapshot)  # less than one board in all
            assert len(messages) <= 8  # gathered: not one message per screen

    asyncio.run(run())
