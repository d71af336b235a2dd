"""Creating a session (its plan from a protocol or copied from an earlier session, screened
against the patient's history) and assigning its chair and nurse."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.auth.models import User
from app.clock import Clock
from app.doorbell import Doorbell
from app.labels.policy import NO_HIGH_ALERT, LabelPolicy
from app.patients import history as H
from app.patients.models import Patient
from app.protocol.model import ProtocolError
from app.protocol.parsing import ProtocolRequest, build_from_request
from app.protocol.screening import IndexReaction, screen
from app.session import (
    alarm_board,
    codec,
    history,
    read,
    store,
    unit_of_work,
)
from app.session import machine as M
from app.session.errors import Refusal
from app.session.models import (
    DesensitizationSession,
)
from app.session.plan import plan_from_protocol
from app.session.service import (
    PlanEdit,
    apply_edit,
    audit_session,
    refuse_if_ended,
    run_unit,
    summary,
)
from app.session.unit_of_work import Caller, Work
from app.session.view import DEFAULT_DILUENT
from app.session.view_json import as_json


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


async def create_session(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    new: NewSession,
    *,
    tolerance: H.TolerancePolicy | None = None,
    labels: LabelPolicy = NO_HIGH_ALERT,
    scan_to_verify: bool = False,
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
            db,
            clock,
            doorbell,
            caller,
            new,
            tolerance,
            idempotency_key,
            fingerprint,
            labels,
            scan_to_verify,
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
    labels: LabelPolicy,
    scan_to_verify: bool,
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
        scan_required=scan_to_verify,
        double_check_required=labels.is_high_alert(new.drug),
        label_hours=labels.stability_for(new.drug),
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
    await store.append_events(
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
    await store.snapshot(db, row, now, None)
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
    await unit_of_work.commit_and_ring(db, doorbell, row.id, row.last_event_seq)
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
        refuse_if_ended(row)
        nurse_id = await _nurse_id(db, assigned_nurse)
        before = {"location": row.location, "assigned_nurse_id": row.assigned_nurse_id}
        after = {"location": location, "assigned_nurse_id": nurse_id}
        row.location, row.assigned_nurse_id, row.updated_at = location, nurse_id, work.now
        event = M.Event("assigned", {"location": location, "nurse": assigned_nurse})
        await work.append((event,), row.version, ring=True)
        await audit_session(work, "session.assign", before=before, after=after)

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
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
