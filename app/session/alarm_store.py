"""Writing a session's alarm board: its rows, its escalation timers and its technical-alarm
check. No commit here — the session service calls these inside its own transaction."""

from __future__ import annotations

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alarms import logic
from app.alarms.models import SessionAlarm
from app.session.models import Timer


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
        for t in await db.scalars(
            select(Timer).where(Timer.session_id == session_id, Timer.kind == "escalation")
        )
    }
    for alarm_id, due_at in deadlines.items():
        if alarm_id not in timers:
            db.add(
                Timer(
                    session_id=session_id,
                    kind="escalation",
                    alarm_number=alarm_id,
                    due_at=due_at,
                    status="pending",
                )
            )
    for number, timer in timers.items():
        if timer.status == "pending" and number not in deadlines:
            timer.status = "cancelled"  # acknowledged (or ended) before its deadline


async def set_check(db: AsyncSession, session_id: int, due_at) -> None:
    """Keep one pending technical-alarm check at `due_at` (None: no check pending). The pending
    check is moved in place: one statement on every command, no read first."""
    with db.no_autoflush:  # the session row's own UPDATE waits for the unit's one flush
        if due_at is None:
            await db.execute(_pending_check(session_id).values(status="cancelled"))
            return
        moved = await db.execute(_pending_check(session_id).values(due_at=due_at))
    if moved.rowcount == 0:  # type: ignore[attr-defined]
        db.add(Timer(session_id=session_id, kind="alarm_check", due_at=due_at, status="pending"))


def _pending_check(session_id: int) -> Update:
    return update(Timer).where(
        Timer.session_id == session_id,
        Timer.kind == "alarm_check",
        Timer.status == "pending",
    )
