"""The printable session report's rows and the facts it is built from: plain frozen values,
laid out by templates/review/report.html. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from app import localtime
from app.review.check_words import CheckRecord

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

OUTCOME_WORDS = {
    "resolved": "resolved",
    "recovering": "recovering",
    "ongoing": "ongoing",
    "resolvedWithSequelae": "resolved with sequelae",
    "fatal": "fatal",
    "unknown": "unknown",
}


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
    where: tzinfo = field(default=UTC)  # the facility's zone
    checks: tuple[CheckRecord, ...] = ()  # bag and patient checks: scans, refusals, overrides

    @property
    def refused_checks(self) -> int:
        return sum(1 for c in self.checks if c.refused)

    @property
    def dose_gap(self) -> Decimal:
        return self.target_dose - self.delivered_dose

    def time(self, at: datetime | None) -> str:
        """Times in the facility's zone (named at the top of the report); the date is shown
        when the session spans more than one day."""
        if at is None:
            return "—"
        return localtime.local(at, "%d %b %H:%M:%S" if self.multi_day else "%H:%M:%S", self.where)


def person_name(users: Mapping[int, Person], user_id: int | None, role: str = "") -> str:
    """Who did it, in words: a user by name, or the automatic part of Stepwise."""
    if user_id is None:
        return "Stepwise (automatic)" if role in ("", "system") else role
    person = users.get(user_id)
    return person.name if person is not None else f"user {user_id}"


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
