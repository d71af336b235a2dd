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
from app.patients.models import Patient
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


async def load(db: AsyncSession, session_id: int) -> DesensitizationSession:
    """The session row, for a read; a command locks it with load_for_command."""
    row = await db.scalar(
        select(DesensitizationSession).where(DesensitizationSession.id == session_id)
    )
    if row is None:
        raise Refusal("not_found", f"no session {session_id}")
    return row


async def load_for_command(
    db: AsyncSession, session_id: int
) -> tuple[DesensitizationSession, Patient | None]:
    """The session row locked for a command, and its patient read in the same statement (the
    vitals rules and the answer both need the patient: the caller keeps it, so later gets of it
    in this transaction are answered from the session's identity map, not the database)."""
    query = (
        select(DesensitizationSession, Patient)
        .outerjoin(Patient, Patient.id == DesensitizationSession.patient_id)
        .where(DesensitizationSession.id == session_id)
        # FOR UPDATE on PostgreSQL (SQLite writers are already serialized). populate_existing:
        # after waiting for the lock, take the row as committed, not an object read before.
        .with_for_update(of=DesensitizationSession)
        .execution_options(populate_existing=True)
    )
    found = (await db.execute(query)).first()
    if found is None:
        raise Refusal("not_found", f"no session {session_id}")
    return found[0], found[1]


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
    # Written without reading first: the rows of the old state's segments and reactions exist
    # (this function wrote them), so only what changed is inserted or updated.
    with db.no_autoflush:  # the row's own UPDATE waits for the unit's one flush
        if old.segments != new.segments:
            await _sync_segments(db, session_id, old, new, now)
        for reaction in new.reactions:
            index = reaction.number - 1
            before = old.reactions[index] if index < len(old.reactions) else None
            if reaction != before:
                await _sync_reaction(db, session_id, reaction, is_new=before is None)


async def _sync_segments(
    db: AsyncSession, session_id: int, old: M.SessionState, new: M.SessionState, now: datetime
) -> None:
    """Segments only grow, and only the open one changes (it stops). An open segment's volume
    is written when it opens and when it stops; the views work it out from the state."""
    book = ledger(new.plan, new.segments, now)
    for ordinal, delivery in enumerate(book.deliveries):
        segment = delivery.segment
        if ordinal >= len(old.segments):
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
        elif old.segments[ordinal] != segment:
            await db.execute(
                update(StepSegment)
                .where(StepSegment.session_id == session_id, StepSegment.ordinal == ordinal)
                .values(
                    stopped_at=segment.stopped_at, volume_ml=delivery.volume_ml, dose=delivery.dose
                )
            )


async def _sync_reaction(
    db: AsyncSession, session_id: int, reaction: M.Reaction, *, is_new: bool
) -> None:
    values = {
        "symptoms_json": json.dumps(list(reaction.symptoms)),
        "findings_json": json.dumps(list(reaction.findings)),
        "brown_grade": reaction.brown_grade,
        "ctcae_grade": reaction.ctcae_grade,
        "resolved_at": reaction.resolved_at,
        "treatments_json": json.dumps([codec.encode(t) for t in reaction.treatments]),
        "note": reaction.note,
        "outcome": reaction.outcome,
        "closed_by_abort": reaction.closed_by_abort,
    }
    if is_new:
        db.add(
            SessionReaction(
                session_id=session_id,
                number=reaction.number,
                onset_at=reaction.onset_at,
                at_step=reaction.at_step,
                **values,
            )
        )
        return
    await db.execute(
        update(SessionReaction)
        .where(SessionReaction.session_id == session_id, SessionReaction.number == reaction.number)
        .values(**values)
    )


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
) -> list[SessionEvent]:
    """Add the events, numbered on from the session's last; the rows added, oldest first."""
    seq = row.last_event_seq
    added = []
    for event in events:
        seq += 1
        added.append(
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
    db.add_all(added)
    row.last_event_seq = seq
    return added
