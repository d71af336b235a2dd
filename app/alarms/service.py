"""Writing a session's alarm board: its rows and its escalation timers. No commit here — the
session service calls these inside its own transaction."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alarms import logic
from app.alarms.models import AlarmCheckTimer, AlarmTimer, SessionAlarm
from app.db import DEFERRED_BEGIN


async def sync(db: AsyncSession, session_id: int, board: logic.AlarmBoard) -> None:
    stored = {
        a.number: a
        for a in await db.scalars(select(SessionAlarm).where(SessionAlarm.session_id == session_id))
    }
    for alarm in board.alarms:
        row = stored.get(alarm.id)
        if row is None:
            row = SessionAlarm(session_id=session_id, number=alarm.id)
            db.add(row)
        row.priority, row.kind, row.condition = alarm.priority, alarm.kind, alarm.condition
        row.message, row.value, row.limit_in_force = alarm.message, alarm.value, alarm.limit
        row.raised_at, row.acknowledged_by = alarm.raised_at, alarm.acknowledged_by
        row.acknowledged_at, row.audio_paused_until = (
            alarm.acknowledged_at,
            alarm.audio_paused_until,
        )
        row.cleared_at, row.escalated_at = alarm.cleared_at, alarm.escalated_at

    deadlines = dict(logic.escalation_deadlines(board))
    timers = {
        t.alarm_number: t
        for t in await db.scalars(select(AlarmTimer).where(AlarmTimer.session_id == session_id))
    }
    for alarm_id, due_at in deadlines.items():
        if alarm_id not in timers:
            db.add(
                AlarmTimer(
                    session_id=session_id, alarm_number=alarm_id, due_at=due_at, status="pending"
                )
            )
    for alarm_id, timer in timers.items():
        if timer.status == "pending" and alarm_id not in deadlines:
            timer.status = "cancelled"  # acknowledged (or ended) before its deadline


async def set_check(db: AsyncSession, session_id: int, due_at) -> None:
    """Keep one pending technical-alarm check at `due_at` (None: no check pending)."""
    pending = list(
        await db.scalars(
            select(AlarmCheckTimer).where(
                AlarmCheckTimer.session_id == session_id, AlarmCheckTimer.status == "pending"
            )
        )
    )
    keep = next((t for t in pending if due_at is not None and t.due_at == due_at), None)
    for timer in pending:
        if timer is not keep:
            timer.status = "cancelled"
    if keep is None and due_at is not None:
        db.add(AlarmCheckTimer(session_id=session_id, due_at=due_at, status="pending"))


# The two kinds of stored alarm deadline: an escalation, and a technical-alarm check. Both are
# fired the same way: listed by a read, then claimed by compare-and-set in the firing transaction.
TimerKind = type[AlarmTimer] | type[AlarmCheckTimer]


async def due_ids(db: AsyncSession, kind: TimerKind, now, limit: int = 50) -> list[int]:
    await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock on SQLite
    ids = list(
        await db.scalars(
            select(kind.id)
            .where(kind.status == "pending", kind.due_at <= now)
            .order_by(kind.due_at)
            .limit(limit)
        )
    )
    await db.rollback()
    return ids


async def session_of(db: AsyncSession, kind: TimerKind, timer_id: int) -> int | None:
    return await db.scalar(select(kind.session_id).where(kind.id == timer_id))


async def claim(db: AsyncSession, kind: TimerKind, timer_id: int, now) -> int | None:
    """Compare-and-set pending -> fired; the session id when this caller won."""
    timer = await db.get(kind, timer_id)
    if timer is None or timer.status != "pending" or timer.due_at > now:
        return None
    session_id = timer.session_id
    claimed = await db.execute(
        update(kind)
        .where(kind.id == timer_id, kind.status == "pending")
        .values(status="fired", fired_at=now)
    )
    return session_id if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def view(board: logic.AlarmBoard, now) -> dict:
    sounding = logic.sounding(board, now)
    remaining = logic.pause_remaining(board, now)
    unsilenced = [a.priority for a in board.alarms if a.active and not a.acknowledged]
    return {
        "sounding": sounding,
        # What sounds once a running audio pause ends (screens switch over by themselves).
        "sounding_after_pause": max(unsilenced, key=lambda p: logic.RANK[p])
        if unsilenced
        else None,
        "audio_paused_seconds": remaining.total_seconds() if remaining else None,
        "audio_paused_until": board.audio_pause.until.isoformat()
        if board.audio_pause and remaining
        else None,
        "items": [
            {
                "id": a.id,
                "priority": a.priority,
                "kind": a.kind,
                "condition": a.condition,
                "message": a.message,
                "value": a.value,
                "limit": a.limit,
                "raised_at": a.raised_at.isoformat(),
                "active": a.active,
                "latched": a.latched,
                "acknowledged_by": a.acknowledged_by,
                "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
                "escalated_at": a.escalated_at.isoformat() if a.escalated_at else None,
                "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None,
                "colour": a.visual[0],
                "flashing": a.visual[1],
            }
            for a in board.alarms
        ],
    }
