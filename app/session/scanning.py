"""Scans at the bedside and label reprints, each one transaction through the unit of work.

A scan is read first (an unreadable code is a clear 422 and changes nothing), then checked
under the session row lock against the labels on record and the bag due. A right scan is
recorded; a wrong one is recorded too, raises a HIGH alarm, and is answered as a refusal
(409) that says what was scanned and what was expected."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import localtime
from app.alarms import logic
from app.clock import Clock
from app.doorbell import Doorbell
from app.labels import service as labels
from app.labels.checks import Verdict, check_bag, check_wristband, wristband_mrn
from app.labels.code import CodeError, parse
from app.labels.policy import LabelPolicy
from app.session import bedside_checks, codec, service
from app.session import machine as M
from app.session.errors import Refusal
from app.session.unit_of_work import Caller, KeptRefusal, Work

MAX_SCANNED = 200  # characters kept of what was scanned


def _alarm_of(verdict: Verdict) -> service.AlarmWork:
    def work(
        board: logic.AlarmBoard, old: M.SessionState, new: M.SessionState, now: datetime
    ) -> tuple[logic.AlarmBoard, list[logic.Event]]:
        if verdict.ok:
            result = logic.condition_cleared(board, verdict.alarm, now)
        else:
            result = logic.raise_alarm(
                board,
                verdict.alarm,
                "HIGH",
                "technical",
                verdict.message,
                verdict.scanned,
                verdict.expected,
                now,
            )
        if isinstance(result, logic.Refused):
            return board, []
        return result.state, list(result.events)

    return work


async def record_scan(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    *,
    kind: str,
    scanned: str,
    method: str,
    policy: LabelPolicy,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> tuple[int, dict[str, Any]]:
    try:
        code = parse(scanned) if kind == "bag" else None
        mrn = wristband_mrn(scanned, policy.wristband_pattern) if kind == "wristband" else ""
    except CodeError as error:
        raise Refusal("invalid", str(error), field="code") from None

    async def decide(work: Work) -> None:
        row = work.row
        state = codec.loads(row.state_json)
        service.refuse_if_ended(row)
        refused = bedside_checks.no_scan_now(state, kind)
        if refused is not None:
            raise Refusal("state", refused, service.summary(row))  # nothing written
        if code is not None:
            due = bedside_checks.due_bag(state)
            assert due is not None  # no_scan_now saw to it
            issued = await labels.issued(work.db, code.text)
            bags = len(state.plan.bags)
            verdict = check_bag(code, issued, row.id, due, bags, work.now, localtime.zone())
            text = code.text
        else:
            assert work.patient is not None
            name = f"{work.patient.given_name} {work.patient.family_name}"
            verdict = check_wristband(mrn, work.patient.mrn, name)
            text = mrn
        command = M.RecordScan(
            verdict.kind,
            verdict.ok,
            method,  # type: ignore[arg-type]  # the schema allows only SCAN_METHODS
            verdict.scanned,
            verdict.expected,
            verdict.bag,
            text[:MAX_SCANNED],
        )
        await service.decide_and_write(work, command, alarm_work=_alarm_of(verdict))
        if not verdict.ok:
            raise KeptRefusal(Refusal("state", verdict.message, service.summary(row)))

    return await service.run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )


async def reprint_label(
    db: AsyncSession,
    clock: Clock,
    doorbell: Doorbell,
    caller: Caller,
    session_id: int,
    bag: int,
    *,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A new copy of one bag's label, numbered; the copy before it no longer scans."""

    async def decide(work: Work) -> None:
        row = work.row
        service.refuse_if_ended(row)
        state = codec.loads(row.state_json)
        if not any(b.number == bag for b in state.plan.bags):
            raise Refusal("not_found", f"the plan has no bag {bag}", service.summary(row))
        try:
            printed, voided = await labels.reprint(
                work.db, row.id, bag, work.now, work.caller.actor.user_id
            )
        except LookupError as error:
            raise Refusal("state", str(error), service.summary(row)) from None
        data = {"bag": bag, "copy": printed.copy, "voided_copy": voided}
        await work.append((M.Event("label_reprinted", data),), row.version, ring=True)
        await service.audit_session(work, "session.label_reprinted", after=data)

    return await service.run_unit(
        db, clock, doorbell, caller, session_id, decide, idempotency_key, fingerprint
    )
