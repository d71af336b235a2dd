"""The printable session report: plan beside the actual administration, vitals with the trend
chart, alarms, reactions and treatments, deviations from the plan, pauses and signatures.

`build_report` is pure: the session view (app.session.service.current_view), the session's
events, the people named in them and the approved plan go in; the report's rows come out, with
the cumulative doses, pause durations and deviations worked out. The route only reads and
renders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import localtime
from app.audit import service as audit_service
from app.auth.dependencies import request_info, require_permission
from app.auth.models import User
from app.auth.service import SignedIn
from app.db import DEFERRED_BEGIN
from app.deps import Clock, Sessionmaker
from app.live import present as P
from app.live import render
from app.patients.models import Patient
from app.patients.rules import age_in_years, rules_age
from app.protocol.screening import REACTION_LABELS
from app.session import codec, service
from app.session.errors import Refusal
from app.session.ledger import PRECISION
from app.session.models import SessionEvent
from app.session.plan import Plan
from app.session.schemas import MAX_ID
from app.templating import no_such_session, templates
from app.vitals.rules import symptom_words

router = APIRouter(include_in_schema=False)

ZERO = Decimal(0)

ORIGIN_TITLES = {
    "plan": "plan",
    "inserted": "inserted in draft",
    "edited": "edited in draft",
    "repeat": "repeat",
    "step_back": "step back",
    "intermediate": "intermediate",
    "finish": "finish",
}
RESUME_TITLES = {
    "finish": "finish the interrupted step",
    "repeat": "repeat the step",
    "back1": "step back one step",
    "back2": "step back two steps",
}
SIGNED_EVENTS = {
    "created": "Plan drafted",
    "plan_edited": "Draft plan edited",
    "approved": "Plan approved",
    "bags_verified": "Bags verified",
    "assigned": "Chair and nurse set",
    "started": "Infusion started",
    "paused": "Hold (paused)",
    "reaction_resolved": "Reaction resolved and graded",
    "reaction_closed": "Reaction closed by the abort and graded",
    "safety_override": "Safety gate overridden",
    "resumed": "Resumed",
    "completed": "Session completed",
    "aborted": "Session aborted",
}
INDEX_FLAGS = (
    ("hypotension", "hypotension at the index reaction"),
    ("desaturation", "desaturation at the index reaction"),
    ("beta_blocker", "takes a beta-blocker"),
    ("cardiac_disease", "cardiac disease"),
)
VITAL_STATUS = {"unable_to_obtain": "unable", "refused": "refused"}


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRecord:
    """One row of `session_event`, decoded."""

    seq: int
    at: datetime
    kind: str
    data: Mapping[str, Any]
    actor_id: int | None
    actor_role: str


@dataclass(frozen=True)
class Person:
    username: str
    display_name: str

    @property
    def name(self) -> str:
        if self.display_name and self.display_name != self.username:
            return f"{self.display_name} ({self.username})"
        return self.username


@dataclass(frozen=True)
class PatientFacts:
    family_name: str
    given_name: str
    mrn: str
    birth_date: date
    sex: str | None
    weight_kg: Decimal


# --- output rows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagRow:
    number: int
    label: str
    volume_ml: Decimal
    concentration: Decimal
    amount: Decimal


@dataclass(frozen=True)
class AdministrationRow:
    """One segment as it happened, with the running total."""

    ordinal: int  # 1-based
    step: int  # 1-based plan step
    origin: str
    bag: int | None
    rate_ml_h: Decimal | None
    started_at: datetime
    stopped_at: datetime | None  # None: still running
    minutes: Decimal | None  # None for a dose given at once
    volume_ml: Decimal | None
    dose: Decimal
    cumulative: Decimal


@dataclass(frozen=True)
class PlanRow:
    """One step of the plan as it stands, against the approved step it stands for and what
    was actually given."""

    step: int  # 1-based
    origin: str
    stands_for: int | None  # 1-based approved step, None for an intermediate step
    bag: int | None
    rate_ml_h: Decimal | None
    approved_rate_ml_h: Decimal | None
    minutes: Decimal | None  # None: the final step, runs to the target
    approved_minutes: Decimal | None
    planned_dose: Decimal | None  # None: the remainder of the target
    given_minutes: Decimal | None
    given_dose: Decimal | None  # None: not given (yet)
    state: str  # "given", "running", "interrupted", "not given", "to come"
    reactions: tuple[int, ...] = ()

    @property
    def stretch(self) -> Decimal | None:
        if self.minutes is None or not self.approved_minutes or self.origin == "finish":
            return None
        return (
            self.minutes / self.approved_minutes if self.minutes != self.approved_minutes else None
        )

    @property
    def capped(self) -> bool:
        return (
            self.rate_ml_h is not None
            and self.approved_rate_ml_h is not None
            and self.rate_ml_h != self.approved_rate_ml_h
        )

    @property
    def deviates(self) -> bool:
        return self.origin != "plan" or self.stretch is not None or self.capped


@dataclass(frozen=True)
class PauseRow:
    number: int
    at_step: int | None  # 1-based plan step that ran (or had run) when the pause began
    began_at: datetime  # when the infusion was stopped (or the pause began, when observing)
    reason: str
    reactions: tuple[int, ...]
    ended_at: datetime | None  # resumed, completed or aborted; None: still paused
    ended_by: str  # "resumed", "completed", "aborted" or "" (still paused)
    resumed_by: str
    resume_choice: str
    restarted_at: datetime | None  # the pump change confirmed after the resume
    duration: timedelta  # until the end, or until now while still paused
    infusion_off: timedelta | None  # from the stop to the restarted pump


@dataclass(frozen=True)
class Deviation:
    kind: str
    first_step: int | None  # 1-based plan steps it concerns
    last_step: int | None
    text: str

    @property
    def steps(self) -> str:
        if self.first_step is None:
            return "—"
        if self.last_step is None or self.last_step == self.first_step:
            return str(self.first_step)
        return f"{self.first_step}–{self.last_step}"


@dataclass(frozen=True)
class VitalsEntry:
    reading: int
    version: int
    current: bool
    amendment_reason: str | None
    recorded_at: datetime
    recorded_by: str
    step: int | None  # 1-based
    baseline: bool
    within_limits: bool
    values: dict[str, str]  # field -> shown text
    symptoms: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class AlarmRow:
    id: int
    priority: str
    kind: str
    condition: str
    message: str
    value: str
    raised_at: datetime
    acknowledged_by: str
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    cleared_at: datetime | None
    active: bool


@dataclass(frozen=True)
class TreatmentRow:
    drug: str
    dose: str
    route: str
    given_at: datetime


@dataclass(frozen=True)
class ReactionRow:
    number: int
    onset_at: datetime
    at_step: int | None  # 1-based
    symptoms: tuple[str, ...]
    brown_grade: int | None
    ctcae_grade: int | None
    resolved_at: datetime | None
    graded_by: str
    treatments: tuple[TreatmentRow, ...]
    note: str
    findings: tuple[str, ...] = ()  # clinical findings in words, apart from the symptoms
    outcome: str = ""  # how it ended, in words
    closed_by_abort: bool = False
    suggested: str = ""  # the grade the worst findings of its window suggested


@dataclass(frozen=True)
class Signature:
    what: str
    detail: str
    who: str
    role: str
    at: datetime


@dataclass(frozen=True)
class Report:
    session_id: int
    status: str
    status_title: str
    drug: str
    route: str
    template: str
    risk_tier: str
    unit: str
    target_dose: Decimal
    delivered_dose: Decimal
    delivered_percent: Decimal
    patient: PatientFacts
    age: int | None
    age_for_rules: Decimal | None  # years with whole months: an infant's limits need months
    index_reactions: tuple[str, ...]
    index_flags: tuple[str, ...]
    screening: Mapping[str, Any]
    started_at: datetime | None
    ended_at: datetime | None
    abort_reason: str | None
    bags: tuple[BagRow, ...]
    plan: tuple[PlanRow, ...]
    administration: tuple[AdministrationRow, ...]
    pauses: tuple[PauseRow, ...]
    deviations: tuple[Deviation, ...]
    vitals: tuple[VitalsEntry, ...]
    vital_fields: tuple[str, ...]  # the vitals columns any reading has, in display order
    alarms: tuple[AlarmRow, ...]
    reactions: tuple[ReactionRow, ...]
    premedications: tuple[TreatmentRow, ...]
    signatures: tuple[Signature, ...]
    generated_at: datetime
    multi_day: bool = field(default=False)

    @property
    def dose_gap(self) -> Decimal:
        return self.target_dose - self.delivered_dose

    def time(self, at: datetime | None) -> str:
        """Times in the facility's zone (named at the top of the report); the date is shown
        when the session spans more than one day."""
        if at is None:
            return "—"
        return localtime.local(at, "%d %b %H:%M:%S" if self.multi_day else "%H:%M:%S")


# --- assembly -----------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _minutes(start: datetime, end: datetime) -> Decimal:
    return Decimal(str((end - start).total_seconds())) / 60


def _person(users: Mapping[int, Person], user_id: int | None, role: str = "") -> str:
    if user_id is None:
        return "Stepwise (automatic)" if role in ("", "system") else role
    person = users.get(user_id)
    return person.name if person is not None else f"user {user_id}"


def _administration(view: Mapping[str, Any], now: datetime) -> tuple[AdministrationRow, ...]:
    steps = view["plan"]["steps"]
    rows = []
    with localcontext() as ctx:
        ctx.prec = PRECISION  # the ledger's precision: the last total is the view's, exactly
        cumulative = ZERO
        for ordinal, segment in enumerate(view["segments"], start=1):
            dose = Decimal(segment["dose"])
            cumulative += dose
            started = datetime.fromisoformat(segment["started_at"])
            stopped = _when(segment["stopped_at"])
            infusion = segment["solution"] is not None
            rows.append(
                AdministrationRow(
                    ordinal=ordinal,
                    step=segment["step"] + 1,
                    origin=steps[segment["step"]]["origin"],
                    bag=segment["solution"],
                    rate_ml_h=_dec(segment["rate_ml_h"]),
                    started_at=started,
                    stopped_at=stopped,
                    minutes=_minutes(started, stopped or now) if infusion else None,
                    volume_ml=_dec(segment["volume_ml"]),
                    dose=dose,
                    cumulative=cumulative,
                )
            )
    return tuple(rows)


def _plan_rows(
    view: Mapping[str, Any],
    approved: Plan | None,
    administration: Sequence[AdministrationRow],
    reactions: Sequence[Mapping[str, Any]],
) -> tuple[PlanRow, ...]:
    steps = view["plan"]["steps"]
    current = view["current_step"]
    terminal = view["status"] in ("completed", "aborted")
    running = {r.step for r in administration if r.stopped_at is None}
    rows = []
    for index, step in enumerate(steps):
        origin = step["origin"]
        # The approved step this one stands for: copies name it, untouched steps are it, and
        # an intermediate step is new.
        stands_for: int | None = None
        if origin != "intermediate":
            stands_for = step["of_step"] if step["of_step"] is not None else index
        base = None
        if approved is not None and stands_for is not None and stands_for < len(approved.steps):
            base = approved.steps[stands_for]
        given = [r for r in administration if r.step == index + 1]
        with localcontext() as ctx:
            ctx.prec = PRECISION
            given_dose = sum((r.dose for r in given), ZERO) if given else None
            timed = [r.minutes for r in given if r.minutes is not None]
            given_minutes = sum(timed, ZERO) if timed else None
        reacted = tuple(r["number"] for r in reactions if r["at_step"] == index)
        if index + 1 in running:
            state = "running"
        elif given:
            # A step that stopped before its time: a reaction, a hold or an abort.
            stopped_early = bool(reacted) or (
                step["minutes"] is not None
                and given_minutes is not None
                and given_minutes < Decimal(step["minutes"])
            )
            state = "interrupted" if stopped_early else "given"
        elif terminal or (current is not None and index < current):
            state = "not given"
        else:
            state = "to come"
        rows.append(
            PlanRow(
                step=index + 1,
                origin=origin,
                stands_for=None if stands_for is None else stands_for + 1,
                bag=step["solution"],
                rate_ml_h=_dec(step["rate_ml_h"]),
                approved_rate_ml_h=base.rate_ml_h if base is not None else None,
                minutes=_dec(step["minutes"]),
                approved_minutes=base.minutes if base is not None else None,
                planned_dose=_dec(step["dose"]),
                given_minutes=given_minutes,
                given_dose=given_dose,
                state=state,
                reactions=reacted,
            )
        )
    return tuple(rows)


def _resume_choice(data: Mapping[str, Any]) -> str:
    if data.get("to") == "observing":
        return "continue the observation"
    parts = [RESUME_TITLES.get(data.get("resume_from", ""), str(data.get("resume_from", "")))]
    stretch = data.get("stretch")
    if stretch is not None and Decimal(str(stretch)) != 1:
        parts.append(f"step times ×{P.amount(stretch, 2)}")
    if data.get("insert_intermediate"):
        parts.append(f"{data['insert_intermediate']} intermediate step(s) inserted")
    if data.get("cap_rate_ml_h"):
        parts.append(f"rate capped at {P.amount(data['cap_rate_ml_h'], 1)} mL/h")
    return ", ".join(parts)


def _pauses(
    events: Sequence[EventRecord],
    administration: Sequence[AdministrationRow],
    users: Mapping[int, Person],
    now: datetime,
) -> tuple[PauseRow, ...]:
    """Pauses from the events: a hold or a reaction stops the infusion; the physician's resume
    ends the pause; the next confirmed pump change restarts the infusion."""
    out: list[PauseRow] = []
    infusing = False
    open_pause: dict[str, Any] | None = None
    waiting_restart: int | None = None  # index in `out` of a resumed pause awaiting its pump

    def stop_time(at: datetime) -> datetime:
        before = [r for r in administration if r.started_at <= at and r.stopped_at is not None]
        if infusing and before and before[-1].stopped_at is not None:
            return before[-1].stopped_at
        return at

    def close(at: datetime, how: str, event: EventRecord | None) -> None:
        nonlocal open_pause
        assert open_pause is not None
        out.append(
            PauseRow(
                number=len(out) + 1,
                at_step=open_pause["at_step"],
                began_at=open_pause["began_at"],
                reason=open_pause["reason"],
                reactions=tuple(open_pause["reactions"]),
                ended_at=at if how else None,
                ended_by=how,
                resumed_by=_person(users, event.actor_id, event.actor_role)
                if event is not None and how == "resumed"
                else "",
                resume_choice=_resume_choice(event.data)
                if event is not None and how == "resumed"
                else "",
                restarted_at=None,
                duration=at - open_pause["began_at"],
                infusion_off=None,
            )
        )
        open_pause = None

    step: int | None = None  # 1-based step last started
    for event in events:
        kind, data = event.kind, event.data
        if kind == "step_started":
            if waiting_restart is not None:
                out[waiting_restart] = _with_restart(out[waiting_restart], event.at)
                waiting_restart = None
            infusing = True
            step = data["step"] + 1 if data.get("step") is not None else step
        elif kind in ("last_step_done", "target_reached"):
            infusing = False
        elif kind == "paused" and open_pause is None:
            began = _when(data.get("stopped_at")) or event.at
            reason = data.get("reason") or "hold"
            open_pause = {"began_at": began, "reason": reason, "reactions": [], "at_step": step}
            infusing = False
        elif kind == "reaction_reported":
            if open_pause is None:
                began = stop_time(event.at)
                open_pause = {
                    "began_at": began,
                    "reason": "reaction",
                    "reactions": [],
                    "at_step": step,
                }
                infusing = False
            if data.get("reaction") is not None:
                open_pause["reactions"].append(data["reaction"])
        elif kind == "resumed" and open_pause is not None:
            close(event.at, "resumed", event)
            if data.get("to") != "observing":
                waiting_restart = len(out) - 1
        elif kind in ("completed", "aborted"):
            if open_pause is not None:
                close(event.at, kind, event)
            waiting_restart = None
            infusing = False
    if open_pause is not None:
        close(now, "", None)
    return tuple(out)


def _with_restart(pause: PauseRow, at: datetime) -> PauseRow:
    return replace(pause, restarted_at=at, infusion_off=at - pause.began_at)


def _runs(rows: Sequence[PlanRow], key: Any) -> list[list[PlanRow]]:
    """Consecutive steps with the same non-None key, grouped."""
    runs: list[list[PlanRow]] = []
    last: Any = None
    for row in rows:
        k = key(row)
        if k is None:
            last = None
            continue
        if runs and k == last and runs[-1][-1].step == row.step - 1:
            runs[-1].append(row)
        else:
            runs.append([row])
        last = k
    return runs


def _pairs(pairs: Iterable[tuple[Decimal | None, Decimal | None]], unit: str) -> str:
    seen: list[str] = []
    for before, after in pairs:
        text = f"{P.amount(before, 1)} → {P.amount(after, 1)} {unit}"
        if text not in seen:
            seen.append(text)
    return ", ".join(seen)


def _deviations(
    plan: Sequence[PlanRow],
    pauses: Sequence[PauseRow],
    *,
    status: str,
    delivered: Decimal,
    target: Decimal,
    unit: str,
) -> tuple[Deviation, ...]:
    out: list[Deviation] = []
    for row in plan:
        of = f"approved step {row.stands_for}"
        text = {
            "repeat": f"repeats {of}",
            "step_back": f"steps back to {of}",
            "intermediate": "intermediate step inserted after a reaction",
            "finish": f"finishes the rest of {of}"
            + (f" ({P.amount(row.minutes, 1)} min)" if row.minutes is not None else ""),
            "inserted": "inserted in the draft before approval",
            "edited": "edited in the draft before approval",
        }.get(row.origin)
        if text is not None:
            out.append(Deviation(row.origin, row.step, row.step, text))
    for run in _runs(plan, lambda r: r.stretch):
        factor = run[0].stretch
        pairs = _pairs(((r.approved_minutes, r.minutes) for r in run), "min")
        text = f"step time ×{P.amount(factor, 2)} ({pairs})"
        out.append(Deviation("stretched", run[0].step, run[-1].step, text))
    for run in _runs(plan, lambda r: r.rate_ml_h if r.capped else None):
        pairs = _pairs(((r.approved_rate_ml_h, r.rate_ml_h) for r in run), "mL/h")
        out.append(Deviation("rate_capped", run[0].step, run[-1].step, f"rate capped ({pairs})"))
    for pause in pauses:
        why = pause.reason
        if pause.reactions:
            why = ", ".join(f"reaction {n}" for n in pause.reactions)
        text = f"paused {duration_text(pause.duration)} ({why})"
        out.append(Deviation("pause", pause.at_step, pause.at_step, text))
    out.sort(key=lambda d: (d.first_step is None, d.first_step or 0))
    if status in ("completed", "aborted") and delivered != target:
        text = f"delivered {P.amount(delivered, 3)} of {P.amount(target, 3)} {unit}"
        out.append(Deviation("dose", None, None, text))
    return tuple(out)


def _vitals(
    view: Mapping[str, Any], users: Mapping[int, Person]
) -> tuple[tuple[VitalsEntry, ...], tuple[str, ...]]:
    seen: set[str] = set()
    entries = []
    for v in view["vitals"]:
        shown: dict[str, str] = {}
        for name in P.VITAL_LABELS:
            entry = v["values"].get(name)
            if not isinstance(entry, dict):
                continue
            seen.add(name)
            if entry.get("status") == "measured":
                shown[name] = P.amount(entry.get("value"), 2)
            else:
                word = VITAL_STATUS.get(entry.get("status", ""), str(entry.get("status")))
                reason = entry.get("reason")
                shown[name] = f"{word}: {reason}" if reason else word
        symptoms = tuple(symptom_words(s) for s in v["values"].get("symptoms", []))
        entries.append(
            VitalsEntry(
                reading=v["reading_id"],
                version=v["version"],
                current=v["current"],
                amendment_reason=v["amendment_reason"],
                recorded_at=datetime.fromisoformat(v["recorded_at"]),
                recorded_by=_person(users, v["recorded_by"]),
                step=None if v["step"] is None else v["step"] + 1,
                baseline=v["baseline"],
                within_limits=v["within_limits"],
                values=shown,
                symptoms=symptoms,
                note=str(v["values"].get("note") or ""),
            )
        )
    return tuple(entries), tuple(n for n in P.VITAL_LABELS if n in seen)


def _alarms(view: Mapping[str, Any], users: Mapping[int, Person]) -> tuple[AlarmRow, ...]:
    rows = [
        AlarmRow(
            id=a["id"],
            priority=a["priority"],
            kind=a["kind"],
            condition=a["condition"],
            message=a["message"],
            value=a.get("value") or "",
            raised_at=datetime.fromisoformat(a["raised_at"]),
            acknowledged_by=_person(users, a["acknowledged_by"])
            if a["acknowledged_by"] is not None
            else "",
            acknowledged_at=_when(a["acknowledged_at"]),
            escalated_at=_when(a["escalated_at"]),
            cleared_at=_when(a["cleared_at"]),
            active=a["active"],
        )
        for a in view["alarms"]["items"]
    ]
    return tuple(sorted(rows, key=lambda r: (r.raised_at, r.id)))


def _reactions(
    view: Mapping[str, Any], events: Sequence[EventRecord], users: Mapping[int, Person]
) -> tuple[ReactionRow, ...]:
    graded = {
        e.data.get("reaction"): _person(users, e.actor_id, e.actor_role)
        for e in events
        if e.kind in ("reaction_resolved", "reaction_closed")
    }
    return tuple(
        ReactionRow(
            number=r["number"],
            onset_at=datetime.fromisoformat(r["onset_at"]),
            at_step=None if r["at_step"] is None else r["at_step"] + 1,
            symptoms=tuple(symptom_words(s) for s in r["symptoms"]),
            brown_grade=r["brown_grade"],
            ctcae_grade=r["ctcae_grade"],
            resolved_at=_when(r["resolved_at"]),
            graded_by=graded.get(r["number"], ""),
            treatments=tuple(_treatment(t) for t in r["treatments"]),
            note=r.get("note") or "",
            findings=tuple(r.get("findings") or ()),
            outcome=OUTCOME_WORDS.get(r.get("outcome") or "", ""),
            closed_by_abort=bool(r.get("closed_by_abort")),
            suggested=_suggested_words(r.get("suggested_grade")),
        )
        for r in view["reactions"]
    )


OUTCOME_WORDS = {
    "resolved": "resolved",
    "recovering": "recovering",
    "ongoing": "ongoing",
    "resolvedWithSequelae": "resolved with sequelae",
    "fatal": "fatal",
    "unknown": "unknown",
}


def _suggested_words(suggested: Mapping[str, Any] | None) -> str:
    if not suggested or suggested.get("brown_grade") is None:
        return ""
    text = f"Brown grade {suggested['brown_grade']}"
    if suggested.get("ctcae_grade") is not None:
        text += f", CTCAE grade {suggested['ctcae_grade']}"
    reasons = "; ".join(suggested.get("reasons") or ())
    return f"{text} ({reasons})" if reasons else text


def _treatment(t: Mapping[str, Any]) -> TreatmentRow:
    return TreatmentRow(t["drug"], t["dose"], t["route"], datetime.fromisoformat(t["given_at"]))


def _signature_detail(event: EventRecord, unit: str) -> str:
    data = event.data
    if event.kind == "plan_edited":
        return str(data.get("edit") or "")
    if event.kind == "paused":
        return str(data.get("reason") or "")
    if event.kind == "assigned":
        return f"chair {data.get('location') or 'not set'}; nurse {data.get('nurse') or 'none'}"
    if event.kind in ("reaction_resolved", "reaction_closed"):
        grade = f"reaction {data.get('reaction')}: Brown grade {data.get('brown_grade')}"
        if data.get("ctcae_grade"):
            grade += f", CTCAE grade {data['ctcae_grade']}"
        if data.get("outcome"):
            grade += f"; outcome {OUTCOME_WORDS.get(data['outcome'], data['outcome'])}"
        return grade
    if event.kind == "safety_override":
        gates = "; ".join(data.get("gates") or ())
        return f"{data.get('command', '')}: {gates}. Reason: {data.get('reason', '')}"
    if event.kind == "resumed":
        return _resume_choice(data)
    if event.kind == "completed":
        return f"{P.amount(data.get('delivered'), 3)} {unit} delivered"
    if event.kind == "aborted":
        return f"{data.get('reason', '')}; {P.amount(data.get('delivered'), 3)} {unit} delivered"
    return ""


def _signatures(
    events: Iterable[EventRecord], users: Mapping[int, Person], unit: str
) -> tuple[Signature, ...]:
    return tuple(
        Signature(
            what=SIGNED_EVENTS[e.kind],
            detail=_signature_detail(e, unit),
            who=_person(users, e.actor_id, e.actor_role),
            role=e.actor_role,
            at=e.at,
        )
        for e in events
        if e.kind in SIGNED_EVENTS
    )


def build_report(
    view: Mapping[str, Any],
    events: Sequence[EventRecord],
    users: Mapping[int, Person],
    approved: Plan | None,
    patient: PatientFacts,
    index_reaction: Mapping[str, Any],
    now: datetime,
) -> Report:
    """The report's rows from one consistent read of the session. Pure."""
    events = sorted(events, key=lambda e: e.seq)
    administration = _administration(view, now)
    plan = _plan_rows(view, approved, administration, view["reactions"])
    pauses = _pauses(events, administration, users, now)
    target = Decimal(view["target_dose"])
    delivered = Decimal(view["delivered_dose"])
    vitals, fields = _vitals(view, users)
    started = next((e.at for e in events if e.kind == "started"), None)
    ended = next((e.at for e in events if e.kind in ("completed", "aborted")), None)
    first = events[0].at if events else now
    last = ended or now
    age = (
        age_in_years(patient.birth_date, first.date())
        if patient.birth_date <= first.date()
        else None
    )
    fev1 = index_reaction.get("fev1_percent_predicted")
    flags = [label for key, label in INDEX_FLAGS if index_reaction.get(key)]
    if fev1 is not None:
        flags.append(f"FEV1 {P.amount(fev1, 0)} % of predicted")
    return Report(
        session_id=view["id"],
        status=view["status"],
        status_title=P.STATUS_TITLES.get(view["status"], view["status"]),
        drug=view["drug"],
        route=view["route"],
        template=view["template"],
        risk_tier=view["risk_tier"],
        unit=view["unit"],
        target_dose=target,
        delivered_dose=delivered,
        delivered_percent=Decimal(view["delivered_percent"]),
        patient=patient,
        age=age,
        age_for_rules=rules_age(patient.birth_date, first.date()) if age is not None else None,
        index_reactions=tuple(
            REACTION_LABELS.get(r, r.replace("_", " ")) for r in index_reaction.get("reactions", [])
        ),
        index_flags=tuple(flags),
        screening=view["screening"],
        started_at=started,
        ended_at=ended,
        abort_reason=view.get("abort_reason"),
        bags=tuple(
            BagRow(
                b["number"],
                b["label"],
                Decimal(b["volume_ml"]),
                Decimal(b["concentration"]),
                Decimal(b["volume_ml"]) * Decimal(b["concentration"]),
            )
            for b in view["plan"]["bags"]
        ),
        plan=plan,
        administration=administration,
        pauses=pauses,
        deviations=_deviations(
            plan,
            pauses,
            status=view["status"],
            delivered=delivered,
            target=target,
            unit=view["unit"],
        ),
        vitals=vitals,
        vital_fields=fields,
        alarms=_alarms(view, users),
        reactions=_reactions(view, events, users),
        premedications=tuple(_treatment(p) for p in view["checklist"]["premedications"]),
        signatures=_signatures(events, users, view["unit"]),
        generated_at=now,
        multi_day=first.date() != last.date(),
    )


