"""A ward of nurses driving many sessions through whole protocols, over real HTTP, against
several app processes at once; the multi-process tests use it.

Every session has a home process; its nurse sends there while it lives and to a survivor
after it dies, resending an unanswered command with the same Idempotency-Key, so a command
is carried out once whether or not the dead process committed it. The ward remembers every
acknowledged vitals entry, so a test can check that none was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

OK = {"systolic_bp": 124, "diastolic_bp": 78, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}
POLL_SECONDS = 0.1
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Front:
    """One app process as the ward sees it: its address, how to sign requests, and whether it
    is still running."""

    name: str
    base: str
    headers: dict[str, str]
    alive: Any  # () -> bool


@dataclass
class Progress:
    status: str = "planned"
    version: int = 0
    current_step: int | None = None


@dataclass
class Ward:
    engine: AsyncEngine
    fronts: list[Front]
    home: dict[int, str]  # session id -> name of its home process
    progress: dict[int, Progress] = field(default_factory=dict)
    acknowledged_vitals: dict[int, set[str]] = field(default_factory=dict)
    resent: int = 0  # commands resent to another process after the first went unanswered
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def watch(self, stop: asyncio.Event) -> None:
        """Read every session's status from the database, often: cheaper than 50 GETs."""
        ids = list(self.home)
        while not stop.is_set():
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT id, status, version, current_step FROM desensitization_session "
                        "WHERE id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
                for sid, status, version, step in rows:
                    self.progress[sid] = Progress(status, version, step)
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(POLL_SECONDS)

    async def _after(self, sid: int, version: int) -> Progress:
        """The session's progress once its version is past ``version``; after a second with no
        change, its progress at ``version`` again (a refused command is then tried again)."""
        deadline = time.monotonic() + RETRY_SECONDS
        async with self._changed:
            while True:
                seen = self.progress.get(sid, Progress())
                if seen.version > version or (
                    seen.version == version and time.monotonic() > deadline
                ):
                    return seen
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), RETRY_SECONDS)

    async def send(
        self, client: httpx.AsyncClient, sid: int, command: str, body: dict[str, Any]
    ) -> httpx.Response:
        """POST to the session's home process, or to a survivor; resend on no answer."""
        key = uuid.uuid4().hex
        order = sorted(self.fronts, key=lambda f: f.name != self.home[sid])
        for attempt in range(60):
            front = next((f for f in order if f.alive()), None)
            assert front is not None, "no process left"
            try:
                return await client.post(
                    f"{front.base}/api/v1/sessions/{sid}/{command}",
                    json=body,
                    headers={**front.headers, "Idempotency-Key": key},
                )
            except httpx.TransportError:
                # Unanswered: it may or may not have committed; the same key makes a resend safe.
                self.resent += 1
                await asyncio.sleep(0.2 if attempt else 0.05)
        raise AssertionError(f"{command} on session {sid} never answered")

    async def vitals(self, client: httpx.AsyncClient, sid: int) -> None:
        answer = await self.send(client, sid, "vitals", OK)
        assert answer.status_code == 200, answer.text
        self.acknowledged_vitals.setdefault(sid, set()).add(str(answer.json()["version"]))

    async def drive(self, client: httpx.AsyncClient, sid: int) -> None:
        """Start; then vitals in every step, the pump change confirmed when due, the
        observation completed: the nurse's part of a whole protocol."""
        started = await self.send(client, sid, "start", {})
        assert started.status_code == 200, started.text
        vitals_for: set[object] = set()
        seen = Progress(version=started.json()["version"] - 1)
        while True:
            seen = await self._after(sid, seen.version)
            if seen.status == "completed":
                return
            assert seen.status in ("running", "step_due", "observing"), seen
            slot = ("observing" if seen.status == "observing" else seen.current_step, seen.status)
            if slot[0] not in vitals_for:
                await self.vitals(client, sid)
                vitals_for.add(slot[0])
            if seen.status == "step_due":
                answer = await self.send(client, sid, "confirm-step", {})
                assert answer.status_code in (200, 409), answer.text
            elif seen.status == "observing":
                answer = await self.send(client, sid, "complete", {})
                assert answer.status_code in (200, 409), answer.text  # 409: not over yet
