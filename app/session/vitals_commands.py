"""Vitals commands: record a set (saved only once confirmed when it alarms or lies far from
the baseline), amend the latest, set a session's alarm thresholds. Each runs through the
session's unit of work like every other command."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock
from app.doorbell import Doorbell
from app.patients.models import Patient
from app.patients.rules import rules_age
from app.session import (
    alarm_board,
    codec,
    read,
)
from app.session import machine as M
from app.session.errors import ConfirmationNeeded, Refusal
from app.session.models import (
    DesensitizationSession,
    VitalsSet,
)
from app.session.service import (
    audit_session,
    decide_and_write,
    refuse_if_ended,
    run_unit,
)
from app.session.unit_of_work import Caller, Work
from app.session.view import VitalsSet as StoredVitals
from app.session.view import window_after
from app.vitals.rules import Evaluation, Finding, evaluate
from app.vitals.thresholds import Thresholds
from app.vitals.validation import SYMPTOMS, VitalsReading, VitalsRefusal, validate_vitals


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


# The reading a stored set is a version of: its first version has no reading_id of its own.
_reading_of_set = func.coalesce(VitalsSet.reading_id, VitalsSet.id)


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
    db: AsyncSession,
    row: DesensitizationSession,
    reading: VitalsReading,
    on: date,
    window: Sequence[StoredVitals] | None = None,
) -> Evaluation:
    """`window`: the session's window of vitals when the caller has it (it holds the newest
    baseline set); otherwise the baseline is read."""
    patient = await db.get(Patient, row.patient_id)
    age = rules_age(patient.birth_date, on) if patient is not None else None
    baseline = None
    if row.status != "ready":
        if window is None:
            baseline = await _baseline(db, row.id)
        else:
            baselines = [v for v in window if v.baseline]
            baseline = baselines[-1].reading if baselines else None
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
        refuse_if_ended(row)
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
        await audit_session(
            work,
            "session.thresholds",
            before={"thresholds": before},
            after={"thresholds": after},
            reason=reason,
        )

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )


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
        # The window the answer shows, read once: its newest baseline is the one the rules
        # compare with, and the answer's window is worked out from it once the set is stored.
        window, total = await read.window_of(db, row.id)
        evaluation = await evaluate_vitals(db, row, reading, clock.now().date(), window)
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
            db.add(vitals)  # a first version: its reading_id stays empty (it is its own reading)
            work.known_window = lambda: window_after(window, total, read.parsed(vitals))

        await decide_and_write(
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

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )


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
            .where(_reading_of_set == reading_id)
            .order_by(VitalsSet.version.desc())
        )
        if newest_id is not None and newest_id != vitals_id:
            raise Refusal(
                "state",
                f"vitals set {vitals_id} was already amended; amend the newest ({newest_id})",
            )
        latest_reading = await db.scalar(
            select(_reading_of_set)
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

        await decide_and_write(
            work,
            M.AmendLatestVitals(verdict, verdict_findings, high, baseline=latest and baseline),
            extra=add_amended,
        )

    return await run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )
