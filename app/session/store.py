"""The session's state mapped to its tables: the row, the plan steps, the infusion segments,
the reactions, the pending timer, the event log and the snapshots. Writes only; the unit of
work commits."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alarms import logic
from app.audit import Actor
from app.session import alarm_board, alarm_store, codec, snapshots
from app.session import machine as M
from app.session.errors import Refusal
from app.session.ledger import ledger
from app.session.models import (
    DesensitizationSession,
    SessionEvent,
    SessionPlanStep,
    SessionReaction,
    StepSegment,
    Timer,
)


async def lock_unless_busy(db: AsyncSession, session_id: int) -> bool:
    """Lock the session row for a timer, or say it is busy: FOR UPDATE SKIP LOCKED on
    PostgreSQL, so a process never waits on another that is firing the same timer or on a
    command under way (the timer stays pending; the next pass, a moment later, fires it).
    SQLite has one writer at a time already."""
    locked = await db.scalar(
        select(DesensitizationSession.id)
        .where(DesensitizationSession.id == session_id)
        .with_for_update(skip_locked=True)
    )
    return locked is not None


async def load(db: AsyncSession, session_id: int, *, lock: bool = False) -> DesensitizationSession:
    query = select(DesensitizationSession).where(DesensitizationSession.id == session_id)
    if lock:
        # FOR UPDATE on PostgreSQL (SQLite writers are already serialized). populate_existing:
        # after waiting for the lock, take the row as committed, not an object read before.
        query = query.with_for_update().execution_options(populate_existing=True)
    row = await db.scalar(query)
    if row is None:
        raise Refusal("not_found", f"no session {session_id}")
    return row


async def write_board(
    db: AsyncSession, row: DesensitizationSession, board: logic.AlarmBoard
) -> None:
    row.alarms_json = alarm_board.dumps(board)
    await alarm_store.sync(db, row.id, board)


def write_state(row: DesensitizationSession, state: M.SessionState, now: datetime) -> None:
    row.status = state.status
    row.version = state.version
    row.current_step = state.current
    row.state_json = codec.dumps(state)
    row.updated_at = now


async def sync_rows(
    db: AsyncSession, session_id: int, old: M.SessionState, new: M.SessionState, now: datetime
) -> None:
    if old.plan != new.plan:
        # A draft edit or a resume replaces the steps from some position on (steps already run
        # never change): rewrite the rows from the first position that differs.
        first = next(
            (
                i
                for i, (a, b) in enumerate(zip(old.plan.steps, new.plan.steps, strict=False))
                if a != b
            ),
            min(len(old.plan.steps), len(new.plan.steps)),
        )
        await db.execute(
            delete(SessionPlanStep).where(
                SessionPlanStep.session_id == session_id, SessionPlanStep.position >= first
            )
        )
        await db.flush()
        sync_plan(db, session_id, new, existing=first)
    book = ledger(new.plan, new.segments, now)
    existing = {
        s.ordinal: s
        for s in await db.scalars(select(StepSegment).where(StepSegment.session_id == session_id))
    }
    for ordinal, delivery in enumerate(book.deliveries):
        segment = delivery.segment
        stored = existing.get(ordinal)
        if stored is None:
            db.add(
                StepSegment(
                    session_id=session_id,
                    ordinal=ordinal,
                    step_position=segment.step,
                    solution=segment.solution,
                    rate_ml_h=segment.rate_ml_h,
                    started_at=segment.started_at,
                    stopped_at=segment.stopped_at,
                    volume_ml=delivery.volume_ml,
                    dose=delivery.dose,
                )
            )
        elif stored.stopped_at is None:
            stored.stopped_at = segment.stopped_at
            stored.volume_ml = delivery.volume_ml
            stored.dose = delivery.dose
    reactions = {
        r.number: r
        for r in await db.scalars(
            select(SessionReaction).where(SessionReaction.session_id == session_id)
        )
    }
    for reaction in new.reactions:
        stored_reaction = reactions.get(reaction.number)
        if stored_reaction is None:
            stored_reaction = SessionReaction(
                session_id=session_id,
                number=reaction.number,
                onset_at=reaction.onset_at,
                at_step=reaction.at_step,
            )
            db.add(stored_reaction)
        stored_reaction.symptoms_json = json.dumps(list(reaction.symptoms))
        stored_reaction.findings_json = json.dumps(list(reaction.findings))
        stored_reaction.brown_grade = reaction.brown_grade
        stored_reaction.ctcae_grade = reaction.ctcae_grade
        stored_reaction.resolved_at = reaction.resolved_at
        stored_reaction.treatments_json = json.dumps([codec.encode(t) for t in reaction.treatments])
        stored_reaction.note = reaction.note
        stored_reaction.outcome = reaction.outcome
        stored_reaction.closed_by_abort = reaction.closed_by_abort


def sync_plan(db: AsyncSession, session_id: int, state: M.SessionState, existing: int) -> None:
    for position, step in enumerate(state.plan.steps[existing:], start=existing):
        db.add(
            SessionPlanStep(
                session_id=session_id,
                position=position,
                solution=step.solution,
                rate_ml_h=step.rate_ml_h,
                minutes=step.minutes,
                dose=step.dose,
                origin=step.origin,
                of_step=step.of_step,
            )
        )


async def replace_timer(db: AsyncSession, session_id: int, state: M.SessionState) -> None:
    await db.execute(
        update(Timer)
        .where(
            Timer.session_id == session_id,
            Timer.kind == "step",
            Timer.status == "pending",
        )
        .values(status="cancelled")
    )
    if state.deadline is not None and state.status not in M.TERMINAL:
        db.add(
            Timer(
                session_id=session_id,
                kind="step",
                generation=state.timer_generation,
                due_at=state.deadline,
                status="pending",
            )
        )


async def snapshot(
    db: AsyncSession, row: DesensitizationSession, now: datetime, before: snapshots.Before | None
) -> None:
    """Keep what the session is after this change, under its last event's seq (once: a change
    that added no event changed nothing the timeline shows). `before`: the row as the change
    found it (None: a session just created), the base of a delta. One INSERT, no read."""
    kept = snapshots.new_row(row, now, before)
    if kept is not None:
        db.add(kept)


async def append_events(
    db: AsyncSession,
    row: DesensitizationSession,
    events: tuple[M.Event, ...],
    actor: Actor,
    now: datetime,
    version: int,
) -> int:
    seq = row.last_event_seq
    for event in events:
        seq += 1
        db.add(
            SessionEvent(
                session_id=row.id,
                seq=seq,
                at=now,
                kind=event.kind,
                data_json=json.dumps(event.data, sort_keys=True, default=str),
                actor_id=actor.user_id,
                actor_role=actor.role,
                version=version,
            )
        )
    row.last_event_seq = seq
    return seq
