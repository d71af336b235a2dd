"""The session commands called directly: a real database, a manual clock, no HTTP."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import Actor, AuditEvent, RequestInfo
from app.auth import service as auth_service
from app.clock import ManualClock
from app.db import session_factory
from app.doorbell import Doorbell, Ring
from app.patients import service as patients
from app.protocol.parsing import ProtocolRequest
from app.protocol.screening import IndexReaction
from app.session import creation, service, timer_firing, timers, vitals_commands
from app.session import machine as M
from app.session.creation import NewSession
from app.session.errors import Refusal
from app.session.models import (
    DesensitizationSession,
    IdempotentAnswer,
    SessionEvent,
    Timer,
)
from app.session.unit_of_work import Caller

SETUP = Actor(user_id=None, username="test-setup", role="system")
OK_VITALS = {
    "systolic_bp": 124,
    "diastolic_bp": 78,
    "heart_rate": 72,
    "spo2": 98,
    "respiratory_rate": 14,
    "temperature_c": "36.8",
}


@dataclass
class Ward:
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: ManualClock
    doorbell: Doorbell
    callers: dict[str, Caller]
    patient_id: int

    async def command(self, role: str, session_id: int, command: M.Command, **kw: object):
        async with self.sessionmaker() as db:
            return await service.run_command(
                db, self.clock, self.doorbell, self.callers[role], session_id, command, **kw
            )

    async def new_session(self) -> int:
        new = NewSession(
            patient_id=self.patient_id,
            drug="ceftazidime",
            route="IV",
            protocol=ProtocolRequest(template="brigham-12", dose="2000", unit="mg"),
            index_reaction=IndexReaction(reactions=frozenset({"urticaria"})),
        )
        async with self.sessionmaker() as db:
            row = await creation.create_session(
                db, self.clock, self.doorbell, self.callers["nurse"], new
            )
            assert isinstance(row, DesensitizationSession)
            return row.id

    async def vitals(self, session_id: int, values: dict, *, confirmed: bool = False):
        """Vitals recorded by the nurse: (status, answer)."""
        async with self.sessionmaker() as db:
            return await vitals_commands.record_vitals(
                db,
                self.clock,
                self.doorbell,
                self.callers["nurse"],
                session_id,
                values,
                confirmed=confirmed,
                expected_version=None,
                idempotency_key=None,
                fingerprint=None,
            )

    async def running_session(self) -> tuple[int, dict]:
        """A new session approved, verified, checked, with baseline vitals, and started:
        its id and the start's answer."""
        session_id = await self.new_session()
        await self.command("physician", session_id, M.Approve())
        await self.command("pharmacist", session_id, M.VerifyBags())
        for item in ("consent", "rescue_kit"):
            await self.command("nurse", session_id, M.ChecklistItem(item))
        await self.command(
            "nurse", session_id, M.ChecklistItem("premedications", True, (), "none needed here")
        )
        await self.vitals(session_id, OK_VITALS)
        _, body = await self.command("nurse", session_id, M.Start())
        return session_id, body

    async def counts(self, session_id: int) -> tuple[int, int, int, int]:
        """(version, events, audit entries, remembered answers): what a command may change."""
        async with self.sessionmaker() as db:
            row = await service.load(db, session_id)
            events = await db.scalar(
                select(func.count()).where(SessionEvent.session_id == session_id)
            )
            audit = await db.scalar(select(func.count()).select_from(AuditEvent))
            answers = await db.scalar(select(func.count()).select_from(IdempotentAnswer))
            return row.version, events or 0, audit or 0, answers or 0


@pytest.fixture
async def ward(engine: AsyncEngine) -> AsyncIterator[Ward]:
    sessionmaker = session_factory(engine)
    clock = ManualClock(datetime.now(UTC))
    callers = {}
    async with sessionmaker() as db:
        for role in ("nurse", "physician", "pharmacist"):
            user = await auth_service.create_user(
                db,
                clock,
                actor=SETUP,
                username=f"{role}-{secrets.token_hex(4)}",
                role=role,
                password=f"pw-{secrets.token_urlsafe(12)}",
            )
            callers[role] = Caller(Actor(user.id, user.username, role), RequestInfo())
        patient = await patients.create_patient(
            db,
            clock,
            actor=callers["nurse"].actor,
            mrn=f"D{secrets.token_hex(5)}",
            family_name="Doe",
            given_name="Jane",
            birth_date="1970-04-02",
            weight_kg=70,
            asthma=False,
        )
    yield Ward(sessionmaker, clock, Doorbell(), callers, patient.id)


