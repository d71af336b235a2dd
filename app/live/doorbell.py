"""The doorbell: after a commit, a service rings it with (session id, event seq); whoever
renders screens listens. In-process here (one process on SQLite); the websocket hub and the
PostgreSQL LISTEN/NOTIFY backend subscribe to the same interface."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ring:
    session_id: int
    seq: int


@dataclass
class Doorbell:
    queue_size: int = 1000
    _listeners: set[asyncio.Queue[Ring]] = field(default_factory=set)

    def ring(self, session_id: int, seq: int) -> None:
        for listener in list(self._listeners):
            try:
                listener.put_nowait(Ring(session_id, seq))
            except asyncio.QueueFull:
                # A listener that cannot keep up catches up from the event table instead.
                continue

    def listen(self) -> asyncio.Queue[Ring]:
        queue: asyncio.Queue[Ring] = asyncio.Queue(self.queue_size)
        self._listeners.add(queue)
        return queue

    def stop_listening(self, queue: asyncio.Queue[Ring]) -> None:
        self._listeners.discard(queue)
