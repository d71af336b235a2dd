"""Firing stored timers, whatever their kind: one query lists the due ones, one compare-and-set
claims a timer (pending -> fired), and the change its kind causes runs in the same transaction,
so a timer fires once however many processes see it, and the session command's commit is the
only one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alarms import logic
from app.audit import RequestInfo
from app.clock import Clock
from app.db import DEFERRED_BEGIN
from app.doorbell import Doorbell
from app.session import machine as M
from app.session import service
from app.session.errors import Refusal
from app.session.models import TIMER_KINDS, Timer
from app.session.store import lock_unless_busy
from app.session.unit_of_work import Caller

# At most this many timers of each kind per pass, so a backlog of one kind never holds up
# another.
PER_KIND = 50

OnEscalated = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Fired:
    """A timer this caller fired: its kind, and how late (the row's late_seconds)."""

    kind: str
    late_seconds: float


async def due_timer_ids(db: AsyncSession, now: datetime, per_kind: int = PER_KIND) -> list[int]:
    """Due pending timers in firing order: steps, then escalations, then alarm checks (a step
    changes what the alarms look at), each kind soonest first."""
    await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock on SQLite
    ids = list(await db.scalars(_due_statement(), {"now": now, "per_kind": per_kind}))
    await db.rollback()
    return ids


@lru_cache(maxsize=1)
def _due_statement() -> Any:
    """due_timer_ids' statement, built once: the loop asks several times a second."""
    place = func.row_number().over(partition_by=Timer.kind, order_by=(Timer.due_at, Timer.id))
    due = (
        select(Timer.id, Timer.kind, Timer.due_at, place.label("place"))
        .where(Timer.status == "pending", Timer.due_at <= bindparam("now"))
        .subquery()
    )
    kind_order = case({kind: rank for rank, kind in enumerate(TIMER_KINDS)}, value=due.c.kind)
    return (
        select(due.c.id)
        .where(due.c.place <= bindparam("per_kind", type_=Integer))
        .order_by(kind_order, due.c.due_at, due.c.id)
    )


async def fire(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    timer_id: int,
    on_escalated: OnEscalated | None = None,
) -> Fired | None:
    """Fire one due timer: claim it and make the change of its kind, in one transaction. None
    when another process (or a replacement) got there first, or its session is busy."""
    claimed = await _claim(db, timer_id, clock)
    if claimed is None:
        await db.rollback()
        return None
    timer, late = claimed
    await FIRE_BY_KIND[timer.kind](db, clock, doorbell, timer, on_escalated)
    return Fired(timer.kind, float(late))


async def _claim(db: AsyncSession, timer_id: int, clock: Clock) -> tuple[Timer, Decimal] | None:
    """Compare-and-set pending -> fired, its lateness recorded; the timer and its lateness when
    this caller won."""
    timer = await db.get(Timer, timer_id)
    if timer is None or timer.status != "pending" or timer.due_at > clock.now():
        return None
    # Locks in the order every command takes them: the session row, then its timers.
    if not await lock_unless_busy(db, timer.session_id):
        return None
    now = clock.now()  # it fires now, after any wait for the lock: the row says when it did
    late = Decimal(str(round((now - timer.due_at).total_seconds(), 3)))
    claimed = await db.execute(
        update(Timer)
        # Still due: a pending alarm check is moved in place by the commands.
        .where(Timer.id == timer_id, Timer.status == "pending", Timer.due_at <= now)
        .values(status="fired", fired_at=now, late_seconds=late)
    )
    return (timer, late) if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def _system() -> Caller:
    return Caller(service.SYSTEM_ACTOR, RequestInfo())


async def _step_due(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    timer: Timer,
    on_escalated: OnEscalated | None,
) -> None:
    assert timer.generation is not None  # the table's check: a step timer has its generation
    command = M.TimerFired(timer.generation)
    # A refusal of the machine is committed (audited) with the claim: the timer is spent.
    with suppress(Refusal):
        await service.run_command(db, clock, doorbell, _system(), timer.session_id, command)


async def _escalate(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    timer: Timer,
    on_escalated: OnEscalated | None,
) -> None:
    await service.run_alarm_command(
        db,
        clock,
        doorbell,
        _system(),
        timer.session_id,
        logic.escalate_due,
        on_escalated=on_escalated,
    )


async def _check_alarms(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    timer: Timer,
    on_escalated: OnEscalated | None,
) -> None:
    """Bring the technical alarms up to date: a due step turning unconfirmed, vitals coming
    due."""
    await service.run_alarm_command(db, clock, doorbell, _system(), timer.session_id, logic.tick)


FireKind = Callable[[AsyncSession, Clock, Doorbell, Timer, OnEscalated | None], Awaitable[None]]
FIRE_BY_KIND: dict[str, FireKind] = {
    "step": _step_due,
    "escalation": _escalate,
    "alarm_check": _check_alarms,
}
