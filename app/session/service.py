"""Session commands: the one place that writes sessions. Each command is one transaction run
by the unit of work (app.session.unit_of_work: lock the session row, replay a resend, decide,
snapshot, remember, commit, and only then ring the doorbell); what a command decides reaches
the tables through app.session.store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import localtime
from app.alarms import logic
from app.audit import RequestInfo
from app.audit import service as audit_service
from app.auth.service import SYSTEM_ACTOR
from app.clock import Clock
from app.db import DEFERRED_BEGIN
from app.decision import RefusalKind
from app.doorbell import Doorbell
from app.labels import service as labels
from app.protocol import editing
from app.protocol.model import Protocol, ProtocolError
from app.protocol.parsing import ProtocolRequest, build_from_request, parse_positive
from app.session import (
    alarm_board,
    alarm_store,
    codec,
    presence,
    read,
    store,
    unit_of_work,
)
from app.session import machine as M
from app.session import technical_alarms as technical
from app.session.errors import Kind, Refusal
from app.session.ledger import ledger, projection
from app.session.models import (
    DesensitizationSession,
)
from app.session.plan import plan_from_protocol
from app.session.state import entry_of
from app.session.store import load
from app.session.unit_of_work import Caller, KeptRefusal, Work

# A pure core's refusals (the machine's, the alarm board's) in the session's words.
REFUSAL_KIND: dict[RefusalKind, Kind] = {
    "unknown": "not_found",
    "forbidden": "forbidden",
    "state": "state",
    "invalid": "invalid",
    "stale": "stale",
}


# Bedside checks whose details the audit log carries (app.session.bedside_checks).
AUDITED_CHECKS = frozenset({"scan_checked", "scan_refused", "double_checked"})

# --- reading -----------------------------------------------------------------------------------


def summary(row: DesensitizationSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "version": row.version,
        "current_step": row.current_step,
    }


# --- creating ----------------------------------------------------------------------------------


def refuse_if_ended(row: DesensitizationSession) -> None:
    if row.status in M.TERMINAL:
        current = summary(row)
        raise Refusal(
            "state", f"the session is {current['status']}; nothing more can be done", current
        )


async def audit_session(work: Work, action: str, **entry: Any) -> None:
    """One audit entry about this session, by the caller, at the unit's time."""
    await audit_service.append(
        work.db,
        at=work.now,
        actor=work.caller.actor,
        action=action,
        entity="session",
        entity_id=str(work.row.id),
        request=work.caller.request,
        **entry,
    )