def duration_text(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if seconds:
        return f"{minutes} min {seconds:02d} s"
    return f"{minutes} min"


# --- the page -----------------------------------------------------------------------------------


def _event_record(e: SessionEvent) -> EventRecord:
    return EventRecord(e.seq, e.at, e.kind, json.loads(e.data_json), e.actor_id, e.actor_role)


def _user_ids(view: Mapping[str, Any], events: Iterable[EventRecord]) -> set[int]:
    ids = {e.actor_id for e in events if e.actor_id is not None}
    ids |= {v["recorded_by"] for v in view["vitals"] if v["recorded_by"] is not None}
    ids |= {
        a["acknowledged_by"] for a in view["alarms"]["items"] if a["acknowledged_by"] is not None
    }
    return ids


@dataclass(frozen=True)
class _Read:
    """One consistent read of a session: plain values, usable after the transaction."""

    view: dict[str, Any]
    events: list[EventRecord]
    users: dict[int, Person]
    approved: Plan | None
    patient_id: int
    patient: PatientFacts
    index_reaction: dict[str, Any]


async def _read(db: AsyncSession, session_id: int, now: datetime) -> _Read | None:
    """Callers begin a read transaction (DEFERRED on SQLite) first."""
    try:
        row = await service.load(db, session_id)
    except Refusal:
        return None
    view = await service.current_view(db, row, now)
    patient = await db.get(Patient, row.patient_id)
    assert patient is not None
    events = [
        _event_record(e)
        for e in await db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.seq)
        )
    ]
    ids = _user_ids(view, events)
    users = {
        u.id: Person(u.username, u.display_name)
        for u in (await db.scalars(select(User).where(User.id.in_(ids))) if ids else [])
    }
    return _Read(
        view=view,
        events=events,
        users=users,
        approved=codec.loads(row.state_json).approved,
        patient_id=row.patient_id,
        patient=PatientFacts(
            patient.family_name,
            patient.given_name,
            patient.mrn,
            patient.birth_date,
            patient.sex,
            patient.weight_kg,
        ),
        index_reaction=json.loads(row.index_reaction_json),
    )


