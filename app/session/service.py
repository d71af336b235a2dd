"""Session commands: the one place that writes sessions. Each command is one transaction run
by the unit of work (app.session.unit_of_work: lock the session row, replay a resend, decide,
snapshot, remember, commit, and only then ring the doorbell); what a command decides reaches
the tables through app.session.store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import localtime
from app.alarms import logic
from app.audit import RequestInfo
from app.audit import service as audit_service
from app.auth.models import User
from app.auth.service import SYSTEM_ACTOR
from app.clock import Clock
from app.db import DEFERRED_BEGIN
from app.decision import RefusalKind
from app.doorbell import Doorbell
from app.patients import history as H
from app.patients.models import Patient
from app.patients.rules import rules_age
from app.protocol import editing
from app.protocol.model import Protocol, ProtocolError
from app.protocol.parsing import ProtocolRequest, build_from_request, parse_positive
from app.protocol.screening import IndexReaction, screen
from app.session import (
    alarm_board,
    alarm_store,
    codec,
    history,
    presence,
    read,
    store,
    unit_of_work,
)
from app.session import machine as M
from app.session import technical_alarms as technical
from app.session.errors import ConfirmationNeeded, Kind, Refusal
from app.session.ledger import ledger, projection
from app.session.models import (
    DesensitizationSession,
    VitalsSet,
)
from app.session.plan import plan_from_protocol
from app.session.state import entry_of
from app.session.store import load
from app.session.unit_of_work import Caller, KeptRefusal, Work
from app.session.view import DEFAULT_DILUENT
from app.session.view_json import as_json
from app.vitals.rules import Evaluation, Finding, evaluate
from app.vitals.thresholds import Thresholds
from app.vitals.validation import SYMPTOMS, VitalsReading, VitalsRefusal, validate_vitals

# A pure core's refusals (the machine's, the alarm board's) in the session's words.
REFUSAL_KIND: dict[RefusalKind, Kind] = {
    "unknown": "not_found",
    "forbidden": "forbidden",
    "state": "state",
    "invalid": "invalid",
    "stale": "stale",
}


@dataclass(frozen=True)
class NewSession:
    patient_id: int
    drug: str
    route: str
    protocol: ProtocolRequest | None  # None: copied from `copy_from`
    index_reaction: IndexReaction | None  # None: copied from `copy_from`
    spirometry_required: bool = False
    pharmacist_signoff: bool = True
    observation_minutes: Decimal = Decimal(30)
    copy_from: int | None = None
    vitals_every_minutes: Decimal = Decimal(30)
    location: str | None = None  # chair or bay
    assigned_nurse: str | None = None  # user name of a nurse
    diluent: str | None = None


# --- reading -----------------------------------------------------------------------------------


def summary(row: DesensitizationSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "version": row.version,
        "current_step": row.current_step,
    }


# --- creating ----------------------------------------------------------------------------------


async def create_session(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    new: NewSession,
    *,
    tolerance: H.TolerancePolicy | None = None,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> DesensitizationSession | tuple[int, dict[str, Any]]:
    """The new session's row; or, for a resend of a request already answered (the same
    Idempotency-Key from the same person), the first answer (status, body), and nothing
    written."""
    replayed = await unit_of_work.replay(db, caller, idempotency_key, fingerprint)
    if replayed is not None:
        return replayed
    try:
        return await _create_session(
            db, clock, doorbell, caller, new, tolerance, idempotency_key, fingerprint
        )
    except IntegrityError:
        # Two sends of one request at once: the other committed first; answer as it did.
        await db.rollback()
        replayed = await unit_of_work.replay(db, caller, idempotency_key, fingerprint)
        if replayed is None:
            raise
        return replayed


async def _create_session(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    new: NewSession,
    tolerance: H.TolerancePolicy | None,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> DesensitizationSession:
    patient = await db.get(Patient, new.patient_id)
    if patient is None:
        raise Refusal("not_found", f"no patient {new.patient_id}", field="patient_id")
    edits: list[PlanEdit] = []
    request, index = new.protocol, new.index_reaction
    if new.copy_from is not None:
        request, edits, copied_index = await _copied_plan(db, new)
        index = index or copied_index
    assert request is not None and index is not None  # the request schema sees to it
    screening = screen(index)
    if not screening.may_desensitize:
        raise Refusal("invalid", " ".join(screening.reasons), field="index_reaction")
    try:
        protocol = build_from_request(request, strict_options=False)
        for edit in edits:
            protocol = apply_edit(protocol, edit)
    except ProtocolError as error:
        raise Refusal("invalid", error.message, field=error.field) from None
    now = clock.now()
    (drug_history,) = [
        h
        for h in H.histories(
            [*await history.past_sessions(db, patient.id, now), _placeholder(new, now)],
            now,
            tolerance,
        )
        if H.drug_key(h.drug) == H.drug_key(new.drug)
    ]
    nurse_id = await _nurse_id(db, new.assigned_nurse)
    spirometry = new.spirometry_required or bool(patient.asthma)
    state = M.new_session(
        plan_from_protocol(protocol),
        pharmacist_signoff=new.pharmacist_signoff,
        spirometry_required=spirometry,
        observation_minutes=new.observation_minutes,
        vitals_every_minutes=new.vitals_every_minutes,
    )
    row = DesensitizationSession(
        patient_id=patient.id,
        drug=new.drug,
        route=new.route,
        target_dose=protocol.target_dose,
        unit=protocol.unit,
        template=protocol.template,
        parameters_json=json.dumps(_protocol_parameters(request), sort_keys=True),
        plan_edits_json=json.dumps(edits, sort_keys=True, default=str),
        alarms_json=alarm_board.EMPTY_BOARD_JSON,
        thresholds_json="{}",
        index_reaction_json=json.dumps(_index_reaction(index), sort_keys=True),
        screening_json=json.dumps(
            {
                "outcome": screening.outcome,
                "reasons": screening.reasons,
                "suggested_template": screening.suggested_template,
                "icu_setting": screening.icu_setting,
                "copied_from": new.copy_from,
                "tolerance": history.tolerance_view(drug_history.tolerance),
                "suggestions": history.history_view(drug_history)["suggestions"],
            },
            sort_keys=True,
        ),
        risk_tier="high" if screening.high_risk else "standard",
        status=state.status,
        version=state.version,
        current_step=None,
        state_json=codec.dumps(state),
        last_event_seq=0,
        created_at=now,
        created_by=caller.actor.user_id or 0,
        updated_at=now,
        location=new.location,
        assigned_nurse_id=nurse_id,
        diluent=new.diluent or DEFAULT_DILUENT,
    )
    db.add(row)
    await db.flush()
    store.sync_plan(db, row.id, state, existing=0)
    seq = await store.append_events(
        db,
        row,
        (
            M.Event(
                "created",
                {
                    "template": protocol.template,
                    "target_dose": str(protocol.target_dose),
                    "unit": protocol.unit,
                    "risk_tier": row.risk_tier,
                },
            ),
        ),
        caller.actor,
        now,
        state.version,
    )
    await store.snapshot(db, row, now)
    await audit_service.append(
        db,
        at=now,
        actor=caller.actor,
        action="session.create",
        entity="session",
        entity_id=str(row.id),
        after={
            **summary(row),
            "patient_id": patient.id,
            "drug": new.drug,
            "template": protocol.template,
            "target_dose": str(protocol.target_dose),
        },
        request=caller.request,
    )
    if idempotency_key is not None:
        answer = as_json(await read.current_view(db, row, now))
        await unit_of_work.remember(db, caller, idempotency_key, fingerprint, 201, answer, now)
    await unit_of_work.commit_and_ring(db, doorbell, row.id, seq)
    return row


async def _nurse_id(db: AsyncSession, username: str | None) -> int | None:
    """The id of the nurse a session is assigned to; a clear refusal for anyone else."""
    if not username:
        return None
    user = await db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or user.disabled_at is not None:
        raise Refusal("invalid", f"no active user {username!r} to assign", field="assigned_nurse")
    if user.role != "nurse":
        raise Refusal(
            "invalid",
            f"{username} is a {user.role}, not a nurse: assign a nurse",
            field="assigned_nurse",
        )
    return user.id


async def assign(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    location: str | None,
    assigned_nurse: str | None,
    *,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> tuple[int, dict[str, Any]]:
    """Where the patient sits and who nurses them: shown on the board, audited, an event."""

    async def decide(work: Work) -> None:
        row = work.row
        _refuse_if_ended(row)
        nurse_id = await _nurse_id(db, assigned_nurse)
        before = {"location": row.location, "assigned_nurse_id": row.assigned_nurse_id}
        after = {"location": location, "assigned_nurse_id": nurse_id}
        row.location, row.assigned_nurse_id, row.updated_at = location, nurse_id, work.now
        event = M.Event("assigned", {"location": location, "nurse": assigned_nurse})
        await work.append((event,), row.version, ring=True)
        await _audit(work, "session.assign", before=before, after=after)

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


def _refuse_if_ended(row: DesensitizationSession) -> None:
    if row.status in M.TERMINAL:
        current = summary(row)
        raise Refusal(
            "state", f"the session is {current['status']}; nothing more can be done", current
        )


async def _audit(work: Work, action: str, **entry: Any) -> None:
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


async def _run(
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
        view=read.answer_of,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


def _placeholder(new: NewSession, now: datetime) -> H.PastSession:
    """The session being created, so its drug has a history even when it is the first."""
    return H.PastSession(0, new.drug, "planned", "", Decimal(0), "", now, None)


async def _copied_plan(
    db: AsyncSession, new: NewSession
) -> tuple[ProtocolRequest, list[PlanEdit], IndexReaction]:
    """The plan of an earlier session of the same patient and drug, to copy."""
    assert new.copy_from is not None
    source = await db.get(DesensitizationSession, new.copy_from)
    if source is None:
        raise Refusal("not_found", f"no session {new.copy_from} to copy", field="copy_from")
    if source.patient_id != new.patient_id:
        raise Refusal(
            "invalid", f"session {source.id} belongs to another patient", field="copy_from"
        )
    if H.drug_key(source.drug) != H.drug_key(new.drug):
        raise Refusal(
            "invalid",
            f"session {source.id} gave {source.drug}, not {new.drug}: copy a plan of the same drug",
            field="copy_from",
        )
    given = json.loads(source.index_reaction_json)
    index = IndexReaction(
        reactions=frozenset(given["reactions"]),
        hypotension=given["hypotension"],
        desaturation=given["desaturation"],
        beta_blocker=given["beta_blocker"],
        cardiac_disease=given["cardiac_disease"],
        fev1_percent_predicted=Decimal(given["fev1_percent_predicted"])
        if given["fev1_percent_predicted"] is not None
        else None,
    )
    request = ProtocolRequest(**json.loads(source.parameters_json))
    return request, json.loads(source.plan_edits_json), index


def _protocol_parameters(request: ProtocolRequest) -> dict[str, Any]:
    return {k: v for k, v in request.__dict__.items() if v not in (None, "", [])}


def _index_reaction(index: IndexReaction) -> dict[str, Any]:
    return {
        "reactions": sorted(index.reactions),
        "hypotension": index.hypotension,
        "desaturation": index.desaturation,
        "beta_blocker": index.beta_blocker,
        "cardiac_disease": index.cardiac_disease,
        "fev1_percent_predicted": str(index.fev1_percent_predicted)
        if index.fev1_percent_predicted is not None
        else None,
    }


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
        await _audit(work, f"alarm.{event.kind}", after=dict(event.data))


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

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


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
        await _decide(work, command, expected_version, extra, follow_up, alarm_work)

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


async def _decide(
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
        await _audit(work, f"session.{name}.refused", reason=result.reason, after=summary(row))
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
    await work.append(events, new.version, ring=True)
    await _audit_alarm_events(work, alarm_events)
    await _audit(work, f"session.{name}", before=before, after=summary(row))
    for override in (e for e in result.events if e.kind == "safety_override"):
        # A safety gate passed on a physician's word: its own entry, with the reason.
        await _audit(
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
            "rate_ml_h": _str(new.plan.steps[p.index].rate_ml_h),
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
        await _decide(work, command, expected_version, extra=keep_edits)

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


# --- vitals ------------------------------------------------------------------------------------


def _vitals_row(
    session_id: int,
    reading: VitalsReading,
    ok: bool,
    caller: Caller,
    clock: Clock,
    status: str,
    step: int | None,
    *,
    baseline: bool,
) -> VitalsSet:
    return VitalsSet(
        session_id=session_id,
        version=1,
        recorded_at=clock.now(),
        recorded_by=caller.actor.user_id or 0,
        session_status=status,
        step_position=step,
        baseline=baseline,
        values_json=json.dumps(reading.as_dict(), default=str, sort_keys=True),
        within_limits=ok,
    )


def within_limits(evaluation: Evaluation) -> bool:
    """Fresh vitals allow a resume when they breach no MEDIUM or HIGH limit and show no
    symptom (product-spec §3); otherwise only a physician's override does."""
    return evaluation.within_limits