async def run_unit(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    decide: unit_of_work.Decide,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> tuple[int, dict[str, Any]]:
    return await unit_of_work.run(
        db,
        clock,
        doorbell,
        caller,
        session_id,
        decide,
        view=read.command_view,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


# --- running a command -------------------------------------------------------------------------

ExtraWrite = Callable[[AsyncSession, DesensitizationSession, M.SessionState], Awaitable[None]]
AlarmWork = Callable[
    [logic.AlarmBoard, M.SessionState, M.SessionState, datetime],
    tuple[logic.AlarmBoard, list[logic.Event]],
]


def board_of(row: DesensitizationSession, speed: float = 1.0) -> logic.AlarmBoard:
    """The session's alarms, with escalation delays in person time for a clock this fast."""
    return alarm_board.loads(row.alarms_json, logic.AlarmSettings.for_speed(speed))


def _as_session_events(events: list[logic.Event]) -> tuple[M.Event, ...]:
    return tuple(M.Event(f"alarm_{e.kind}", dict(e.data)) for e in events)


async def _audit_alarm_events(work: Work, events: list[logic.Event]) -> None:
    for event in events:
        await audit_session(work, f"alarm.{event.kind}", after=dict(event.data))


def _technical() -> technical.TechnicalSettings:
    """Technical alarm settings; their messages give times in the facility's zone."""
    return technical.TechnicalSettings(zone=localtime.zone())


def _technical_alarms(
    board: logic.AlarmBoard, state: M.SessionState, now: datetime
) -> tuple[logic.AlarmBoard, list[logic.Event]]:
    settings = _technical()
    board, events = technical.reconcile(board, technical.conditions(state, now, settings), now)
    if technical.lost_contact_shown(board) and not technical.contact_matters(state, now, settings):
        # vitals recorded (or the session stopped): contact no longer matters
        board, ended = technical.contact_reconcile(board, None, now)
        events += ended
    return board, events


async def check_contact(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    session_id: int,
    allowance: timedelta,
) -> bool:
    """Raise, raise further or end the lost-contact alarm of one session from its state and
    the bedside screens every process has reported (app.session.presence). True when it changed."""
    await db.connection(execution_options=DEFERRED_BEGIN)  # a read first: no write lock
    row = await load(db, session_id)
    state = codec.loads(row.state_json)
    now = clock.now()
    shown = technical.lost_contact_shown(board_of(row))
    wanted = None
    if technical.contact_matters(state, now, _technical()):
        facts = await presence.seen(db, session_id, allowance)
        absent = None if facts.connected else (facts.last_seen or M.session_start(state))
        wanted = technical.lost_contact(state, now, absent, _technical())
    await db.rollback()
    if (wanted.priority if wanted is not None else None) == shown:
        return False

    def change(board: logic.AlarmBoard, at: datetime) -> logic.Result:
        changed, events = technical.contact_reconcile(board, wanted, at)
        return logic.Accepted(changed, tuple(events))

    await run_alarm_command(
        db, clock, doorbell, Caller(SYSTEM_ACTOR, RequestInfo()), session_id, change
    )
    return True


async def run_alarm_command(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    change: Callable[[logic.AlarmBoard, datetime], logic.Result],
    *,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    on_escalated: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Acknowledge, pause the audio, escalate: one transaction under the session row lock."""

    async def decide(work: Work) -> None:
        row, now = work.row, work.now
        result = change(board_of(row, clock.speed), now)
        if isinstance(result, logic.Refused):
            raise Refusal(REFUSAL_KIND[result.kind], result.reason, summary(row))
        state = codec.loads(row.state_json)
        board, technical_events = _technical_alarms(result.state, state, now)
        events = [*result.events, *technical_events]
        await store.write_board(db, row, board)
        await alarm_store.set_check(db, row.id, technical.next_change(state, now, _technical()))
        row.updated_at = now
        await work.append(_as_session_events(events), row.version, ring=bool(events))
        await _audit_alarm_events(work, events)
        if on_escalated is not None:  # after the commit: the record does not wait for the network
            for event in events:
                if event.kind == "escalated":
                    data = {"event": "alarm.escalated", "session_id": session_id, **event.data}
                    work.after_commit.append(partial(on_escalated, data))

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )


async def run_command(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    command: M.Command,
    *,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    extra: ExtraWrite | None = None,
    follow_up: M.Command | None = None,
    alarm_work: AlarmWork | None = None,
) -> tuple[int, dict[str, Any]]:
    """Returns (status, body). A refusal of the machine is an answer too: audited and, with a
    key, kept, then raised."""

    async def decide(work: Work) -> None:
        await decide_and_write(work, command, expected_version, extra, follow_up, alarm_work)

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )


async def decide_and_write(
    work: Work,
    command: M.Command,
    expected_version: int | None = None,
    extra: ExtraWrite | None = None,
    follow_up: M.Command | None = None,
    alarm_work: AlarmWork | None = None,
) -> None:
    """Run the machine on the locked session and write what it decided.

    `follow_up` is a second command that belongs to the same act (vitals that meet reaction
    criteria open the reaction): applied in the same transaction when the first is accepted,
    and simply left out when the machine refuses it."""
    db, row, now, actor = work.db, work.row, work.now, work.caller.actor
    state = codec.loads(row.state_json)
    name = entry_of(command).name
    if expected_version is not None and expected_version != row.version:
        current = summary(row)
        raise Refusal(
            "stale",
            f"the session changed (version {current['version']}, you "
            f"expected {expected_version}); reload and try again",
            current,
        )
    ctx = M.Ctx(now, actor.role, actor.user_id)
    result = M.decide(state, command, ctx)
    if isinstance(result, M.Refused):
        refusal = Refusal(REFUSAL_KIND[result.kind], result.reason, summary(row))
        await audit_session(
            work, f"session.{name}.refused", reason=result.reason, after=summary(row)
        )
        raise KeptRefusal(refusal)
    if follow_up is not None:
        second = M.decide(result.state, follow_up, ctx)
        if isinstance(second, M.Accepted):
            result = M.Accepted(
                second.state,
                result.events + second.events,
                result.timer_changed or second.timer_changed,
            )
    new = result.state
    before = summary(row)
    board, alarm_events = board_of(row, work.clock.speed), list[logic.Event]()
    if alarm_work is not None:
        board, alarm_events = alarm_work(board, state, new, now)
    board, technical_events = _technical_alarms(board, new, now)
    alarm_events += technical_events
    if alarm_events:
        await store.write_board(db, row, board)
    await alarm_store.set_check(db, row.id, technical.next_change(new, now, _technical()))
    store.write_state(row, new, now)
    await store.sync_rows(db, row.id, state, new, now)
    if extra is not None:
        await extra(db, row, new)
    if result.timer_changed:
        await store.replace_timer(db, row.id, new)
    events = result.events + _as_session_events(alarm_events)
    if state.status == "planned" and new.status == "ready":
        # The bags are verified (or need no pharmacist): each gets its label.
        bags = [b.number for b in new.plan.bags] if new.plan.kind == "infusion" else []
        printed = await labels.issue(db, row.id, bags, new.label_hours, now, actor.user_id)
        if printed:
            events += (M.Event("labels_printed", {"bags": [p.bag for p in printed]}),)
    await work.append(events, new.version, ring=True)
    await _audit_alarm_events(work, alarm_events)
    await audit_session(work, f"session.{name}", before=before, after=summary(row))
    for check in (e for e in result.events if e.kind in AUDITED_CHECKS):
        # Who checked what, on whose word: each scan and double check is an entry of its own.
        await audit_session(work, f"session.{check.kind}", after=dict(check.data))
    for override in (e for e in result.events if e.kind == "safety_override"):
        # A safety gate passed on a physician's word: its own entry, with the reason.
        await audit_session(
            work,
            f"session.{name}.override",
            reason=override.data["reason"],
            after={"gates": override.data["gates"]},
        )
    work.state = new


async def preview(
    db: AsyncSession, clock: Clock, caller: Caller, session_id: int, command: M.Command
) -> tuple[int, dict[str, Any]]:
    """What a command would make of the session (the resume dialog's step table), decided by
    the same machine and written nowhere. A refusal answers as the real command would."""
    row = await load(db, session_id)
    state = codec.loads(row.state_json)
    now = clock.now()
    result = M.decide(state, command, M.Ctx(now, caller.actor.role, caller.actor.user_id))
    if isinstance(result, M.Refused):
        current = summary(row)
        await db.rollback()
        raise Refusal(REFUSAL_KIND[result.kind], result.reason, current)
    body = await read.answer_of(db, row, result.state, now)
    await db.rollback()
    new = result.state
    start = new.next_step if new.next_step is not None else len(new.plan.steps)
    given = ledger(new.plan, new.segments, now).delivered
    steps = [
        {
            "number": p.index + 1,
            "position": p.index,
            "origin": new.plan.steps[p.index].origin,
            "of_step": new.plan.steps[p.index].of_step,
            "solution": new.plan.steps[p.index].solution,
            "rate_ml_h": optional_text(new.plan.steps[p.index].rate_ml_h),
            "minutes": str(p.minutes),
            "dose": str(p.dose),
            "cumulative": str(p.cumulative),
            "starts_after_minutes": str(p.starts_after),
        }
        for p in projection(new.plan, start, given)
    ]
    return 200, {**body, "dry_run": True, "projection": steps}


def fingerprint_of(path: str, payload: Any) -> str:
    text = json.dumps({"path": path, "payload": payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- editing a draft plan ----------------------------------------------------------------------

PlanEdit = dict[str, Any]


def apply_edit(protocol: Protocol, edit: PlanEdit) -> Protocol:
    """One edit of the protocol engine: insert a step, delete an inserted one, change one."""

    def number(name: str) -> Decimal | None:
        value = edit.get(name)
        return None if value in (None, "") else parse_positive(str(value), name, name)

    action = edit.get("action")
    if action == "insert":
        return editing.insert_step(
            protocol,
            int(edit["after"]),
            rate_ml_h=number("rate_ml_h"),
            minutes=number("minutes"),
            dose=number("dose"),
            solution=edit.get("solution"),
        )
    if action == "delete":
        return editing.delete_step(protocol, int(edit["step"]))
    if action == "edit":
        return editing.edit_step(
            protocol,
            int(edit["step"]),
            rate_ml_h=number("rate_ml_h"),
            minutes=number("minutes"),
            dose=number("dose"),
        )
    raise ProtocolError(f"unknown plan edit {action!r}: insert, delete or edit", field="action")


async def edit_plan(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    edit: PlanEdit,
    *,
    expected_version: int | None,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> tuple[int, dict[str, Any]]:
    async def decide(work: Work) -> None:
        edits = [*json.loads(work.row.plan_edits_json), edit]
        try:
            protocol = build_from_request(
                ProtocolRequest(**json.loads(work.row.parameters_json)), strict_options=False
            )
            for each in edits:
                protocol = apply_edit(protocol, each)
        except ProtocolError as error:
            raise Refusal("invalid", error.message, field=error.field) from None
        summary_text = json.dumps(edit, sort_keys=True, default=str)

        async def keep_edits(
            db: AsyncSession, row: DesensitizationSession, state: M.SessionState
        ) -> None:
            row.plan_edits_json = json.dumps(edits, sort_keys=True, default=str)

        command = M.EditPlan(plan_from_protocol(protocol), summary_text)
        await decide_and_write(work, command, expected_version, extra=keep_edits)

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )


# --- vitals ------------------------------------------------------------------------------------


async def check_open_reaction(db: AsyncSession, session_id: int, number: int) -> None:
    """Treatments and resolution name their reaction: it must be the open one."""
    row = await load(db, session_id)
    open_reaction = codec.loads(row.state_json).open_reaction
    current = summary(row)
    await db.rollback()
    if open_reaction is None or open_reaction.number != number:
        detail = (
            f"reaction {number} is not the open reaction"
            if open_reaction
            else "there is no open reaction"
        )
        raise Refusal("state", detail, current)


def optional_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