@router.get("/sessions/{session_id:int}/report", response_class=HTMLResponse)
async def session_report(
    request: Request,
    session_id: int,
    sessionmaker: Sessionmaker,
    clock: Clock,
    signed_in: SignedIn = require_permission("session.export"),
) -> HTMLResponse:
    if not 1 <= session_id <= MAX_ID:  # beyond any id the databases can hold
        return no_such_session(request, session_id)
    now = clock.now()
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        read = await _read(db, session_id, now)
        await db.rollback()
    if read is None:
        return no_such_session(request, session_id)
    # A report is a copy of the record leaving the screen: logged like the other exports.
    async with sessionmaker() as db:
        await audit_service.append(
            db,
            at=now,
            actor=signed_in.actor,
            action="export.report",
            entity="session",
            entity_id=session_id,
            request=request_info(request),
        )
        await db.commit()
    report = build_report(
        read.view, read.events, read.users, read.approved, read.patient, read.index_reaction, now
    )
    # The trend chart and its alarm limits exactly as the bedside view draws them.
    p = read.patient
    page = render.SessionPage(
        view=read.view,
        patient=render.PatientInfo(read.patient_id, p.mrn, p.family_name, p.given_name),
        age=report.age_for_rules,
        now=now,
        events=[],
        role=signed_in.user.role,
    )
    charts = render.page_context(page)
    return templates.TemplateResponse(
        request,
        "review/report.html",
        {
            "report": report,
            "sbp_chart": charts["sbp_chart"],
            "spo2_chart": charts["spo2_chart"],
            "amount": P.amount,
            "duration": duration_text,
            "origin_titles": ORIGIN_TITLES,
            "labels": P.VITAL_LABELS,
        },
    )
