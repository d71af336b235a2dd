"""The hub's fan-out rules with in-memory sockets: a screen that cannot keep up is closed with
1013 and never holds up the others; renders happen once per view per burst of changes, and
screens connecting at once update the board once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.websockets import WebSocketState

from app.clock import ManualClock
from app.doorbell import Doorbell
from app.live.hub import BOARD, PRESENCE_SETTLE_SECONDS, TRY_AGAIN_LATER, Fanout, Hub


class MemorySocket:
    """Enough of a Starlette WebSocket for the hub: records what it is sent. A `stuck` one
    never finishes a send, like a tablet whose network has frozen."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.application_state = WebSocketState.CONNECTED
        self._gone = asyncio.Event()

    async def send_text(self, text: str) -> None:
        if self.stuck and self.sent:  # the snapshot goes out, then nothing more does
            await asyncio.Event().wait()
        self.sent.append(text)

    async def receive(self) -> dict:
        await self._gone.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        self.application_state = WebSocketState.DISCONNECTED
        self._gone.set()


async def wait_until(predicate, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


class FakeViews:
    """Renders like the live renderer, recording what it was asked for: the session's fragment
    once per change, its role parts once per role, and the board as one message per update
    naming the sessions that changed and the ones whose screens came or went."""

    def __init__(self) -> None:
        self.version = 0
        self.rendered: list[tuple[object, str]] = []
        self.board_updates: list[tuple[dict[int, int], set[int]]] = []

    async def snapshot(self, topic, role, hub):
        return f'<div id="view-{topic}">snapshot</div>'

    async def session(self, session_id, roles, hub, known=None):
        self.version += 1
        self.rendered.append((session_id, "shared"))
        self.rendered.extend((session_id, role) for role in roles)
        return Fanout(
            f'<div id="view-{session_id}">v{self.version}</div>',
            {role: f'<div id="actions">{role}</div>' for role in roles},
        )

    async def board_changes(self, changed, presence, hub, known=None):
        self.board_updates.append((dict(changed), set(presence)))
        self.rendered.append((BOARD, "changes"))
        counts = {s: hub.count(s) for s in presence}
        return f'<template id="board-moves" data-moves="{sorted(changed)}" data-n="{counts}">'


def make_hub(queue_size: int = 4) -> tuple[Hub, Doorbell, FakeViews]:
    doorbell = Doorbell()
    views = FakeViews()
    hub = Hub(
        doorbell,
        ManualClock(datetime(2031, 1, 1, tzinfo=UTC)),
        views,
        lambda: '<time id="server-clock"></time>',
        heartbeat_seconds=60,
        queue_size=queue_size,
    )
    return hub, doorbell, views


def test_a_stuck_screen_is_closed_and_the_others_keep_getting_every_update() -> None:
    async def run() -> None:
        hub, doorbell, _ = make_hub(queue_size=4)
        hub.start()
        fast, stuck = MemorySocket(), MemorySocket(stuck=True)
        serving = [
            asyncio.create_task(hub.serve(fast, 7, "nurse")),
            asyncio.create_task(hub.serve(stuck, 7, "nurse")),
        ]
        await wait_until(lambda: fast.sent and stuck.sent)  # both have their snapshot
        for seq in range(1, 21):
            doorbell.ring(7, seq)
            await asyncio.sleep(0.005)  # separate commits, not one burst
        await wait_until(lambda: stuck.closed_with is not None)
        assert stuck.closed_with == TRY_AGAIN_LATER
        await wait_until(lambda: len(fast.sent) >= 21)  # the snapshot, then every change
        assert [m.count('id="view-7"') for m in fast.sent[1:]] == [1] * 20
        assert hub.count(7) == 1  # the stuck one was dropped; it reconnects for a snapshot
        await fast.close()
        await asyncio.gather(*serving)
        await hub.stop()

    asyncio.run(run())


def test_a_burst_of_commits_is_rendered_once_for_every_role_and_the_board_gets_the_tile() -> None:
    async def run() -> None:
        hub, doorbell, views = make_hub(queue_size=16)
        sockets = [MemorySocket() for _ in range(5)]
        roles = ["nurse", "nurse", "nurse", "physician", "nurse"]
        serving = [
            asyncio.create_task(hub.serve(s, 3, r))
            for s, r in zip(sockets[:4], roles, strict=False)
        ]
        serving.append(asyncio.create_task(hub.serve(sockets[4], BOARD, "nurse")))
        await wait_until(lambda: all(s.sent for s in sockets))
        await asyncio.sleep(PRESENCE_SETTLE_SECONDS * 2)  # the presence update of the bedsides
        views.rendered.clear()
        views.board_updates.clear()
        hub.start()
        for seq in range(1, 6):  # five commits before the hub's task gets to run
            doorbell.ring(3, seq)
        await wait_until(lambda: all(len(s.sent) >= 2 for s in sockets))
        assert sorted(map(str, views.rendered)) == sorted(
            ["(3, 'shared')", "(3, 'nurse')", "(3, 'physician')", "('board', 'changes')"]
        )
        assert views.board_updates == [({3: 5}, set())]  # the one session, at its newest seq
        # One message per screen: the view (rendered once), then the part of its role; the
        # same string object for every screen of a role.
        updates = [s.sent[-1] for s in sockets[:4]]
        assert updates == [
            f'<div id="view-3">v1</div><div id="actions">{r}</div>' for r in roles[:4]
        ]
        nurses = [u for u, r in zip(updates, roles, strict=False) if r == "nurse"]
        assert all(text is nurses[0] for text in nurses)
        assert hub.renders[3] == 1 and hub.role_renders[3] == 2
        for s in sockets:
            await s.close()
        await asyncio.gather(*serving)
        await hub.stop()

    asyncio.run(run())


def test_a_ward_reconnecting_at_once_costs_one_board_update_naming_the_sessions() -> None:
    async def run() -> None:
        hub, _, views = make_hub(queue_size=16)
        board = MemorySocket()
        serving = [asyncio.create_task(hub.serve(board, BOARD, "nurse"))]
        await wait_until(lambda: len(board.sent) == 1)  # its snapshot
        bedsides = [MemorySocket() for _ in range(40)]  # after a restart, every tablet at once
        serving += [
            asyncio.create_task(hub.serve(s, 1 + i % 10, "nurse")) for i, s in enumerate(bedsides)
        ]
        await wait_until(lambda: all(s.sent for s in bedsides))
        await wait_until(lambda: len(board.sent) >= 2)
        await asyncio.sleep(PRESENCE_SETTLE_SECONDS * 2)  # nothing more is on its way
        # One update, for the ten sessions whose screens came: the renderer sends their lines.
        assert views.board_updates == [({}, set(range(1, 11)))]
        assert len(board.sent) == 2  # the snapshot, then that one update
        assert "{1: 4, 2: 4," in board.sent[1]  # told when every screen was in
        for s in [board, *bedsides]:
            await s.close()
        await asyncio.gather(*serving)
        await hub.stop()

    asyncio.run(run())


class FailingViews(FakeViews):
    """The database away for the first `failures` renders of a session."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def session(self, session_id, roles, hub, known=None):
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("the database is restarting")
        return await super().session(session_id, roles, hub, known)


def test_an_update_that_failed_to_render_is_tried_again_until_every_screen_has_it(
    monkeypatch,
) -> None:
    import app.live.hub as hub_module

    monkeypatch.setattr(hub_module, "RETRY_SECONDS", 0.05)

    async def run() -> None:
        doorbell = Doorbell()
        views = FailingViews(failures=3)
        hub = Hub(
            doorbell,
            ManualClock(datetime(2031, 1, 1, tzinfo=UTC)),
            views,
            lambda: '<time id="server-clock"></time>',
            heartbeat_seconds=60,
        )
        screen = MemorySocket()
        serving = asyncio.create_task(hub.serve(screen, 9, "nurse"))
        await wait_until(lambda: screen.sent)  # its snapshot
        hub.start()
        doorbell.ring(9, 4)  # fails: not counted as shown
        await asyncio.sleep(0.01)
        assert hub.shown.get(9, 0) == 0
        doorbell.ring(9, 4)  # a catch-up ringing the same seq is not dropped as shown
        await wait_until(lambda: any("v1" in text for text in screen.sent), within=3)
        assert hub.shown[9] == 4 and views.failures == 0
        await screen.close()
        await serving
        await hub.stop()

    asyncio.run(run())


def test_a_screen_that_stops_reading_is_let_go_of_after_the_send_timeout(monkeypatch) -> None:
    import app.live.hub as hub_module

    monkeypatch.setattr(hub_module, "SEND_TIMEOUT_SECONDS", 0.1)

    async def run() -> None:
        hub, doorbell, _ = make_hub(queue_size=64)  # room enough: no overflow closes it
        hub.start()
        stuck, fine = MemorySocket(stuck=True), MemorySocket()
        serving = asyncio.create_task(hub.serve(stuck, 5, "nurse"))
        other = asyncio.create_task(hub.serve(fine, 5, "nurse"))
        await wait_until(lambda: stuck.sent and fine.sent)
        doorbell.ring(5, 1)  # one update: the stuck screen never takes it
        await asyncio.wait_for(serving, 2)  # its serving ends: the server lets go
        assert stuck.closed_with == TRY_AGAIN_LATER and hub.count(5) == 1
        await wait_until(lambda: any("v1" in text for text in fine.sent))
        await fine.close()
        await other
        await hub.stop()

    asyncio.run(run())
