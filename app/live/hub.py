"""The websocket hub: every open screen of a session, and every board, kept up to date.

- A screen subscribes to a topic: one session (the bedside view) or the board.
- On (re)connect it first gets a full snapshot of its view.
- After each commit the doorbell rings; the hub takes each affected view from the ring (the
  command that committed in this process hands over what it built) or reads it once, renders
  the part every role sees once and the small part that differs by role (the sign-offs and
  the actions) once per role, and offers every screen of a role the same string, one message.
  The board screens get the changed sessions' tiles and where they now go, never the whole
  board.
- Screens connecting or leaving change the board (each tile says how many bedside screens are
  open): such changes are gathered for a moment and the boards get one line per tile whose
  count changed, so a ward reconnecting at once (a restart, a Wi-Fi blip) costs the boards a
  few lines per session, not the whole board per screen.
- Each subscriber has a bounded queue and its own sender task, so a slow screen never delays the
  others; a full queue closes that socket (1013, try again later): the screen reconnects and
  resyncs from a fresh snapshot.
- A heartbeat every 5 s carries the server's clock; screens that hear nothing for 10 s say their
  data may be stale.
- A screen lives as long as the sign-in it was opened with: every couple of seconds the hub
  asks which sign-ins still hold, and closes the screens of the others (signed out, disabled,
  idle or absolute timeout) with SIGNED_OUT, so the page covers itself and asks for the
  password instead of streaming patient data to nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.clock import Clock
from app.doorbell import Doorbell, Ring
from app.session.presence import Presence

logger = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
SIGNED_OUT = 4401  # application close code: the sign-in ended; sign in again, then reconnect
LOGIN_CHECK_SECONDS = 2.0
QUEUE_SIZE = 64
HEARTBEAT_SECONDS = 5.0

BOARD = "board"
Topic = int | str  # a session id, or BOARD

# How long screens connecting or leaving are gathered before the boards are told once; while
# a ward keeps reconnecting, the boards are told at most once every PRESENCE_GAP_SECONDS.
PRESENCE_SETTLE_SECONDS = 0.25
PRESENCE_GAP_SECONDS = 1.0
# A screen whose client takes longer than this to accept one message is let go of (it does
# not read; a screen that reads reconnects and resyncs).
SEND_TIMEOUT_SECONDS = 10.0
# A live update that failed to render (the database away) is tried again after this long.
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Fanout:
    """One change of a session's view: `shared` is the same string for every screen of the
    session, whatever its role; `by_role` holds the small part that differs by role."""

    shared: str
    by_role: Mapping[str, str]


class Views(Protocol):
    """What the hub sends, as HTML (app.live.render.LiveRenderer)."""

    async def snapshot(self, topic: Topic, role: str, hub: Hub) -> str | None:
        """The whole view on (re)connect; None when the session is gone."""

    async def session(
        self, session_id: int, roles: frozenset[str], hub: Hub, known: Any = None
    ) -> Fanout | None:
        """A session's fragments after a change, from one read, or from `known` (what the
        command that made the change built of it, Ring.known) without one; None when it is
        gone."""

    async def board_changes(
        self,
        changed: Mapping[int, int],
        presence: Collection[int],
        hub: Hub,
        known: Mapping[int, Any] | None = None,
    ) -> str | None:
        """The board update after these sessions moved (to these seqs; `known`: the changes
        handed over, Ring.known) and these had screens connect or leave; None when there is
        nothing to send."""


HeartbeatRenderer = Callable[[], str]
# Of these sign-in ids, the ones still signed in (app.auth.sign_in.still_signed_in).
LoginCheck = Callable[[set[int]], Awaitable[set[int]]]


@dataclass(eq=False)
class Screen:
    websocket: WebSocket
    topic: Topic
    role: str
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    closing: bool = False
    login_id: int | None = None
    # Set once the hub has given up on the screen: its serving ends even if the client never
    # reads (nor answers a close), so the server lets go of the socket.
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(
        self,
        doorbell: Doorbell,
        clock: Clock,
        render: Views,
        heartbeat: HeartbeatRenderer,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        queue_size: int = QUEUE_SIZE,
        presence: Presence | None = None,
        login_check: LoginCheck | None = None,
        login_check_seconds: float = LOGIN_CHECK_SECONDS,
    ) -> None:
        self.doorbell = doorbell
        self.clock = clock
        self.render = render
        self.heartbeat = heartbeat
        self.heartbeat_seconds = heartbeat_seconds
        self.queue_size = queue_size
        self.presence = presence  # open session screens, told to every process (lost contact)
        self.login_check = login_check
        self.login_check_seconds = login_check_seconds
        self.screens: dict[Topic, set[Screen]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._retries: set[asyncio.Task[None]] = set()
        self.shown: dict[int, int] = {}  # session id -> the newest event seq published
        self._board_due: asyncio.Task[None] | None = None
        self._presence_due: set[int] = set()  # sessions whose screens came or went meanwhile
        # Fan-out (not snapshots), per topic: shared fragments rendered (once per change of a
        # session; once per board update), role parts rendered, and bytes offered to screens.
        self.renders: Counter[Topic] = Counter()
        self.role_renders: Counter[Topic] = Counter()
        self.sent_bytes: Counter[Topic] = Counter()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        # Listening starts now, not when the task first runs: no ring is missed in between.
        self._rings = self.doorbell.listen()
        self._tasks = [
            asyncio.create_task(self._listen(), name="stepwise-hub-listen"),
            asyncio.create_task(self._beat(), name="stepwise-hub-heartbeat"),
        ]
        if self.login_check is not None:
            self._tasks.append(
                asyncio.create_task(self._watch_logins(), name="stepwise-hub-logins")
            )

    async def stop(self) -> None:
        for retry in list(self._retries):
            retry.cancel()
        if self._board_due is not None:
            self._board_due.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._board_due
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for screen in [s for group in self.screens.values() for s in group]:
            await self._close(screen, GOING_AWAY, "server shutting down")

    # --- queries --------------------------------------------------------------------------

    def count(self, topic: Topic) -> int:
        return len(self.screens.get(topic, ()))

    # --- serving one screen ---------------------------------------------------------------

    async def serve(
        self, websocket: WebSocket, topic: Topic, role: str, login_id: int | None = None
    ) -> None:
        """Run one accepted websocket until it closes: snapshot first, then every update."""
        screen = Screen(websocket, topic, role, asyncio.Queue(self.queue_size), login_id=login_id)
        self.screens.setdefault(topic, set()).add(screen)
        if self.presence is not None and isinstance(topic, int):
            self.presence.opened(topic)
        # The snapshot is rendered after subscribing: a change committed meanwhile is queued
        # behind it, so the screen can never miss one.
        try:
            snapshot = await self.render.snapshot(topic, role, self)
            if snapshot is None:
                await self._close(screen, 1008, "no such session")
                return
            await websocket.send_text(self.heartbeat() + snapshot)
            if isinstance(topic, int):
                self._board_soon(topic)  # the board shows which sessions have a screen
            running = [
                asyncio.create_task(self._drain_receive(websocket)),  # the client went away
                asyncio.create_task(self._send(screen)),  # a send timed out
                asyncio.create_task(screen.gone.wait()),  # the hub gave up on it
            ]
            try:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in running:
                    task.cancel()
                for task in running:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if running[1] in done and not screen.closing:  # the client stopped reading
                await self._close(screen, TRY_AGAIN_LATER, "not reading")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._forget(screen)
            if self.presence is not None and isinstance(topic, int):
                self.presence.closed(topic)
            if isinstance(topic, int):
                self._board_soon(topic)

    async def _drain_receive(self, websocket: WebSocket) -> None:
        # Screens never write over the socket (writes are HTTP POSTs); reading only notices
        # that the other side has gone.
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def _send(self, screen: Screen) -> None:
        """Send what is queued, in order; returns when a send takes longer than
        SEND_TIMEOUT_SECONDS (a client that does not read: its buffers are full)."""
        while True:
            text = await screen.queue.get()
            try:
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):  # no task per send
                    await screen.websocket.send_text(text)
            except TimeoutError:
                return

    def _offer(self, screen: Screen, text: str) -> None:
        if screen.closing:
            return
        try:
            screen.queue.put_nowait(text)
            self.sent_bytes[screen.topic] += len(text)
        except asyncio.QueueFull:
            # Too slow to keep up: drop it; it reconnects and starts from a fresh snapshot.
            screen.closing = True
            self._forget(screen)
            closing = asyncio.create_task(self._close(screen, TRY_AGAIN_LATER, "too far behind"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _close(self, screen: Screen, code: int, reason: str) -> None:
        screen.closing = True
        screen.gone.set()
        self._forget(screen)
        if screen.websocket.application_state == WebSocketState.CONNECTED:
            # A client that does not read may never take the close frame either.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(screen.websocket.close(code, reason), SEND_TIMEOUT_SECONDS)

    def _forget(self, screen: Screen) -> None:
        group = self.screens.get(screen.topic)
        if group is not None:
            group.discard(screen)
            if not group:
                del self.screens[screen.topic]

    # --- fan-out --------------------------------------------------------------------------

    async def _listen(self) -> None:
        queue = self._rings
        try:
            while True:
                rings: list[Ring] = [await queue.get()]
                while not queue.empty():  # a burst of commits: render each view once
                    rings.append(queue.get_nowait())
                news = self._news(rings)
                published = {
                    session_id: ring.seq
                    for session_id, ring in news.items()
                    if await self._guarded(self._publish(session_id, ring.known))
                }
                known = {s: news[s].known for s in published if news[s].known is not None}
                if published and not await self._guarded(self._publish_board(published, (), known)):
                    published = {}  # the boards missed them: all of them go again
                for session_id, seq in published.items():
                    self.shown[session_id] = max(seq, self.shown.get(session_id, 0))
                failed = {s: ring.seq for s, ring in news.items() if s not in published}
                if failed:
                    self._retry_soon(failed)
        finally:
            self.doorbell.stop_listening(queue)

    def _news(self, rings: list[Ring]) -> dict[int, Ring]:
        """The sessions these rings bring news of, each with its newest ring (at the same seq,
        the one that carries the change's view): a seq already shown (the same commit rung
        here and notified from the database, or a catch-up finding nothing new) is skipped. A
        seq counts as shown only once it was rendered and queued to every screen (see
        _listen), so a render that failed is tried again."""
        newest: dict[int, Ring] = {}
        for ring in rings:
            seen = newest.get(ring.session_id)
            if seen is None or (ring.seq, ring.known is not None) > (
                seen.seq,
                seen.known is not None,
            ):
                newest[ring.session_id] = ring
        return {s: ring for s, ring in newest.items() if ring.seq > self.shown.get(s, 0)}

    def _retry_soon(self, failed: Mapping[int, int]) -> None:
        """Ring again, a moment later, for the updates that could not be rendered (the database
        restarting, say): the screens converge on the latest version once it is readable."""

        async def again() -> None:
            await asyncio.sleep(RETRY_SECONDS)
            for session_id, seq in failed.items():
                # Full: the listener is behind; the periodic catch-up from the event log finds
                # these again, since they were never counted as shown.
                with contextlib.suppress(asyncio.QueueFull):
                    self._rings.put_nowait(Ring(session_id, seq))

        retry = asyncio.create_task(again())
        self._retries.add(retry)
        retry.add_done_callback(self._retries.discard)

    async def _guarded(self, work: Awaitable[None]) -> bool:
        """Run one render-and-queue; False when it failed (logged), so it can be retried."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # one view failing to render must not stop the others
            logger.exception("live update failed")
            return False
        return True

    async def _publish(self, session_id: int, known: Any = None) -> None:
        screens = list(self.screens.get(session_id, ()))
        if not screens:
            return
        by_role: dict[str, list[Screen]] = {}
        for screen in screens:
            by_role.setdefault(screen.role, []).append(screen)
        views = await self.render.session(session_id, frozenset(by_role), self, known)
        if views is None:
            return
        self.renders[session_id] += 1
        self.role_renders[session_id] += len(by_role)
        for role, group in by_role.items():
            # One message per screen, the same string for every screen of a role: a send
            # costs the server a system call whatever its size.
            text = views.shared + views.by_role[role]
            for screen in group:
                self._offer(screen, text)

    async def _publish_board(
        self,
        changed: Mapping[int, int],
        presence: Collection[int],
        known: Mapping[int, Any] | None = None,
    ) -> None:
        # Without a board screen nothing is rendered: a board connecting later gets a snapshot,
        # and the tiles whose seq moved meanwhile are read again for it.
        screens = list(self.screens.get(BOARD, ()))
        if not screens:
            return
        text = await self.render.board_changes(changed, presence, self, known)
        if text is None:
            return
        self.renders[BOARD] += 1
        for screen in screens:
            self._offer(screen, text)

    def _board_soon(self, session_id: int) -> None:
        """Tell the boards once the screens connecting or leaving right now have settled."""
        self._presence_due.add(session_id)
        if self._board_due is None or self._board_due.done():
            self._board_due = asyncio.create_task(self._settled_board())

    async def _settled_board(self) -> None:
        await asyncio.sleep(PRESENCE_SETTLE_SECONDS)
        while self._presence_due:
            due, self._presence_due = self._presence_due, set()
            await self._guarded(self._publish_board({}, due))
            # Screens still coming meanwhile are gathered here, and told after the gap.
            await asyncio.sleep(PRESENCE_GAP_SECONDS - PRESENCE_SETTLE_SECONDS)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            text = self.heartbeat()
            for screen in [s for group in self.screens.values() for s in group]:
                self._offer(screen, text)

    async def _watch_logins(self) -> None:
        assert self.login_check is not None
        while True:
            await asyncio.sleep(self.login_check_seconds)
            try:
                await self.close_signed_out()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next check retries; the database may be briefly away
                logger.exception("sign-in check of live screens failed")

    async def close_signed_out(self) -> int:
        """Close every screen whose sign-in has ended; returns how many."""
        assert self.login_check is not None
        screens = [s for group in self.screens.values() for s in group if s.login_id is not None]
        if not screens:
            return 0
        valid = await self.login_check({s.login_id for s in screens if s.login_id is not None})
        ended = [s for s in screens if s.login_id not in valid]
        for screen in ended:
            await self._close(screen, SIGNED_OUT, "signed out")
        return len(ended)

    def stats(self) -> dict[str, Any]:
        return {
            "screens": sum(len(g) for g in self.screens.values()),
            "topics": len(self.screens),
            "renders": sum(self.renders.values()),
            "role_renders": sum(self.role_renders.values()),
            "board_updates": self.renders[BOARD],
            "board_bytes": self.sent_bytes[BOARD],
            "session_bytes": sum(n for t, n in self.sent_bytes.items() if t != BOARD),
        }