async def test_approve_verify_checklist_and_start(ward: Ward) -> None:
    session_id = await ward.new_session()
    rings = ward.doorbell.listen()
    status, body = await ward.command("physician", session_id, M.Approve())
    assert (status, body["status"]) == (200, "planned")
    assert rings.get_nowait() == Ring(session_id, body["last_event_seq"])  # rung after commit
    await ward.command("pharmacist", session_id, M.VerifyBags())
    await ward.command("nurse", session_id, M.ChecklistItem("consent"))
    await ward.command("nurse", session_id, M.ChecklistItem("rescue_kit"))
    premedication = M.Premedication("cetirizine", "10 mg", "PO", ward.clock.now())
    await ward.command(
        "nurse", session_id, M.ChecklistItem("premedications", True, (premedication,))
    )
    ward.clock.advance(timedelta(minutes=5))
    async with ward.sessionmaker() as db:
        status, body = await vitals_commands.record_vitals(
            db,
            ward.clock,
            ward.doorbell,
            ward.callers["nurse"],
            session_id,
            OK_VITALS,
            confirmed=False,
            expected_version=None,
            idempotency_key=None,
            fingerprint=None,
        )
    assert body["checklist"]["missing"] == []
    status, body = await ward.command(
        "nurse", session_id, M.Start(), expected_version=body["version"]
    )
    assert (status, body["status"], body["current_step"]) == (200, "running", 0)
    assert body["deadline"] is not None


async def test_a_refusal_raises_its_kind_and_changes_nothing(ward: Ward) -> None:
    session_id = await ward.new_session()
    version, events, audit, answers = await ward.counts(session_id)

    with pytest.raises(Refusal) as stale:
        await ward.command("physician", session_id, M.Approve(), expected_version=version + 1)
    assert stale.value.kind == "stale" and stale.value.current["version"] == version
    assert await ward.counts(session_id) == (version, events, audit, answers)

    with pytest.raises(Refusal) as forbidden:
        await ward.command("nurse", session_id, M.Approve())
    assert forbidden.value.kind == "forbidden"
    # The machine's refusal leaves one audit entry and nothing else.
    assert await ward.counts(session_id) == (version, events, audit + 1, answers)

    with pytest.raises(Refusal) as missing:
        await ward.command("physician", 10**9, M.Approve())
    assert missing.value.kind == "not_found"


async def test_an_idempotent_resend_gets_the_first_answer_and_writes_nothing(ward: Ward) -> None:
    session_id = await ward.new_session()
    key = {"idempotency_key": "approve-1", "fingerprint": "the same request"}
    first = await ward.command("physician", session_id, M.Approve(), **key)
    before = await ward.counts(session_id)
    ward.clock.advance(timedelta(minutes=1))
    again = await ward.command("physician", session_id, M.Approve(), **key)
    assert again == first
    assert await ward.counts(session_id) == before

    with pytest.raises(Refusal) as reused:
        await ward.command(
            "physician",
            session_id,
            M.Approve(),
            idempotency_key="approve-1",
            fingerprint="another request",
        )
    assert reused.value.kind == "conflict"
    assert await ward.counts(session_id) == before


async def test_a_refusal_under_a_key_is_kept_and_replayed(ward: Ward) -> None:
    session_id = await ward.new_session()
    key = {"idempotency_key": "nurse-approves", "fingerprint": "f"}
    with pytest.raises(Refusal) as refused:
        await ward.command("nurse", session_id, M.Approve(), **key)
    before = await ward.counts(session_id)
    status, body = await ward.command("nurse", session_id, M.Approve(), **key)
    assert body == refused.value.body() and status == 403
    assert await ward.counts(session_id) == before


