"""The desensitization session as a pure state machine (product-spec §3).

`decide(state, command, ctx) -> Accepted | Refused`. No I/O, no clock: the time comes in the
context. An accepted command returns the new state, the events to record and what to do with the
step timer; a refused one returns the reason and the state is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Literal

from app.session import ledger as L
from app.session.ledger import Segment
from app.session.plan import Plan, PlanStep

Status = Literal[
    "planned", "ready", "running", "step_due", "paused", "observing", "completed", "aborted"
]
TERMINAL: frozenset[str] = frozenset({"completed", "aborted"})
INFUSING: frozenset[str] = frozenset({"running", "step_due"})
LATE_FIRE = timedelta(seconds=60)
MAX_STRETCH = Decimal(4)
MAX_INTERMEDIATE = 3
MAX_VITALS_EVERY = Decimal(120)  # minutes between vitals within a step, at most
# FHIR AdverseEvent outcomes (R4 adverse-event-outcome): how a reaction ended.
OUTCOMES: tuple[str, ...] = (
    "resolved",
    "recovering",
    "ongoing",
    "resolvedWithSequelae",
    "fatal",
    "unknown",
)
VOLUME_TOLERANCE_ML = Decimal("1e-9")
PUMP_RATE_STEP = Decimal("0.1")
ResumeFrom = Literal["finish", "repeat", "back1", "back2"]
RefusalKind = Literal["forbidden", "state", "invalid", "stale"]

CLINICAL = frozenset({"nurse", "physician"})


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Premedication:
    drug: str
    dose: str
    route: str
    given_at: datetime


@dataclass(frozen=True)
class Treatment:
    drug: str
    dose: str
    route: str
    given_at: datetime


@dataclass(frozen=True)
class Reaction:
    number: int
    onset_at: datetime
    symptoms: tuple[str, ...]  # checklist codes only; those of later vitals sets join them
    at_step: int | None
    treatments: tuple[Treatment, ...] = ()
    brown_grade: int | None = None
    ctcae_grade: int | None = None
    resolved_at: datetime | None = None  # when the record was closed: resolved, or the abort
    note: str = ""
    # Clinical findings in words when it opened ("systolic 85 mmHg, 31.4 % below baseline
    # 124 mmHg"; "SpO2 89 %"), kept apart from the symptoms.
    findings: tuple[str, ...] = ()
    outcome: str | None = None  # one of OUTCOMES once closed
    closed_by_abort: bool = False

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class Checklist:
    consent: bool = False
    baseline_vitals: bool = False
    spirometry_required: bool = False
    baseline_spirometry: bool = False
    premedications: tuple[Premedication, ...] = ()
    premedication_done: bool = False  # given, or "none needed" with a reason
    rescue_kit: bool = False
    # The HIGH findings of the latest baseline set, in words: start needs a physician's
    # override while there are any.
    baseline_high: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        out = []
        if not self.consent:
            out.append("consent")
        if not self.baseline_vitals:
            out.append("baseline vitals")
        if self.spirometry_required and not self.baseline_spirometry:
            out.append("baseline FEV1 or peak flow")
        if not self.premedication_done:
            out.append("premedications")
        if not self.rescue_kit:
            out.append("rescue kit at the bedside")
        return out


@dataclass(frozen=True)
class SessionState:
    status: Status
    plan: Plan
    # The plan as approved. Steps added by resumes name the approved step they stand for
    # (PlanStep.of_step), so "step back" always means a step of the approved ladder.
    approved: Plan | None = None
    version: int = 1
    pharmacist_signoff: bool = True
    approved_by: int | None = None
    approved_at: datetime | None = None
    bags_verified_by: int | None = None
    bags_verified_at: datetime | None = None
    checklist: Checklist = field(default_factory=Checklist)
    current: int | None = None  # plan index of the step running (or last run)
    next_step: int | None = None  # plan index the next confirm-step starts; None = observation
    segments: tuple[Segment, ...] = ()
    deadline: datetime | None = None  # the step (or observation) timer, stored by the shell
    due_since: datetime | None = None  # step_due: when the pump change became due
    timer_generation: int = 0
    overdue: bool = False
    paused_from: Status | None = None
    paused_at: datetime | None = None
    pause_reason: str = ""
    pause_had_reaction: bool = False  # a reaction began during this pause (not a plain hold)
    reactions: tuple[Reaction, ...] = ()
    # Vitals gates count sets rather than compare times (two entries can share a second):
    # a gate set when `vitals_count` was n is met once a set n+1 exists.
    vitals_count: int = 0
    vitals_gate: int | None = None
    last_vitals_at: datetime | None = None
    last_vitals_within_limits: bool = True  # no MEDIUM or HIGH finding in the latest set
    last_vitals_findings: tuple[str, ...] = ()  # what the latest set found, in words
    vitals_every_minutes: Decimal = Decimal(30)  # within a step, observation included
    observation_minutes: Decimal = Decimal(30)
    observation_started_at: datetime | None = None
    observation_done: bool = False
    observation_left: Decimal | None = None  # minutes, while paused from observing
    last_at: datetime | None = None  # latest time in the record: time never runs backwards
    abort_reason: str = ""

    @property
    def open_reaction(self) -> Reaction | None:
        return next((r for r in self.reactions if r.is_open), None)

    @property
    def running_segment(self) -> Segment | None:
        if self.segments and self.segments[-1].stopped_at is None:
            return self.segments[-1]
        return None


# --- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    now: datetime
    role: str  # nurse | physician | pharmacist | auditor | admin | system
    user_id: int | None = None


@dataclass(frozen=True)
class Approve:
    pass


@dataclass(frozen=True)
class VerifyBags:
    pass


@dataclass(frozen=True)
class EditPlan:
    """A draft plan edited before approval (computed by the protocol engine)."""

    plan: Plan
    summary: str


@dataclass(frozen=True)
class ChecklistItem:
    item: Literal["consent", "rescue_kit", "premedications"]
    done: bool = True
    premedications: tuple[Premedication, ...] = ()
    none_reason: str = ""  # premedications: "none needed" needs a reason


@dataclass(frozen=True)
class RecordVitals:
    within_limits: bool
    has_spirometry: bool = False
    findings: tuple[str, ...] = ()  # every MEDIUM and HIGH finding, in words
    high_findings: tuple[str, ...] = ()  # the HIGH ones (a baseline with any needs an override)
    symptoms: tuple[str, ...] = ()  # checklist codes: they join an open reaction


@dataclass(frozen=True)
class AmendLatestVitals:
    """The latest reading was corrected: its verdict changes, the count of sets does not."""

    within_limits: bool
    findings: tuple[str, ...] = ()
    high_findings: tuple[str, ...] = ()
    baseline: bool = False  # the corrected set is a baseline


@dataclass(frozen=True)
class Start:
    # A physician starts over a baseline that meets HIGH criteria only with a reason.
    override_reason: str = ""


@dataclass(frozen=True)
class ConfirmStep:
    pass


@dataclass(frozen=True)
class Pause:
    reason: str
    stopped_at: datetime | None = None  # when the infusion was stopped; default now


@dataclass(frozen=True)
class ReportReaction:
    symptoms: tuple[str, ...]
    onset_at: datetime | None = None
    stopped_at: datetime | None = None
    note: str = ""
    findings: tuple[str, ...] = ()  # clinical findings in words (vitals that opened it)


@dataclass(frozen=True)
class RecordTreatment:
    drug: str
    dose: str
    route: str
    given_at: datetime | None = None


@dataclass(frozen=True)
class ResolveReaction:
    brown_grade: int
    ctcae_grade: int | None = None
    resolved_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class Resume:
    resume_from: ResumeFrom = "repeat"
    stretch: Decimal = Decimal(1)  # of the approved step times, never of stretched ones
    insert_intermediate: int = 0
    cap_rate_ml_h: Decimal | None = None
    # Needed, with the physician's reason, to resume while the fresh vitals breach a MEDIUM
    # or HIGH limit, or to finish or repeat the step after a Brown grade 3 reaction.
    override_reason: str = ""


@dataclass(frozen=True)
class TimerFired:
    generation: int


@dataclass(frozen=True)
class Complete:
    pass


@dataclass(frozen=True)
class Abort:
    reason: str
    # An open reaction ends with the abort: graded, with its outcome (one of OUTCOMES).
    reaction_brown_grade: int | None = None
    reaction_ctcae_grade: int | None = None
    reaction_outcome: str | None = None


Command = (
    Approve
    | VerifyBags
    | EditPlan
    | ChecklistItem
    | RecordVitals
    | AmendLatestVitals
    | Start
    | ConfirmStep
    | Pause
    | ReportReaction
    | RecordTreatment
    | ResolveReaction
    | Resume
    | TimerFired
    | Complete
    | Abort
)

COMMAND_NAMES: dict[type, str] = {
    Approve: "approve",
    VerifyBags: "verify-bags",
    EditPlan: "edit-plan",
    ChecklistItem: "checklist",
    RecordVitals: "vitals",
    AmendLatestVitals: "amend-vitals",
    Start: "start",
    ConfirmStep: "confirm-step",
    Pause: "pause",
    ReportReaction: "report-reaction",
    RecordTreatment: "record-treatment",
    ResolveReaction: "resolve-reaction",
    Resume: "resume",
    TimerFired: "timer",
    Complete: "complete",
    Abort: "abort",
}

ROLES_ALLOWED: dict[type, frozenset[str]] = {
    Approve: frozenset({"physician"}),
    VerifyBags: frozenset({"pharmacist"}),
    EditPlan: frozenset({"nurse", "physician", "pharmacist"}),
    ChecklistItem: CLINICAL,
    RecordVitals: CLINICAL,
    AmendLatestVitals: CLINICAL,
    Start: CLINICAL,
    ConfirmStep: CLINICAL,
    Pause: CLINICAL,
    ReportReaction: CLINICAL,
    RecordTreatment: CLINICAL,
    ResolveReaction: CLINICAL,
    Resume: frozenset({"physician"}),
    TimerFired: frozenset({"system"}),
    Complete: CLINICAL,
    Abort: frozenset({"physician"}),
}


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    state: SessionState
    events: tuple[Event, ...]
    # The timer the shell must keep: None = no timer. A new generation means "replace".
    timer_changed: bool = False


@dataclass(frozen=True)
class Refused:
    reason: str
    kind: RefusalKind = "state"


Result = Accepted | Refused


def decide(state: SessionState, command: Command, ctx: Ctx) -> Result:
    name = COMMAND_NAMES[type(command)]
    if state.status in TERMINAL:
        return Refused(f"the session is {state.status}; nothing more can be done", "state")
    if ctx.role not in ROLES_ALLOWED[type(command)]:
        allowed = " or ".join(sorted(ROLES_ALLOWED[type(command)]))
        return Refused(f"{name} is for the {allowed}, not the {ctx.role}", "forbidden")
    if state.last_at is not None and ctx.now < state.last_at:
        return Refused(
            "the time given is earlier than the last entry; time never runs back", "invalid"
        )
    handler = _HANDLERS[type(command)]
    with localcontext() as arithmetic:
        arithmetic.prec = L.PRECISION  # the ledger's exact arithmetic, everywhere in here
        result = handler(state, command, ctx)
    if isinstance(result, Refused):
        return result
    new_state = replace(result.state, version=state.version + 1, last_at=ctx.now)
    return replace(result, state=new_state)


# --- helpers -----------------------------------------------------------------------------------


def _accept(state: SessionState, *events: Event, timer: bool = False) -> Accepted:
    return Accepted(state, tuple(events), timer)


def _with_timer(state: SessionState, deadline: datetime | None) -> SessionState:
    return replace(
        state, deadline=deadline, timer_generation=state.timer_generation + 1, overdue=False
    )


def _minutes(value: Decimal) -> timedelta:
    # Rounded up to the microsecond: a step never ends a hair before its volume is given.
    micro = (value * 60_000_000).to_integral_value(rounding=ROUND_CEILING)
    return timedelta(microseconds=int(micro))


def _user_time(
    given: datetime | None, ctx: Ctx, earliest: datetime | None, what: str
) -> datetime | Refused:
    """A time a person typed: not in the future, not before `earliest`."""
    at = given or ctx.now
    if at.tzinfo is None:
        return Refused(f"{what} needs a time zone", "invalid")
    if at > ctx.now:
        return Refused(f"{what} cannot be in the future", "invalid")
    if earliest is not None and at < earliest:
        return Refused(f"{what} cannot be before {earliest.isoformat()}", "invalid")
    return at


def _text(value: str, what: str, limit: int = 500) -> str | Refused:
    cleaned = (value or "").strip()
    if not cleaned:
        return Refused(f"{what} is required", "invalid")
    if len(cleaned) > limit:
        return Refused(f"{what} must be at most {limit} characters", "invalid")
    return cleaned


def _override(ctx: Ctx, command: str, gates: list[str], reason: str) -> Event | Refused | None:
    """A safety gate stands unless a physician overrides it with a reason; the override is an
    event of its own (timeline, report, audit). No gate: nothing to override."""
    if not gates:
        return None
    why = "; ".join(gates)
    cleaned = (reason or "").strip()
    if not cleaned:
        return Refused(f"{why}: a physician may {command} anyway with an override and a reason")
    if ctx.role != "physician":
        return Refused(
            f"{why}: only a physician may override this, not the {ctx.role}", "forbidden"
        )
    if len(cleaned) > 2000:
        return Refused("the override reason must be at most 2000 characters", "invalid")
    return Event("safety_override", {"command": command, "gates": gates, "reason": cleaned})


def session_start(state: SessionState) -> datetime | None:
    """When the first step began: nothing of the infusion can have happened before it."""
    return state.segments[0].started_at if state.segments else None


def vitals_gate_met(state: SessionState) -> bool:
    return state.vitals_gate is None or state.vitals_count > state.vitals_gate


def delivered(state: SessionState, until: datetime) -> Decimal:
    return L.ledger(state.plan, state.segments, until).delivered


def _stop_segment(state: SessionState, at: datetime) -> SessionState:
    running = state.running_segment
    if running is None:
        return state
    return replace(state, segments=(*state.segments[:-1], replace(running, stopped_at=at)))


def _start_step(state: SessionState, index: int, at: datetime) -> tuple[SessionState, Event]:
    plan = state.plan
    step = plan.steps[index]
    given = L.ledger(plan, state.segments, at).delivered
    minutes = L.planned_minutes(plan, index, given)
    if step.is_infusion:
        limit = L.final_step_volume(plan, index, given) if plan.is_last(index) else None
        segment = Segment(index, step.solution, step.rate_ml_h, at, None, None, limit)
    else:
        dose = step.dose if not plan.is_last(index) else L.remaining_dose(plan, given)
        segment = Segment(index, None, None, at, at, dose, None)
    new = replace(
        state,
        status="running",
        current=index,
        next_step=None,
        segments=(*state.segments, segment),
        vitals_gate=state.vitals_count,
    )
    new = _with_timer(new, at + _minutes(minutes))
    event = Event(
        "step_started",
        {
            "step": index,
            "solution": step.solution,
            "rate_ml_h": str(step.rate_ml_h) if step.rate_ml_h is not None else None,
            "dose": str(segment.dose_given) if segment.dose_given is not None else None,
            "minutes": str(minutes),
            "deadline": new.deadline.isoformat() if new.deadline else None,
        },
    )
    return new, event


def _start_observation(state: SessionState, at: datetime, minutes: Decimal) -> SessionState:
    new = replace(
        state,
        status="observing",
        next_step=None,
        observation_started_at=at,
        observation_done=False,
        vitals_gate=state.vitals_count,
        observation_left=None,
    )
    return _with_timer(new, at + _minutes(minutes))


# --- handlers ----------------------------------------------------------------------------------


def _approve(state: SessionState, _: Approve, ctx: Ctx) -> Result:
    if state.status != "planned":
        return Refused(f"only a planned session can be approved; it is {state.status}")
    if state.approved_by is not None:
        return Refused("the plan is already approved")
    new = replace(state, approved_by=ctx.user_id, approved_at=ctx.now)
    if not state.pharmacist_signoff:
        new = replace(new, status="ready")
    return _accept(new, Event("approved", {"status": new.status}))


def _edit_plan(state: SessionState, command: EditPlan, ctx: Ctx) -> Result:
    if state.status != "planned" or state.approved_by is not None:
        return Refused("the plan is frozen once approved; only a draft can be edited")
    new = replace(state, plan=command.plan, approved=command.plan)
    return _accept(
        new, Event("plan_edited", {"edit": command.summary, "steps": len(command.plan.steps)})
    )


def _verify_bags(state: SessionState, _: VerifyBags, ctx: Ctx) -> Result:
    if state.status != "planned":
        return Refused(f"bags are verified while the session is planned; it is {state.status}")
    if state.approved_by is None:
        return Refused("the plan must be approved by a physician before the bags are verified")
    if not state.pharmacist_signoff:
        return Refused("this session needs no pharmacist sign-off")
    new = replace(state, bags_verified_by=ctx.user_id, bags_verified_at=ctx.now, status="ready")
    return _accept(new, Event("bags_verified", {"status": "ready"}))


def _checklist(state: SessionState, command: ChecklistItem, ctx: Ctx) -> Result:
    if state.status != "ready":
        return Refused(f"the checklist is filled while the session is ready; it is {state.status}")
    checklist = state.checklist
    if command.item == "consent":
        checklist = replace(checklist, consent=command.done)
    elif command.item == "rescue_kit":
        checklist = replace(checklist, rescue_kit=command.done)
    elif command.item == "premedications":
        if command.premedications:
            for premed in command.premedications:
                if premed.given_at.tzinfo is None:
                    return Refused("a premedication time needs a time zone", "invalid")
                if premed.given_at > ctx.now:
                    return Refused("a premedication cannot be given in the future", "invalid")
                for value, what in (
                    (premed.drug, "drug"),
                    (premed.dose, "dose"),
                    (premed.route, "route"),
                ):
                    if isinstance(_text(value, f"premedication {what}", 120), Refused):
                        return Refused(f"each premedication needs a {what}", "invalid")
            checklist = replace(
                checklist, premedications=command.premedications, premedication_done=True
            )
        elif command.done:
            reason = _text(command.none_reason, "the reason no premedication is needed")
            if isinstance(reason, Refused):
                return reason
            checklist = replace(checklist, premedications=(), premedication_done=True)
        else:
            checklist = replace(checklist, premedications=(), premedication_done=False)
    else:  # pragma: no cover - the type forbids it
        return Refused(f"unknown checklist item {command.item!r}", "invalid")
    return _accept(
        replace(state, checklist=checklist),
        Event(
            "checklist",
            {"item": command.item, "done": command.done, "missing": checklist.missing()},
        ),
    )


def _record_vitals(state: SessionState, command: RecordVitals, ctx: Ctx) -> Result:
    if state.status == "planned":
        return Refused("vitals are recorded once the plan is approved and ready")
    new = replace(
        state,
        last_vitals_at=ctx.now,
        vitals_count=state.vitals_count + 1,
        last_vitals_within_limits=command.within_limits,
        last_vitals_findings=command.findings,
    )
    if state.status == "ready":
        checklist = replace(
            state.checklist,
            baseline_vitals=True,
            baseline_spirometry=state.checklist.baseline_spirometry or command.has_spirometry,
            baseline_high=command.high_findings,
        )
        new = replace(new, checklist=checklist)
    reaction = new.open_reaction
    if reaction is not None and command.symptoms:
        # A reaction is graded on its worst: symptoms seen while it is open are part of it.
        merged = tuple(dict.fromkeys((*reaction.symptoms, *command.symptoms)))
        new = _replace_reaction(new, replace(reaction, symptoms=merged))
    return _accept(
        new,
        Event(
            "vitals_recorded",
            {
                "within_limits": command.within_limits,
                "status": state.status,
                "findings": list(command.findings),
            },
        ),
    )


def _amend_latest_vitals(state: SessionState, command: AmendLatestVitals, ctx: Ctx) -> Result:
    if state.last_vitals_at is None:
        return Refused("there are no vitals to amend", "invalid")
    new = replace(
        state,
        last_vitals_within_limits=command.within_limits,
        last_vitals_findings=command.findings,
    )
    if command.baseline and state.status == "ready":
        new = replace(new, checklist=replace(new.checklist, baseline_high=command.high_findings))
    return _accept(
        new,
        Event(
            "vitals_amended",
            {"within_limits": command.within_limits, "findings": list(command.findings)},
        ),
    )


def _start(state: SessionState, command: Start, ctx: Ctx) -> Result:
    if state.status != "ready":
        return Refused(f"only a ready session can start; it is {state.status}")
    missing = state.checklist.missing()
    if missing:
        return Refused("before the start: " + ", ".join(missing) + " still missing")
    gates = []
    if state.checklist.baseline_high:
        gates.append(
            "the baseline vitals meet HIGH criteria ("
            + "; ".join(state.checklist.baseline_high)
            + ")"
        )
    override = _override(ctx, "start", gates, command.override_reason)
    if isinstance(override, Refused):
        return override
    new, event = _start_step(state, 0, ctx.now)
    overridden = (override,) if override is not None else ()
    return _accept(new, *overridden, Event("started"), event, timer=True)


def _confirm_step(state: SessionState, _: ConfirmStep, ctx: Ctx) -> Result:
    if state.status != "step_due":
        return Refused(f"no pump change is due; the session is {state.status}")
    if state.open_reaction is not None:
        return Refused("a reaction is open: resolve it first")
    if not vitals_gate_met(state):
        step = (state.current or 0) + 1
        return Refused(f"record the vitals of step {step} first")
    assert state.next_step is not None
    stopped = _stop_segment(state, ctx.now)
    given = delivered(stopped, ctx.now)
    if given >= state.plan.target_dose:
        # The pump ran long enough at the old rate to give the whole target.
        new = _start_observation(stopped, ctx.now, state.observation_minutes)
        return _accept(new, Event("target_reached", {"delivered": str(given)}), timer=True)
    new, event = _start_step(stopped, state.next_step, ctx.now)
    return _accept(new, Event("step_confirmed", {"step": state.next_step}), event, timer=True)


def _timer_fired(state: SessionState, command: TimerFired, ctx: Ctx) -> Result:
    if command.generation != state.timer_generation or state.deadline is None:
        return Refused("this timer was replaced", "stale")
    if ctx.now < state.deadline:
        return Refused("the timer is not due yet", "stale")
    late = ctx.now - state.deadline
    info = {
        "due_at": state.deadline.isoformat(),
        "late_seconds": round(late.total_seconds(), 3),
        "overdue": late > LATE_FIRE,
    }
    if state.status == "running":
        assert state.current is not None
        if state.plan.is_last(state.current):
            # The last step is volume-limited: the pump has stopped by itself at the deadline.
            stopped = _stop_segment(state, state.deadline)
            new = _start_observation(stopped, state.deadline, state.observation_minutes)
            return _accept(new, Event("last_step_done", info), timer=True)
        new = replace(
            state,
            status="step_due",
            next_step=state.current + 1,
            deadline=None,
            due_since=state.deadline,
            overdue=late > LATE_FIRE,
        )
        return _accept(new, Event("step_due", {**info, "next_step": state.current + 1}), timer=True)
    if state.status == "observing" and not state.observation_done:
        new = replace(state, observation_done=True, deadline=None, overdue=late > LATE_FIRE)
        return _accept(new, Event("observation_done", info), timer=True)
    return Refused(f"no timer runs while the session is {state.status}", "stale")


def _pause_common(
    state: SessionState, ctx: Ctx, stopped_given: datetime | None
) -> SessionState | Refused:
    if state.status not in ("running", "step_due", "observing"):
        return Refused(f"only a running or observed session can be paused; it is {state.status}")
    running = state.running_segment
    earliest = (
        running.started_at if running else (state.observation_started_at or session_start(state))
    )
    stopped_at = _user_time(stopped_given, ctx, earliest, "the time the infusion was stopped")
    if isinstance(stopped_at, Refused):
        return stopped_at
    new = _stop_segment(state, stopped_at)
    left = None
    if state.status == "observing" and not state.observation_done and state.deadline:
        left = Decimal(max((state.deadline - ctx.now).total_seconds(), 0)) / 60
    new = replace(
        new,
        status="paused",
        paused_from=state.status,
        paused_at=stopped_at,
        observation_left=left,
        vitals_gate=state.vitals_count,
    )
    return _with_timer(new, None)


def _pause(state: SessionState, command: Pause, ctx: Ctx) -> Result:
    reason = _text(command.reason, "the reason for the hold")
    if isinstance(reason, Refused):
        return reason
    new = _pause_common(state, ctx, command.stopped_at)
    if isinstance(new, Refused):
        return new
    new = replace(new, pause_reason=reason)
    return _accept(
        new,
        Event(
            "paused",
            {"reason": reason, "from": state.status, "stopped_at": new.paused_at.isoformat()},
        ),
        timer=True,
    )


def _report_reaction(state: SessionState, command: ReportReaction, ctx: Ctx) -> Result:
    if not command.symptoms and not command.findings:
        return Refused("name at least one symptom", "invalid")
    if state.open_reaction is not None:
        return Refused("a reaction is already open: add treatments to it or resolve it")
    if state.status == "paused":
        new: SessionState | Refused = state
    else:
        new = _pause_common(state, ctx, command.stopped_at)
        if isinstance(new, Refused):
            return new
    onset = _user_time(command.onset_at, ctx, session_start(state), "the onset time")
    if isinstance(onset, Refused):
        return onset
    reaction = Reaction(
        number=len(state.reactions) + 1,
        onset_at=onset,
        symptoms=tuple(command.symptoms),
        at_step=state.current,
        note=command.note.strip()[:2000],
        findings=tuple(command.findings),
    )
    new = replace(
        new,
        reactions=(*new.reactions, reaction),
        pause_had_reaction=True,
        pause_reason=new.pause_reason or "reaction",
    )
    return _accept(
        new,
        Event(
            "reaction_reported",
            {
                "reaction": reaction.number,
                "symptoms": list(reaction.symptoms),
                "findings": list(reaction.findings),
                "at_step": reaction.at_step,
                "onset_at": onset.isoformat(),
                "message": "Stop the infusion now.",
            },
        ),
        timer=state.status != "paused",
    )


def _record_treatment(state: SessionState, command: RecordTreatment, ctx: Ctx) -> Result:
    reaction = state.open_reaction
    if reaction is None:
        return Refused("treatments are recorded against an open reaction; there is none")
    fields = {}
    for value, what, limit in (
        (command.drug, "drug", 120),
        (command.dose, "dose", 60),
        (command.route, "route", 40),
    ):
        cleaned = _text(value, f"the treatment {what}", limit)
        if isinstance(cleaned, Refused):
            return cleaned
        fields[what] = cleaned
    given_at = _user_time(command.given_at, ctx, reaction.onset_at, "the time it was given")
    if isinstance(given_at, Refused):
        return given_at
    treatment = Treatment(fields["drug"], fields["dose"], fields["route"], given_at)
    updated = replace(reaction, treatments=(*reaction.treatments, treatment))
    return _accept(
        _replace_reaction(state, updated),
        Event(
            "treatment_recorded",
            {"reaction": reaction.number, **fields, "given_at": given_at.isoformat()},
        ),
    )


def _replace_reaction(state: SessionState, reaction: Reaction) -> SessionState:
    reactions = tuple(reaction if r.number == reaction.number else r for r in state.reactions)
    return replace(state, reactions=reactions)


def _resolve_reaction(state: SessionState, command: ResolveReaction, ctx: Ctx) -> Result:
    reaction = state.open_reaction
    if reaction is None:
        return Refused("there is no open reaction to resolve")
    if command.brown_grade not in (1, 2, 3):
        return Refused("the Brown grade must be 1, 2 or 3", "invalid")
    if command.ctcae_grade is not None and command.ctcae_grade not in (1, 2, 3, 4):
        return Refused("the CTCAE grade must be 1 to 4", "invalid")
    resolved_at = _user_time(command.resolved_at, ctx, reaction.onset_at, "the resolution time")
    if isinstance(resolved_at, Refused):
        return resolved_at
    updated = replace(
        reaction,
        resolved_at=resolved_at,
        brown_grade=command.brown_grade,
        ctcae_grade=command.ctcae_grade,
        note=(reaction.note + "\n" + command.note.strip()).strip()[:4000],
        outcome="resolved",
    )
    new = replace(_replace_reaction(state, updated), vitals_gate=state.vitals_count)
    return _accept(
        new,
        Event(
            "reaction_resolved",
            {
                "reaction": reaction.number,
                "brown_grade": command.brown_grade,
                "ctcae_grade": command.ctcae_grade,
                "resolved_at": resolved_at.isoformat(),
            },
        ),
    )


def _resume_gates(state: SessionState, command: Resume) -> list[str]:
    """What stands in the way of this resume unless a physician overrides it."""
    gates = []
    if not state.last_vitals_within_limits:
        found = "; ".join(state.last_vitals_findings)
        gates.append(
            "the fresh vitals breach a MEDIUM or HIGH limit" + (f" ({found})" if found else "")
        )
    last = state.reactions[-1] if state.reactions and state.pause_had_reaction else None
    if (
        state.paused_from != "observing"
        and last is not None
        and last.brown_grade == 3
        and command.resume_from in ("finish", "repeat")
    ):
        gates.append(
            f"after a Brown grade 3 reaction, {command.resume_from} goes back to the dose "
            "that reacted (step back instead)"
        )
    return gates


def _resume(state: SessionState, command: Resume, ctx: Ctx) -> Result:
    if state.status != "paused":
        return Refused(f"only a paused session can be resumed; it is {state.status}")
    if state.open_reaction is not None:
        return Refused("the reaction must be marked resolved before resuming")
    if not vitals_gate_met(state):
        return Refused("record fresh vitals before resuming")
    override = _override(ctx, "resume", _resume_gates(state, command), command.override_reason)
    if isinstance(override, Refused):
        return override
    overridden = (override,) if override is not None else ()
    if state.paused_from == "observing":
        if (
            command.resume_from,
            command.stretch,
            command.insert_intermediate,
            command.cap_rate_ml_h,
        ) != ("repeat", Decimal(1), 0, None):
            return Refused(
                "the infusion is over; resuming continues the observation only", "invalid"
            )
        if state.observation_done:
            new = replace(
                state, status="observing", paused_from=None, deadline=None, pause_had_reaction=False
            )
            return _accept(new, *overridden, Event("resumed", {"to": "observing"}))
        new = _start_observation(state, ctx.now, state.observation_left or Decimal(0))
        new = replace(new, paused_from=None, pause_had_reaction=False)
        return _accept(new, *overridden, Event("resumed", {"to": "observing"}), timer=True)
    plan = _replan(state, command)
    if isinstance(plan, Refused):
        return plan
    new_plan, first = plan
    new = replace(
        state,
        plan=new_plan,
        status="step_due",
        next_step=first,
        due_since=ctx.now,
        paused_from=None,
        vitals_gate=None,
        pause_had_reaction=False,
    )
    return _accept(
        new,
        *overridden,
        Event(
            "resumed",
            {
                "resume_from": command.resume_from,
                "stretch": str(command.stretch),
                "insert_intermediate": command.insert_intermediate,
                "cap_rate_ml_h": str(command.cap_rate_ml_h) if command.cap_rate_ml_h else None,
                "next_step": first,
                "steps": len(new_plan.steps),
                "reason": (command.override_reason or "").strip()[:2000] or None,
            },
        ),
    )


def _replan(state: SessionState, command: Resume) -> tuple[Plan, int] | Refused:
    """New steps after the interrupted one; returns the plan and the index to start from."""
    plan = state.plan
    base = state.approved or plan
    assert state.current is not None
    k = state.current
    if not (Decimal(1) <= command.stretch <= MAX_STRETCH):
        return Refused(f"stretch must be between 1 and {MAX_STRETCH}", "invalid")
    if not 0 <= command.insert_intermediate <= MAX_INTERMEDIATE:
        return Refused(f"insert between 0 and {MAX_INTERMEDIATE} intermediate steps", "invalid")
    if command.cap_rate_ml_h is not None and (
        plan.kind != "infusion" or command.cap_rate_ml_h < PUMP_RATE_STEP
    ):
        return Refused(
            f"a rate cap applies to infusions and is at least {PUMP_RATE_STEP} mL/h", "invalid"
        )
    back = {"finish": 0, "repeat": 0, "back1": 1, "back2": 2}[command.resume_from]
    reacted = _original(plan, k)
    if reacted - back < 0:
        return Refused(f"there are not {back} earlier steps to step back to", "invalid")
    ledger = L.ledger(plan, state.segments, state.paused_at or state.segments[-1].started_at)
    with localcontext() as ctx:
        ctx.prec = L.PRECISION
        new_steps: list[PlanStep] = []
        origin = "step_back" if back else "repeat"
        for original in range(reacted - back, reacted):
            new_steps.append(replace(base.steps[original], origin=origin, of_step=original))
        if command.insert_intermediate:
            made = intermediate_steps(base, reacted, command.insert_intermediate, plan.steps[k])
            if isinstance(made, Refused):
                return made
            new_steps.extend(made)
        reacted_step = plan.steps[k]  # as it stands now (it may already be a stretched copy)
        if command.resume_from == "finish":
            rest = _rest_of_step(plan, k, ledger, _approved_minutes(base, plan, k, command))
            if rest is None and not plan.is_last(k) and state.pause_had_reaction:
                # The step had run its time: "finish" would go straight to a higher rate.
                return Refused(
                    f"step {k + 1} was complete when the reaction began; after a "
                    "reaction choose repeat or step back",
                    "invalid",
                )
            if rest is not None:
                new_steps.append(
                    replace(reacted_step, minutes=rest, origin="finish", of_step=reacted)
                )
            elif plan.is_last(k):
                new_steps.append(replace(reacted_step, origin="finish", of_step=reacted))
        else:
            new_steps.append(
                replace(reacted_step, origin="repeat" if not back else "step_back", of_step=reacted)
            )
        followers = [
            replace(step, of_step=_original(plan, index))
            for index, step in enumerate(plan.steps[k + 1 :], start=k + 1)
        ]
        tail = [*new_steps, *followers]
        # A step that runs "until the target" can only be the last: a resume re-planned before
        # the previous one was started would otherwise leave a copy of it in the middle.
        tail = [s for i, s in enumerate(tail) if i == len(tail) - 1 or not _runs_to_target(s)]
        if not tail or not _is_final(plan, tail[-1]):
            # The final "until the target" step must stay last.
            return Refused("nothing left to resume", "invalid")
        last = len(tail) - 1
        tail = [_adjust(s, base, command, is_last=i == last) for i, s in enumerate(tail)]
    steps = (*plan.steps[: k + 1], *tail)
    new_plan = plan.with_steps(steps)
    first = k + 1
    checked = _check_new_plan(new_plan, first, ledger)
    if isinstance(checked, Refused):
        return checked
    return new_plan, first


def _original(plan: Plan, index: int) -> int:
    """The plan index a step stands for (copies point at their original)."""
    step = plan.steps[index]
    return step.of_step if step.of_step is not None else index


def _runs_to_target(step: PlanStep) -> bool:
    return (step.is_infusion and step.minutes is None) or (
        not step.is_infusion and step.dose is None
    )


def _is_final(plan: Plan, step: PlanStep) -> bool:
    last = plan.steps[-1]
    return step.solution == last.solution and (
        (step.is_infusion and step.minutes is None) or (not step.is_infusion and step.dose is None)
    )


def _approved_minutes(base: Plan, plan: Plan, index: int, command: Resume) -> Decimal | None:
    """The time of the approved step this plan step stands for, stretched once by this resume:
    a second resume never stretches a stretched time again."""
    step = plan.steps[index]
    original = _original(plan, index)
    approved = base.steps[original].minutes if original < len(base.steps) else None
    minutes = approved if approved is not None else step.minutes
    return None if minutes is None else minutes * command.stretch


def _rest_of_step(
    plan: Plan, index: int, ledger: L.Ledger, minutes: Decimal | None
) -> Decimal | None:
    """What is left of the interrupted step when it is to last `minutes` in all."""
    step = plan.steps[index]
    if plan.is_last(index) or not step.is_infusion or minutes is None:
        return None
    assert step.rate_ml_h is not None
    given_minutes = ledger.volume_of_step(index) / step.rate_ml_h * 60
    rest = minutes - given_minutes
    return rest if rest > Decimal("0.01") else None


def intermediate_steps(
    plan: Plan, reacted: int, count: int, repeated: PlanStep
) -> list[PlanStep] | Refused:
    """`count` steps between approved steps reacted-1 and reacted, evenly spaced in dose on a
    log scale, each slower than the step that will be repeated after them."""
    if reacted == 0:
        return Refused(
            "there is no earlier step to interpolate from; repeat the step instead", "invalid"
        )
    low = plan.planned_dose(reacted - 1)
    high = plan.planned_dose(reacted)
    if high is None:  # the final step: use what it would give in one ordinary step time
        step = plan.steps[reacted]
        previous = plan.steps[reacted - 1]
        minutes = previous.minutes or Decimal(15)
        if step.is_infusion:
            high = step.rate_ml_h * minutes / 60 * plan.bag(step.solution).concentration
        else:
            return Refused(
                "intermediate doses go before an ordinary dose, not the remainder", "invalid"
            )
    assert low is not None
    target_step = plan.steps[reacted]
    out = []
    for i in range(1, count + 1):
        fraction = Decimal(i) / Decimal(count + 1)
        dose = low * (high / low) ** fraction
        if target_step.is_infusion:
            minutes = target_step.minutes or plan.steps[reacted - 1].minutes or Decimal(15)
            conc = plan.bag(target_step.solution).concentration
            # a rate a pump can be set to: 0.1 mL/h steps
            rate = (dose / (conc * minutes / 60)).quantize(PUMP_RATE_STEP, ROUND_HALF_UP)
            if repeated.rate_ml_h is not None:
                rate = min(rate, repeated.rate_ml_h)
            rate = max(rate, PUMP_RATE_STEP)
            out.append(
                PlanStep(
                    solution=target_step.solution,
                    rate_ml_h=rate,
                    minutes=minutes,
                    origin="intermediate",
                    of_step=reacted,
                )
            )
        else:
            if repeated.dose is not None:
                dose = min(dose, repeated.dose)
            out.append(
                PlanStep(
                    dose=dose, minutes=target_step.minutes, origin="intermediate", of_step=reacted
                )
            )
    return out


def _adjust(step: PlanStep, base: Plan, command: Resume, *, is_last: bool) -> PlanStep:
    if step.minutes is not None and not is_last and step.origin != "finish":
        # Stretched from the approved time: never compounded over several resumes.
        original = step.of_step
        approved = base.steps[original].minutes if original is not None else None
        step = replace(step, minutes=(approved or step.minutes) * command.stretch)
    if is_last and step.minutes is not None and step.is_infusion:
        step = replace(step, minutes=None)  # the final step always runs to the target
    if command.cap_rate_ml_h is not None and step.rate_ml_h is not None:
        step = replace(step, rate_ml_h=min(step.rate_ml_h, command.cap_rate_ml_h))
    return step


def _check_new_plan(plan: Plan, first: int, ledger: L.Ledger) -> Refused | None:
    cumulative = L.projected_total(plan, first, ledger.delivered)
    if cumulative and cumulative[-1] >= plan.target_dose:
        return Refused(
            "these steps would give the whole target before the last step; "
            "stretch less or step back fewer steps",
            "invalid",
        )
    used = dict(ledger.volume_used)
    for step in plan.steps[first:-1]:
        if step.is_infusion:
            used[step.solution] = used.get(step.solution, Decimal(0)) + (
                step.rate_ml_h * step.minutes / 60
            )
    final = plan.steps[-1]
    if final.is_infusion:
        # The last step gives whatever the target still needs, from the final bag.
        before_last = cumulative[-1] if cumulative else ledger.delivered
        final_bag = plan.bag(final.solution)
        used[final.solution] = used.get(final.solution, Decimal(0)) + (
            (plan.target_dose - before_last) / final_bag.concentration
        )
    for bag in plan.bags:
        # a hair of tolerance: the final bag is sized exactly, quotients are rounded at 60 digits
        if used.get(bag.number, Decimal(0)) > bag.volume_ml + VOLUME_TOLERANCE_ML:
            return Refused(
                f"bag {bag.number} does not hold enough for these steps "
                f"({bag.volume_ml} mL); a new bag would be needed",
                "invalid",
            )
    return None


def _complete(state: SessionState, _: Complete, ctx: Ctx) -> Result:
    if state.status != "observing":
        return Refused(f"a session is completed after its observation; it is {state.status}")
    if not state.observation_done:
        return Refused("the observation period is not over yet")
    if not vitals_gate_met(state):
        return Refused("record the observation vitals first")
    new = _with_timer(replace(state, status="completed"), None)
    return _accept(
        new, Event("completed", {"delivered": str(delivered(state, ctx.now))}), timer=True
    )


def _close_with_abort(
    state: SessionState, command: Abort, ctx: Ctx
) -> tuple[SessionState, tuple[Event, ...]] | Refused:
    """An open reaction does not outlive the session: the abort carries its grade and outcome
    and closes it, so the record ends graded."""
    reaction = state.open_reaction
    given = (command.reaction_brown_grade, command.reaction_ctcae_grade, command.reaction_outcome)
    if reaction is None:
        if given != (None, None, None):
            return Refused("there is no open reaction to grade with the abort", "state")
        return state, ()
    if command.reaction_brown_grade is None or command.reaction_outcome is None:
        return Refused(
            f"reaction {reaction.number} is open: the abort closes it, so give its Brown grade "
            "(reaction_brown_grade) and outcome (reaction_outcome)",
            "invalid",
        )
    if command.reaction_brown_grade not in (1, 2, 3):
        return Refused("the Brown grade must be 1, 2 or 3", "invalid")
    if command.reaction_ctcae_grade is not None and command.reaction_ctcae_grade not in range(1, 6):
        return Refused("the CTCAE grade must be 1 to 5", "invalid")
    if command.reaction_outcome not in OUTCOMES:
        return Refused(f"the outcome must be one of: {', '.join(OUTCOMES)}", "invalid")
    closed = replace(
        reaction,
        resolved_at=ctx.now,
        brown_grade=command.reaction_brown_grade,
        ctcae_grade=command.reaction_ctcae_grade,
        outcome=command.reaction_outcome,
        closed_by_abort=True,
    )
    event = Event(
        "reaction_closed",
        {
            "reaction": reaction.number,
            "brown_grade": closed.brown_grade,
            "ctcae_grade": closed.ctcae_grade,
            "outcome": closed.outcome,
            "closed_at": ctx.now.isoformat(),
            "by": "abort",
        },
    )
    return _replace_reaction(state, closed), (event,)


def _abort(state: SessionState, command: Abort, ctx: Ctx) -> Result:
    reason = _text(command.reason, "the reason for aborting", 2000)
    if isinstance(reason, Refused):
        return reason
    closing = _close_with_abort(state, command, ctx)
    if isinstance(closing, Refused):
        return closing
    new, closed = closing
    new = _stop_segment(new, ctx.now)
    new = _with_timer(replace(new, status="aborted", abort_reason=reason), None)
    return _accept(
        new,
        *closed,
        Event(
            "aborted",
            {"reason": reason, "from": state.status, "delivered": str(delivered(new, ctx.now))},
        ),
        timer=True,
    )


_HANDLERS: dict[type, Any] = {
    Approve: _approve,
    VerifyBags: _verify_bags,
    EditPlan: _edit_plan,
    ChecklistItem: _checklist,
    RecordVitals: _record_vitals,
    AmendLatestVitals: _amend_latest_vitals,
    Start: _start,
    ConfirmStep: _confirm_step,
    Pause: _pause,
    ReportReaction: _report_reaction,
    RecordTreatment: _record_treatment,
    ResolveReaction: _resolve_reaction,
    Resume: _resume,
    TimerFired: _timer_fired,
    Complete: _complete,
    Abort: _abort,
}


def new_session(
    plan: Plan,
    *,
    pharmacist_signoff: bool = True,
    spirometry_required: bool = False,
    observation_minutes: Decimal = Decimal(30),
    vitals_every_minutes: Decimal = Decimal(30),
) -> SessionState:
    return SessionState(
        status="planned",
        plan=plan,
        approved=plan,
        pharmacist_signoff=pharmacist_signoff,
        checklist=Checklist(spirometry_required=spirometry_required),
        observation_minutes=observation_minutes,
        vitals_every_minutes=vitals_every_minutes,
    )
