"""What the session machine remembers of one session (product-spec §3): its status, plan,
checklist, step segments, reactions and vitals gates, with the queries the decisions share. Pure
data: the shell stores it as JSON (app.session.codec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from app.session import ledger as L
from app.session.ledger import Segment
from app.session.plan import Plan

Status = Literal[
    "planned", "ready", "running", "step_due", "paused", "observing", "completed", "aborted"
]
TERMINAL: frozenset[str] = frozenset({"completed", "aborted"})
MAX_VITALS_EVERY = 120  # minutes between vitals within a step, at most
# FHIR AdverseEvent outcomes (R4 adverse-event-outcome): how a reaction ended.
OUTCOMES: tuple[str, ...] = (
    "resolved",
    "recovering",
    "ongoing",
    "resolvedWithSequelae",
    "fatal",
    "unknown",
)


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
    # Right bag, right patient (app.session.bedside_checks): the scans this session needs, the
    # ones made for the coming pump start, and the double check of a high-alert drug.
    scan_required: bool = False
    patient_checked: bool = False
    bag_checked: int | None = None
    double_check_required: bool = False
    double_check_due: bool = False  # a resume: the next pump start is double-checked
    label_hours: Decimal = Decimal(24)  # a prepared bag keeps this long (its label's expiry)

    @property
    def open_reaction(self) -> Reaction | None:
        return next((r for r in self.reactions if r.is_open), None)

    @property
    def running_segment(self) -> Segment | None:
        if self.segments and self.segments[-1].stopped_at is None:
            return self.segments[-1]
        return None


def session_start(state: SessionState) -> datetime | None:
    """When the first step began: nothing of the infusion can have happened before it."""
    return state.segments[0].started_at if state.segments else None


def vitals_gate_met(state: SessionState) -> bool:
    return state.vitals_gate is None or state.vitals_count > state.vitals_gate


def delivered(state: SessionState, until: datetime) -> Decimal:
    return L.ledger(state.plan, state.segments, until).delivered


def new_session(
    plan: Plan,
    *,
    pharmacist_signoff: bool = True,
    spirometry_required: bool = False,
    observation_minutes: Decimal = Decimal(30),
    vitals_every_minutes: Decimal = Decimal(30),
    scan_required: bool = False,
    double_check_required: bool = False,
    label_hours: Decimal = Decimal(24),
) -> SessionState:
    return SessionState(
        status="planned",
        plan=plan,
        approved=plan,
        pharmacist_signoff=pharmacist_signoff,
        checklist=Checklist(spirometry_required=spirometry_required),
        observation_minutes=observation_minutes,
        vitals_every_minutes=vitals_every_minutes,
        scan_required=scan_required and plan.kind == "infusion",
        double_check_required=double_check_required,
        label_hours=label_hours,
    )
