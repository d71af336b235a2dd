"""One session command, one transaction: lock the session row, replay the first answer to a
resend, let the command decide and write, then snapshot, remember the answer, commit, and only
then ring the doorbell. Every session command runs through `run`; nothing else here commits."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.clock import Clock
from app.doorbell import Doorbell
from app.patients.models import Patient
from app.session import codec, snapshots, store
from app.session import machine as M
from app.session.committed import Committed, event_line, patient_info
from app.session.errors import STATUS_OF_KIND, Refusal
from app.session.models import DesensitizationSession, IdempotentAnswer, SessionEvent
from app.session.view import SessionView
from app.session.view_json import as_json

Answer = tuple[int, dict[str, Any]]
# The view the command answers with (and hands to the screens); the last argument: the window
# of vitals when the command knows it.
View = Callable[
    [AsyncSession, DesensitizationSession, M.SessionState, datetime, Any],
    Awaitable[SessionView],
]


@dataclass(frozen=True)
class Caller:
    actor: Actor
    request: RequestInfo


class KeptRefusal(Exception):
    """Raised by a command that refuses after writing what the refusal leaves behind (its
    audit entry): the unit keeps it as the answer to its Idempotency-Key, commits, and raises
    the refusal."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


@dataclass
class Work:
    """What a command decides with and writes through, under the session row lock."""

    db: AsyncSession
    clock: Clock
    caller: Caller
    row: DesensitizationSession
    now: datetime
    seq: int = 0
    ring: bool = False
    state: M.SessionState | None = None  # what the answer shows; None: the row's state
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Held for the unit's length: the identity map keeps only what is referenced.
    patient: Patient | None = None
    # The answer's window of vitals, worked out by a command that read it and stored a set
    # (called after the flush, when the new set has its id); None: the answer reads it.
    known_window: Callable[[], Any] | None = None
    written: list[SessionEvent] = field(default_factory=list)  # the events, oldest first

    async def append(self, events: tuple[M.Event, ...], version: int, *, ring: bool) -> None:
        """The command's events, numbered on from the session's last; `ring`: announce them."""
        self.written += await store.append_events(
            self.db, self.row, events, self.caller.actor, self.now, version
        )
        self.seq = self.row.last_event_seq
        self.ring = ring


Decide = Callable[[Work], Awaitable[None]]


async def run(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    decide: Decide,
    *,
    view: View,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Answer:
    """Run one command. `decide` reads and writes through the Work; a Refusal it raises undoes
    everything, a KeptRefusal keeps what it wrote and the answer."""
    row, patient = await store.load_for_command(db, session_id)
    replayed = await replay(db, caller, idempotency_key, fingerprint)
    if replayed is not None:
        return replayed
    before = snapshots.before_of(row)  # the base of this change's snapshot
    work = Work(db, clock, caller, row, clock.now(), patient=patient)
    try:
        await decide(work)
    except KeptRefusal as kept:
        await store.snapshot(db, row, work.now, before)
        await remember_refusal(db, caller, idempotency_key, fingerprint, kept.refusal, work.now)
        # What the refusal left behind may be news (a wrong scan's alarm): the screens hear.
        await commit_and_ring(db, doorbell, row.id, work.seq if work.ring else None)
        raise kept.refusal from None
    except Refusal:
        await db.rollback()
        raise
    await db.flush()
    state = work.state if work.state is not None else codec.loads(row.state_json)
    window = work.known_window() if work.known_window is not None else None
    shown = await view(db, row, state, work.now, window)
    body = as_json(shown)
    await store.snapshot(db, row, work.now, before)
    await remember(db, caller, idempotency_key, fingerprint, 200, body, work.now)
    known = None
    if work.ring and work.patient is not None:
        events = tuple(event_line(e) for e in reversed(work.written))
        known = Committed(shown, work.now, patient_info(work.patient), events)
    await commit_and_ring(db, doorbell, row.id, work.seq if work.ring else None, known)
    for then in work.after_commit:  # e.g. a webhook: the record does not wait for the network
        then()
    return 200, body


async def commit_and_ring(
    db: AsyncSession,
    doorbell: Doorbell,
    session_id: int,
    seq: int | None,
    known: Committed | None = None,
) -> None:
    """Commit; the screens hear of event `seq` (None: nothing to tell) only once it is there,
    with what the command already built of the change (`known`) when it has it."""
    if seq is not None:
        await doorbell.announce(db, session_id, seq)
    await db.commit()
    if seq is not None:
        doorbell.ring(session_id, seq, known)


async def replay(
    db: AsyncSession, caller: Caller, key: str | None, fingerprint: str | None
) -> Answer | None:
    """The first answer to this Idempotency-Key, if there was one. Called under the session
    row lock, so a resend racing its original waits for it and then gets its answer."""
    if key is None or caller.actor.user_id is None:
        return None
    previous = await db.scalar(
        select(IdempotentAnswer).where(
            IdempotentAnswer.user_id == caller.actor.user_id, IdempotentAnswer.key == key
        )
    )
    if previous is None:
        return None
    same, status, body = (
        previous.fingerprint == fingerprint,
        previous.status_code,
        previous.body_json,
    )
    await db.rollback()
    if not same:
        # A conflict, not invalid: the request is well formed; it conflicts with the first use
        # of its key.
        raise Refusal("conflict", "this Idempotency-Key was used for a different request")
    return status, json.loads(body)


async def remember(
    db: AsyncSession,
    caller: Caller,
    key: str | None,
    fingerprint: str | None,
    status: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    if key is None or caller.actor.user_id is None:
        return
    db.add(
        IdempotentAnswer(
            user_id=caller.actor.user_id,
            key=key,
            fingerprint=fingerprint or "",
            status_code=status,
            body_json=json.dumps(body, sort_keys=True),
            created_at=now,
        )
    )


async def remember_refusal(
    db: AsyncSession,
    caller: Caller,
    key: str | None,
    fingerprint: str | None,
    refusal: Refusal,
    now: datetime,
) -> None:
    """A refusal is an answer too: a resend of the same request is refused the same way."""
    await remember(db, caller, key, fingerprint, STATUS_OF_KIND[refusal.kind], refusal.body(), now)