async def test_a_due_timer_fires_through_the_unit_of_work(ward: Ward) -> None:
    session_id, body = await ward.running_session()
    ward.clock.set(datetime.fromisoformat(body["deadline"]))
    async with ward.sessionmaker() as db:
        (timer_id,) = await db.scalars(
            select(Timer.id).where(
                Timer.session_id == session_id, Timer.kind == "step", Timer.status == "pending"
            )
        )
    async with ward.sessionmaker() as db:
        # Three seconds pass while the firing waits for the session's lock: the row says it
        # fired then, not when it started to try.
        assert await timer_firing.fire(db, LockWait(ward.clock), ward.doorbell, timer_id)
    async with ward.sessionmaker() as db:
        assert not await timer_firing.fire(db, ward.clock, ward.doorbell, timer_id)  # once
        row = await service.load(db, session_id)
        assert row.status == "step_due"
        fired = await db.get(Timer, timer_id)
        assert fired is not None and fired.late_seconds == Decimal(3)
        assert fired.fired_at == ward.clock.now() + timedelta(seconds=3)


class LockWait:
    """The ward's clock as a firing sees it when it waits 3 s for the lock: every reading
    after the first is 3 s later."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.reads = clock, 0

    def now(self) -> datetime:
        self.reads += 1
        return self.clock.now() + timedelta(seconds=3 if self.reads > 1 else 0)

    def __getattr__(self, name: str) -> object:
        return getattr(self.clock, name)


async def test_due_timers_are_listed_steps_first_then_escalations_then_checks(ward: Ward) -> None:
    session_id = await ward.new_session()
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)  # before any other test's timers

    def timer(minutes: int, kind: str, status: str = "pending", **key: int) -> Timer:
        due_at = long_ago + timedelta(minutes=minutes)
        return Timer(session_id=session_id, kind=kind, due_at=due_at, status=status, **key)

    timers = {
        "check": timer(1, "alarm_check"),
        "escalation": timer(2, "escalation", alarm_number=1),
        "later step": timer(4, "step", generation=1),
        "earlier step": timer(3, "step", generation=2),
        "step over the limit": timer(5, "step", generation=3),
        "fired": timer(1, "escalation", "fired", alarm_number=2),
        "not due": timer(30, "alarm_check"),
    }
    async with ward.sessionmaker() as db:
        db.add_all(timers.values())
        await db.commit()
        ids = {name: t.id for name, t in timers.items()}
    try:
        async with ward.sessionmaker() as db:
            due = await timer_firing.due_timer_ids(db, long_ago + timedelta(minutes=10), 2)
        names = ["earlier step", "later step", "escalation", "check"]
        assert due == [ids[name] for name in names]
    finally:  # no timer loop of another test may fire these
        async with ward.sessionmaker() as db:
            await db.execute(
                update(Timer)
                .where(Timer.session_id == session_id, Timer.status == "pending")
                .values(status="cancelled")
            )
            await db.commit()


async def test_the_timer_loop_fires_nothing_until_the_clock_is_ready(ward: Ward) -> None:
    session_id, body = await ward.running_session()
    ward.clock.set(datetime.fromisoformat(body["deadline"]) + timedelta(seconds=1))
    waiting: list[str | None] = ["not yet aligned to the database's clock"]
    stop = asyncio.Event()
    loop = asyncio.create_task(
        timers.run_forever(
            ward.sessionmaker,
            ward.clock,
            ward.doorbell,
            poll_seconds=0.01,
            stop=stop,
            not_ready=lambda: waiting[0],
        )
    )

    async def status() -> str:
        async with ward.sessionmaker() as db:
            return (await service.load(db, session_id)).status

    try:
        await asyncio.sleep(0.3)  # thirty passes: the step is due, the clock is not ready
        assert await status() == "running"
        waiting[0] = None
        for _ in range(200):
            if await status() == "step_due":
                break
            await asyncio.sleep(0.01)
        assert await status() == "step_due"
    finally:
        stop.set()
        await loop