def _finding_words(evaluation: Evaluation) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every MEDIUM and HIGH finding in words (measured findings, then symptoms by name), and
    the HIGH ones: what the record and the start gate keep."""

    def words(priorities: tuple[str, ...]) -> tuple[str, ...]:
        symptoms = [
            f.words for f in evaluation.findings if f.is_symptom and f.priority in priorities
        ]
        return (*evaluation.clinical_findings(priorities), *symptoms)  # type: ignore[arg-type]

    return words(("HIGH", "MEDIUM")), words(("HIGH",))


async def _baseline(db: AsyncSession, session_id: int) -> VitalsReading | None:
    """The newest version of the latest baseline reading, or None."""
    rows = list(
        await db.scalars(
            select(VitalsSet)
            .where(VitalsSet.session_id == session_id, VitalsSet.baseline.is_(True))
            .order_by(VitalsSet.id)
        )
    )
    if not rows:
        return None
    reading = validate_vitals(json.loads(rows[-1].values_json), spirometry_required=False)
    return reading if isinstance(reading, VitalsReading) else None


async def evaluate_vitals(
    db: AsyncSession, row: DesensitizationSession, reading: VitalsReading, on: date
) -> Evaluation:
    patient = await db.get(Patient, row.patient_id)
    age = rules_age(patient.birth_date, on) if patient is not None else None
    baseline = None if row.status == "ready" else await _baseline(db, row.id)
    return evaluate(reading, baseline, thresholds_of(row), age_years=age)


def thresholds_of(row: DesensitizationSession) -> Thresholds:
    return Thresholds().with_overrides(json.loads(row.thresholds_json))


async def set_thresholds(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    overrides: dict[str, Any],
    reason: str,
    *,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> tuple[int, dict[str, Any]]:
    """A physician changes this session's alarm thresholds: validated, audited with before and
    after, and used by every vitals set from now on."""

    async def decide(work: Work) -> None:
        row = work.row
        _refuse_if_ended(row)
        before = json.loads(row.thresholds_json)
        try:
            changed = thresholds_of(row).with_overrides(overrides)
        except ValueError as error:
            raise Refusal("invalid", str(error), field="overrides") from None
        after = {name: str(value) for name, value in changed.overrides().items()}
        row.thresholds_json = json.dumps(after, sort_keys=True)
        row.updated_at = work.now
        event = M.Event("thresholds_changed", {"before": before, "after": after, "reason": reason})
        await work.append((event,), row.version, ring=True)
        await _audit(
            work,
            "session.thresholds",
            before={"thresholds": before},
            after={"thresholds": after},
            reason=reason,
        )

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


def _finding_view(finding: Finding) -> dict[str, Any]:
    return {
        "priority": finding.priority,
        "condition": finding.condition,
        "field": finding.field,
        "value": str(finding.value),
        "limit": None if finding.limit is None else str(finding.limit),
        "message": finding.message,
    }


async def record_vitals(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    raw: Mapping[str, Any],
    *,
    confirmed: bool,
    expected_version: int | None,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> tuple[int, dict[str, Any]]:
    """Save a vitals set. Impossible values are refused (invalid, naming field and range); one
    that meets an alarm condition is not saved until confirmed (naming the values); once saved,
    one that meets reaction criteria opens a reaction and pauses the session in the same
    transaction."""

    async def decide(work: Work) -> None:
        row = work.row
        # Asthma, or the physician's choice: FEV1 or peak flow (or why not) in every set.
        required = codec.loads(row.state_json).checklist.spirometry_required
        reading = validate_vitals(raw, spirometry_required=required)
        if isinstance(reading, VitalsRefusal):
            raise Refusal("invalid", reading.message, field=",".join(reading.fields))
        evaluation = await evaluate_vitals(db, row, reading, clock.now().date())
        if evaluation.needs_confirmation and not confirmed:
            findings = [_finding_view(f) for f in evaluation.findings]
            doubts = [{"field": d.field, "message": d.message} for d in evaluation.suspicious]
            raise ConfirmationNeeded(findings, doubts)
        ok = within_limits(evaluation)
        found, high = _finding_words(evaluation)
        spirometry = any(reading.status_of(f) == "measured" for f in ("fev1_l", "peak_flow_l_min"))
        symptoms = tuple(code for code in SYMPTOMS if code in reading.symptoms)
        follow_up = None
        if evaluation.meets_reaction_criteria:
            follow_up = M.ReportReaction(
                symptoms=symptoms,
                note="; ".join(f.message for f in evaluation.findings),
                findings=evaluation.clinical_findings(),
            )

        async def add_vitals(
            db: AsyncSession, row: DesensitizationSession, state: M.SessionState
        ) -> None:
            vitals = _vitals_row(
                row.id,
                reading,
                ok,
                caller,
                clock,
                state.status,
                state.current,
                baseline=state.status == "ready",
            )
            db.add(vitals)
            await db.flush()
            vitals.reading_id = vitals.id

        await _decide(
            work,
            M.RecordVitals(
                within_limits=ok,
                has_spirometry=spirometry,
                findings=found,
                high_findings=high,
                symptoms=symptoms,
            ),
            expected_version=expected_version,
            extra=add_vitals,
            follow_up=follow_up,
            alarm_work=lambda board, old, new, at: alarm_board.after_vitals(
                board,
                evaluation,
                new.reactions[-1] if len(new.reactions) > len(old.reactions) else None,
                at,
            ),
        )

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


async def amend_vitals(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    vitals_id: int,
    reading: VitalsReading,
    reason: str,
    *,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> tuple[int, dict[str, Any]]:
    """A correction is a new version naming the one it corrects, with a reason; the original
    stays as it was. Correcting the newest reading also corrects what the gates see."""

    async def decide(work: Work) -> None:
        row = work.row
        why = reason.strip()
        if not why:
            raise Refusal("invalid", "an amendment needs a reason", field="reason")
        original = await db.scalar(
            select(VitalsSet).where(VitalsSet.id == vitals_id, VitalsSet.session_id == session_id)
        )
        if original is None:
            raise Refusal("not_found", f"no vitals set {vitals_id} in session {session_id}")
        reading_id = original.reading_id or original.id
        newest_id = await db.scalar(
            select(VitalsSet.id)
            .where(VitalsSet.reading_id == reading_id)
            .order_by(VitalsSet.version.desc())
        )
        if newest_id is not None and newest_id != vitals_id:
            raise Refusal(
                "state",
                f"vitals set {vitals_id} was already amended; amend the newest ({newest_id})",
            )
        latest_reading = await db.scalar(
            select(VitalsSet.reading_id)
            .where(VitalsSet.session_id == session_id)
            .order_by(VitalsSet.id.desc())
        )
        version, step, baseline = original.version, original.step_position, original.baseline
        state = codec.loads(row.state_json)
        if state.checklist.spirometry_required and not any(
            reading.status_of(f) is not None for f in ("fev1_l", "peak_flow_l_min")
        ):
            raise Refusal(
                "invalid",
                "spirometry is required: record fev1_l or peak_flow_l_min, or mark one "
                "unable_to_obtain or refused with a reason",
                field="spirometry",
            )
        evaluation = await evaluate_vitals(db, row, reading, clock.now().date())
        ok = within_limits(evaluation)
        found, high = _finding_words(evaluation)
        latest = latest_reading == reading_id
        verdict = ok if latest else state.last_vitals_within_limits
        verdict_findings = found if latest else state.last_vitals_findings

        async def add_amended(
            db: AsyncSession, row: DesensitizationSession, state: M.SessionState
        ) -> None:
            amended = _vitals_row(
                row.id, reading, ok, caller, clock, state.status, step, baseline=baseline
            )
            amended.reading_id, amended.version, amended.supersedes_id = (
                reading_id,
                version + 1,
                vitals_id,
            )
            amended.amendment_reason = why[:2000]
            db.add(amended)

        await _decide(
            work,
            M.AmendLatestVitals(verdict, verdict_findings, high, baseline=latest and baseline),
            extra=add_amended,
        )

    return await _run(db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint)


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


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
